"""Simulator frames -> `grounding/v1`: the `sim-frames` converter (boxes, grasp/place points and future tool traces
from the labels of generated episodes).

`dataengine convert sim-frames --input EPISODES_DIR --out DIR`, `dataengine sim to-grounding EPISODES_DIR --out DIR`
(the same conversion, with `--frames-per-episode` and `--cameras`) and recipe sources with `converter: sim-frames`
all run it through the shared runner: one partition per episode shard; `--limit N` keeps the first N episodes.

For each episode and camera, K frames at fixed fractions of the episode (step floor((i + 0.5) * T / K), i < K)
become one sample each: the stored JPEG bytes as they are (no re-encode) and the items whose target is visible
enough:
- box, pick object and container, queried by the instruction's name ("pink eraser") and, when no other object in
  the scene shares it, by size + first attribute + name ("small rubber eraser"). Visible enough: the generator's
  visibility label (segmentation pixels and occlusion, `episode.json` `labels`) and each box side >=
  `MIN_BOX_SIDE_PX`.
- point, the grasp point (needs the pick object visible) and the place point (needs the container visible), inside
  the image.
- trace, the next K tool positions projected (all inside the image, at least `MIN_TRACE_PX` long).
Coordinates are pixels of the stored frame (grounding/v1 rounds them to 2 decimals). Whatever is left out is
counted by a snake_case reason (`skipped_by_reason` of the report).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from dataengine.converters.base import Converter, Output, Sample, SourceOptions, TaskStats
from dataengine.geometry import point_inside
from dataengine.images import probe_image, sha1_hex
from dataengine.records.layout import SceneObject
from dataengine.shards.episode import EpisodeData, episode_shards, iter_episodes

SOURCE = "sim"  # the records' `source`
LICENSE = "Apache-2.0"
DEFAULT_FRAMES_PER_EPISODE = 4
MIN_BOX_SIDE_PX = 4.0
MIN_TRACE_PX = 3.0
COUNTED = ("samples", "items")  # reported as counts (`sim_<name>`), not as reasons to skip


class SimFramesOptions(SourceOptions):
    """sim-frames options: how many frames per episode and camera, and which cameras."""

    frames_per_episode: int = Field(default=DEFAULT_FRAMES_PER_EPISODE, ge=1, description="frames per episode")
    cameras: list[str] | None = Field(default=None, min_length=1, description="cameras to read (None: all)")


class SimFramesConverter(Converter):
    name = "sim-frames"
    slug = "simframes"
    license = LICENSE
    layout = (
        "--input: a `dataengine sim generate` output folder (episode/v1 .tar shards with rendered frames), "
        "or one episode shard."
    )
    Options = SimFramesOptions

    def check(self) -> None:
        super().check()
        episode_shards(self.input_path)

    def fingerprint_files(self):
        return episode_shards(self.input_path)

    def plan(self) -> list[dict[str, Any]]:
        from dataengine.shards.index import sample_table

        partitions, kept = [], 0
        for shard in episode_shards(self.input_path):
            if self.options.limit is not None:
                keys = [row[0] for row in sample_table(shard)]
                take = max(0, min(len(keys), self.options.limit - kept))
                kept += take
                if take == 0:
                    break
                partitions.append({"shard": str(shard), "keys": keys[:take]})
            else:
                partitions.append({"shard": str(shard), "keys": None})
        return partitions

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:
        options = self.source_options
        counts: Counter = Counter()
        for ep in iter_episodes(partition["shard"], partition["keys"]):
            stats.read += 1
            for record, jpeg in episode_grounding(ep, options.frames_per_episode, options.cameras, counts):
                if not self.wants_split(record["split"]):
                    stats.skip("split_not_selected")
                    continue
                yield Sample(record, jpeg, [record["image"]["origin"]])
        for reason, n in counts.items():
            if reason in COUNTED:
                stats.count(f"sim_{reason}", n)
            else:
                stats.skip(reason, n)


def frame_steps(num_steps: int, k: int) -> list[int]:
    """K distinct steps spread over the episode (fixed fractions: same episode, same frames)."""
    k = max(1, min(k, num_steps))
    return sorted({min(num_steps - 1, int((i + 0.5) * num_steps / k)) for i in range(k)})


def attribute_phrase(obj: SceneObject) -> str | None:
    if not obj.attributes:
        return None
    return f"{obj.size_label} {obj.attributes[0]} {obj.name}"


def box_queries(obj: SceneObject, objects: Sequence[SceneObject]) -> list[str]:
    """Queries that single out `obj` in this scene: name phrase, attribute phrase (each only when unambiguous)."""
    from dataengine.sim.language import phrase

    out = []
    for how in (phrase, attribute_phrase):
        text = how(obj)
        if text is not None and all(how(o) != text for o in objects if o.uid != obj.uid):
            out.append(text)
    return out


def _box_item(ep, role, obj, t, c, width, height, objects, counts) -> list[dict]:
    a = ep.arrays
    prefix = "pick" if role == "pick" else "container"
    box = a[f"{prefix}_box_xyxy"][t, c]
    if not bool(a[f"{prefix}_visible"][t, c]) or not np.all(np.isfinite(box)):
        counts[f"{role}_box_not_visible"] += 1
        return []
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
    if x2 - x1 < MIN_BOX_SIDE_PX or y2 - y1 < MIN_BOX_SIDE_PX:
        counts[f"{role}_box_too_small"] += 1
        return []
    queries = box_queries(obj, objects)
    if not queries:
        counts[f"{role}_box_ambiguous"] += 1
        return []
    meta = {
        "role": role,
        "uid": obj.uid,
        "asset": obj.asset_id,
        "occlusion": round(float(a[f"{prefix}_occlusion"][t, c]), 4),
        "visible_px": int(a[f"{prefix}_visible_px"][t, c]),
    }
    box = [[x1, y1, x2, y2]]
    return [
        {"task": "box", "query": q, "query_kind": "expression", "boxes": box, "label": obj.name, "meta": meta}
        for q in queries
    ]


def _point_item(ep, kind, t, c, width, height, visible, query, counts) -> list[dict]:
    if not visible:
        counts[f"{kind}_point_not_visible"] += 1
        return []
    point = ep.arrays[f"{kind}_point_2d"][t, c]
    if not np.all(np.isfinite(point)) or not point_inside(point, width, height):
        counts[f"{kind}_point_outside_image"] += 1
        return []
    points = [[float(point[0]), float(point[1])]]
    return [{"task": "point", "query": query, "query_kind": "instruction", "points": points, "meta": {"kind": kind}}]


def _trace_item(ep, t, c, width, height, query, counts) -> list[dict]:
    trace = ep.arrays["trace_2d"][t, c]
    if not np.all(np.isfinite(trace)) or not all(point_inside(p, width, height) for p in trace):
        counts["trace_outside_image"] += 1
        return []
    length = float(np.sum(np.linalg.norm(np.diff(trace, axis=0), axis=1)))
    if length < MIN_TRACE_PX:
        counts["trace_static"] += 1
        return []
    points = [[float(x), float(y)] for x, y in trace]
    meta = {"kind": "tool_future", "steps": len(points)}
    return [{"task": "trace", "query": query, "query_kind": "instruction", "trace": points, "meta": meta}]


def episode_grounding(
    ep: EpisodeData, frames_per_episode: int, cameras: Sequence[str] | None, counts: Counter
) -> Iterator[tuple[dict, bytes]]:
    """(grounding/v1 record as a dict, JPEG bytes) for the chosen frames of one episode; counts what it drops."""
    from dataengine.sim.language import phrase

    if not ep.rendered or "pick_box_xyxy" not in ep.arrays:
        counts["episode_not_rendered"] += 1
        return
    layout = ep.record.layout
    pick, place = layout.pick, layout.place
    relation = ep.record.task.relation
    pick_name, place_name = phrase(pick), phrase(place)
    # Instructions, used as written by exports: the grasp and place points, and the tool's path for the task.
    grasp_query = f"Point to where the gripper should grasp the {pick_name}."
    place_query = f"Point to where the {pick_name} should be placed {relation} the {place_name}."
    task_text = ep.record.instructions.base.strip().rstrip(".")
    trace_query = f"Draw the path the gripper will follow to {task_text[:1].lower()}{task_text[1:]}."
    for cam in cameras or ep.cameras:
        c = ep.camera_index(cam)
        info = ep.record.cameras[c]
        for t in frame_steps(ep.num_steps, frames_per_episode):
            w, h = info.width, info.height
            items = _box_item(ep, "pick", pick, t, c, w, h, layout.objects, counts)
            items += _box_item(ep, "container", place, t, c, w, h, layout.objects, counts)
            pick_visible = bool(ep.arrays["pick_visible"][t, c])
            place_visible = bool(ep.arrays["container_visible"][t, c])
            items += _point_item(ep, "grasp", t, c, w, h, pick_visible, grasp_query, counts)
            items += _point_item(ep, "place", t, c, w, h, place_visible, place_query, counts)
            items += _trace_item(ep, t, c, w, h, trace_query, counts)
            if not items:
                counts["frame_without_items"] += 1
                continue
            jpeg = ep.jpeg(cam, t)
            header = probe_image(jpeg)
            key = f"{ep.key}-{cam}-{t:04d}"
            for item in items:
                item["source_id"] = f"{ep.key}/{cam}/{t}"
            record = {
                "schema": "grounding/v1",
                "key": key,
                "source": SOURCE,
                "split": ep.record.task.split,
                "license": LICENSE,
                "image": {
                    "width": header.width,
                    "height": header.height,
                    "sha1": sha1_hex(jpeg),
                    "origin": f"{ep.key}/{cam}/{t}",
                    "format": header.format,
                },
                "items": items,
            }
            counts["samples"] += 1
            counts["items"] += len(items)
            yield record, jpeg
