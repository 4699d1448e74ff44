"""Simulator frames -> `grounding/v1` records: boxes, grasp/place points and future tool traces from episode labels.

For each episode and camera, K frames at fixed fractions of the episode (step floor((i + 0.5) * T / K), i < K) become
one sample each: the stored JPEG bytes as they are (no re-encode) and the items whose target is visible enough:

- box, pick object and container, queried by the instruction's name ("pink eraser") and, when no other object in
  the scene shares it, by size + first attribute + name ("small rubber eraser"). Visible enough: at least
  `MIN_VISIBLE_PX` segmentation pixels, occlusion <= `MAX_OCCLUSION` (both as the generator labels them) and each
  box side >= `MIN_BOX_SIDE_PX`.
- point, the grasp point (needs the pick object visible) and the place point (needs the container visible), inside
  the image.
- trace, the next K tool positions projected (all inside the image, at least `MIN_TRACE_PX` long).

Coordinates are pixels of the stored frame (grounding/v1 rounds them to 2 decimals). Whatever is left out is
counted by a snake_case reason. `episode_grounding` is the one reader: `dataengine sim to-grounding` (below) and the
corpus builder's `sim-frames` source (`dataengine.sim.grounding_source`) both call it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from dataengine.errors import InputError
from dataengine.geometry import point_inside
from dataengine.images import probe_image, sha1_hex
from dataengine.records.grounding import GroundingRecord
from dataengine.records.layout import SceneObject
from dataengine.shards.episode import EpisodeData
from dataengine.sim.labels import MAX_VISIBLE_OCCLUSION, MIN_VISIBLE_PX

SOURCE = "sim"
LICENSE = "Apache-2.0"
DEFAULT_FRAMES_PER_EPISODE = 4
MIN_BOX_SIDE_PX = 4.0
MAX_OCCLUSION = MAX_VISIBLE_OCCLUSION
MIN_TRACE_PX = 3.0
REPORT_NAME = "to_grounding_report.json"


def frame_steps(num_steps: int, k: int) -> list[int]:
    """K distinct steps spread over the episode (fixed fractions: same episode, same frames)."""
    k = max(1, min(k, num_steps))
    return sorted({min(num_steps - 1, int((i + 0.5) * num_steps / k)) for i in range(k)})


def name_phrase(obj: SceneObject) -> str:
    return f"{obj.color} {obj.name}" if obj.color and obj.color not in obj.name else obj.name


def attribute_phrase(obj: SceneObject) -> str | None:
    if not obj.attributes:
        return None
    return f"{obj.size_label} {obj.attributes[0]} {obj.name}"


def _unique(phrase: str | None, obj: SceneObject, objects: Sequence[SceneObject], how) -> bool:
    return phrase is not None and all(how(o) != phrase for o in objects if o.uid != obj.uid)


def box_queries(obj: SceneObject, objects: Sequence[SceneObject]) -> list[str]:
    """Queries that single out `obj` in this scene: name phrase, attribute phrase (each only when unambiguous)."""
    out = []
    for how in (name_phrase, attribute_phrase):
        phrase = how(obj)
        if _unique(phrase, obj, objects, how):
            out.append(phrase)
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
    if not ep.rendered or "pick_box_xyxy" not in ep.arrays:
        counts["episode_not_rendered"] += 1
        return
    layout = ep.record.layout
    pick, place = layout.pick, layout.place
    relation = ep.record.task.relation
    pick_name, place_name = name_phrase(pick), name_phrase(place)
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


# --- the `dataengine sim to-grounding` job --------------------------------------------------------------------


def _convert_shard(task, out_dir: Path) -> dict:
    from dataengine.runtime.jobs import STATE_DIR
    from dataengine.shards import GroundingShardWriter, iter_samples, write_manifest
    from dataengine.shards.episode import decode_episode

    payload = task.payload
    counts: Counter = Counter()
    by_task: Counter = Counter()
    writer = GroundingShardWriter(out_dir, task.task_id, max_samples=10_000, max_bytes=1 << 30)
    with writer:
        for sample in iter_samples(payload["shard"]):
            ep = decode_episode(sample)
            counts["episodes"] += 1
            for data, jpeg in episode_grounding(ep, payload["frames_per_episode"], payload["cameras"], counts):
                record = GroundingRecord.model_validate(data)
                writer.write(record, jpeg)
                by_task.update(item.task for item in record.items)
    write_manifest(writer.rows, out_dir / STATE_DIR / "parts" / f"{task.task_id}.manifest.parquet")
    return {"counts": dict(counts), "items_by_task": dict(by_task), "pairs": writer.pairs}


def to_grounding(
    episodes_dir: str | Path,
    out_dir: str | Path,
    *,
    frames_per_episode: int = DEFAULT_FRAMES_PER_EPISODE,
    cameras: Sequence[str] | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    resume: bool = False,
    show_progress: bool = True,
) -> dict:
    """Convert every episode shard under `episodes_dir` into grounding/v1 shards (one task per episode shard),
    `manifest.parquet` and `to_grounding_report.json` in `out_dir`. Returns the report."""
    from dataengine.runtime.atomic import atomic_write_text
    from dataengine.runtime.jobs import STATE_DIR, Task, job_lock, mark_complete, run_tasks
    from dataengine.runtime.progress import RunningTotals
    from dataengine.shards import MANIFEST_NAME, merge_manifests
    from dataengine.shards.episode import episode_shards

    if frames_per_episode < 1:
        raise InputError(f"--frames-per-episode must be at least 1, got {frames_per_episode}")
    shards = episode_shards(episodes_dir)
    width = max(5, len(str(len(shards))))
    payload = {"frames_per_episode": frames_per_episode, "cameras": list(cameras) if cameras else None}
    tasks = [Task(f"simframes-{i:0{width}d}", {**payload, "shard": str(s)}) for i, s in enumerate(shards)]
    identity = {**payload, "shards": [[str(s), s.stat().st_size] for s in shards], "version": 1}
    fingerprint = json.dumps(identity, sort_keys=True)
    out = Path(out_dir)
    totals = RunningTotals(lambda r: {"samples": r["counts"].get("samples", 0)})
    with job_lock(out, "sim to-grounding", resume=resume):
        results = run_tasks(
            _convert_shard,
            tasks,
            out,
            job_name="sim to-grounding",
            fingerprint=hash_text(fingerprint),
            workers=workers,
            ray_address=ray_address,
            resume=resume,
            describe=lambda rs: f"{totals.update(rs)['samples']} samples",
            show_progress=show_progress,
        )
        parts = [out / STATE_DIR / "parts" / f"{t.task_id}.manifest.parquet" for t in tasks]
        merge_manifests(parts, out / MANIFEST_NAME)
        counts: Counter = Counter()
        by_task: Counter = Counter()
        for r in results:
            counts.update(r["counts"])
            by_task.update(r["items_by_task"])
        skipped = {k: v for k, v in counts.items() if k not in ("samples", "items", "episodes")}
        report = {
            "source": str(Path(episodes_dir).resolve()),
            "episodes": counts.get("episodes", 0),
            "samples": counts.get("samples", 0),
            "items": counts.get("items", 0),
            "pairs": sum(r["pairs"] for r in results),
            "items_by_task": dict(sorted(by_task.items())),
            "skipped": dict(sorted(skipped.items())),
            "frames_per_episode": frames_per_episode,
            "cameras": list(cameras) if cameras else "all",
            "thresholds": {
                "min_visible_px": MIN_VISIBLE_PX,
                "max_occlusion": MAX_OCCLUSION,
                "min_box_side_px": MIN_BOX_SIDE_PX,
                "min_trace_px": MIN_TRACE_PX,
            },
        }
        atomic_write_text(out / REPORT_NAME, json.dumps(report, indent=1, sort_keys=True) + "\n")
        mark_complete(out)
    return report


def hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
