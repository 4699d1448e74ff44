"""`meta/modality.json`: GR00T's `LeRobotModalityMetadata`, which the GR00T / InternVLA-M1 / starVLA loader asserts
exists (both export formats write it).

`state` and `action` map names to `[start, end)` slices of `observation.state` / `action` (`original_key`, `dtype`,
`absolute`: false for deltas and relative poses, so the loader pads them with zeros past the end; quaternions carry
`rotation_type`). `video` maps the GR00T view names (world cameras base_view, base_view_2, ...; wrist cameras
ego_view, ...) to the camera features. `annotation` maps both language keys in use
(`human.action.task_description`, the loaders' built-in configs, and `human.task_description`, their templates) to
`task_index`, and lists every `annotation.*` column under its name without the prefix.
"""

from __future__ import annotations

from dataengine.export import lerobot_columns as cols

LANGUAGE_KEYS = ("human.action.task_description", "human.task_description")


def modality_json(features: dict, aliases: dict[str, str]) -> dict:
    """The modality metadata of an export with these `info.json` features and camera -> view aliases."""

    def slices(table, original_key, relative):
        out = {}
        for name, (start, end) in cols.slice_bounds(table).items():
            entry = {"start": start, "end": end, "original_key": original_key, "dtype": "float32"}
            entry["absolute"] = name not in relative
            if name.endswith("quaternion"):
                entry["rotation_type"] = "quaternion"
            out[name] = entry
        return out

    annotation = {key: {"original_key": "task_index"} for key in LANGUAGE_KEYS}
    for key in features:
        if key.startswith("annotation."):
            annotation[key.removeprefix("annotation.")] = {"original_key": key}
    return {
        "state": slices(cols.STATE_SLICES, "observation.state", ()),
        "action": slices(cols.ACTION_SLICES, "action", cols.RELATIVE_ACTIONS),
        "video": {alias: {"original_key": f"observation.images.{cam}"} for cam, alias in aliases.items()},
        "annotation": annotation,
    }
