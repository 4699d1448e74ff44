"""LeRobot v2.1 writer with GR00T `meta/modality.json`, as InternVLA-M1's `gr00t_lerobot` loader reads it.

```
meta/info.json  meta/episodes.jsonl  meta/tasks.jsonl  meta/episodes_stats.jsonl  meta/stats.json
meta/stats_gr00t.json  meta/modality.json
data/chunk-000/episode_000000.parquet  videos/chunk-000/observation.images.<camera>/episode_000000.mp4
```
`modality.json` names the slices of `observation.state` (state.joints, state.gripper_opening, state.eef_position,
state.eef_quaternion) and `action` (action.delta_joints 7, action.gripper_close 1, action.joints 7,
action.gripper_opening 1), maps GR00T video keys to the camera features (world cameras base_view, base_view_2, ...;
wrist cameras ego_view, ...: InternVLA-M1's `demo_sim_franka_delta_joints` config reads `video.base_view` and
`video.ego_view`), the language key `annotation.human.action.task_description` to `task_index`, and lists the
per-frame annotation columns (2-D traces, tight boxes, grasp/place points, per-frame extrinsics). Each line of
`episodes.jsonl` carries `task_data`: phases (`frame_status`), instructions, and per camera intrinsics
(`camera_params` [fx, fy, cx, cy, W, H] and K) and extrinsics (camera->world, OpenCV) — the fields InternData-M1
users had to reverse-engineer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dataengine.export import lerobot_columns as cols
from dataengine.export.lerobot_common import (
    ExportOptions,
    ExportReport,
    check_same_layout,
    episode_metadata,
    write_info_json,
    write_json,
    write_jsonl,
)
from dataengine.export.video import VideoWriter, video_info
from dataengine.sim.episode_reader import EpisodeData

CODEBASE_VERSION = "v2.1"
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
LANGUAGE_KEY = "human.action.task_description"
GR00T_STATS = ("mean", "std", "min", "max", "q01", "q99")


def write_v21(episodes: Iterable[EpisodeData], root: Path, options: ExportOptions) -> ExportReport:
    """Write every episode to `root` (an empty folder), one parquet and one MP4 per camera each."""
    report = ExportReport(format=CODEBASE_VERSION)
    tasks: dict[str, int] = {}
    episode_rows, stats_rows, all_stats = [], [], []
    first: EpisodeData | None = None
    features: dict | None = None
    aliases: dict[str, str] = {}
    vinfo: dict[str, dict] = {}
    for episode_index, ep in enumerate(episodes):
        first = first or ep
        options.resolve_fps(ep)
        check_same_layout(first, ep)
        aliases = aliases or cols.view_aliases(ep)
        chunk = episode_index // options.chunks_size
        task = options.task_text(ep)
        task_index = tasks.setdefault(task, len(tasks))
        columns = cols.frame_columns(ep, episode_index, report.frames, task_index, options.fps, aliases)
        _write_parquet(root / DATA_PATH.format(episode_chunk=chunk, episode_index=episode_index), columns)
        images = {}
        for cam in ep.cameras:
            key = f"observation.images.{cam}"
            rgb = np.stack([ep.rgb(cam, t) for t in range(ep.num_steps)])
            path = root / VIDEO_PATH.format(episode_chunk=chunk, video_key=key, episode_index=episode_index)
            writer = VideoWriter(path, options.fps, rgb.shape[2], rgb.shape[1], options.video)
            try:
                for frame in rgb:
                    writer.write(frame)
            except BaseException:
                writer.abort()
                raise
            writer.close()
            vinfo.setdefault(key, video_info(path, options.fps, options.video))
            images[key] = rgb
        stats = cols.episode_stats(columns, images)
        all_stats.append(stats)
        stats_rows.append({"episode_index": episode_index, "stats": cols.stats_to_json(stats)})
        meta = episode_metadata(ep)
        meta["camera_data"] = {aliases[c]: {"camera": c, **v} for c, v in meta["camera_data"].items()}
        episode_rows.append(
            {"episode_index": episode_index, "tasks": [task], "length": ep.num_steps, "task_data": meta}
        )
        if features is None:
            shapes = {f"observation.images.{c}": (ep.record.cameras[i].height, ep.record.cameras[i].width)
                      for i, c in enumerate(ep.cameras)}  # fmt: skip
            features = cols.features(columns, shapes, {})
        report.add(ep)
    if first is None:
        return report
    for key, info in vinfo.items():
        features[key]["info"] = info
    dataset_stats = cols.aggregate_stats(all_stats)
    write_jsonl(root / "meta" / "episodes.jsonl", episode_rows)
    write_jsonl(root / "meta" / "episodes_stats.jsonl", stats_rows)
    write_jsonl(root / "meta" / "tasks.jsonl", [{"task_index": i, "task": t} for t, i in tasks.items()])
    write_json(root / "meta" / "stats.json", cols.stats_to_json(dataset_stats))
    gr00t = {
        k: {s: v[s] for s in GR00T_STATS} for k, v in dataset_stats.items() if not k.startswith("observation.images")
    }
    write_json(root / "meta" / "stats_gr00t.json", cols.stats_to_json(gr00t))
    write_json(root / "meta" / "modality.json", modality_json(features, aliases))
    chunks = (report.episodes - 1) // options.chunks_size + 1
    layout = {
        "total_videos": report.episodes * len(first.cameras),
        "total_chunks": chunks,
        "chunks_size": options.chunks_size,
    }
    paths = (DATA_PATH, VIDEO_PATH)
    write_info_json(root, report, options, tasks=len(tasks), layout=layout, paths=paths, features=features)
    return report


def modality_json(features: dict, aliases: dict[str, str]) -> dict:
    """GR00T's `LeRobotModalityMetadata`: named state/action slices, video keys, annotations."""

    def slices(table, original_key, absolute):
        out = {}
        for name, (start, end) in cols.slice_bounds(table).items():
            entry = {"start": start, "end": end, "original_key": original_key, "dtype": "float32"}
            entry["absolute"] = absolute(name)
            if name.endswith("quaternion"):
                entry["rotation_type"] = "quaternion"
            out[name] = entry
        return out

    annotation = {LANGUAGE_KEY: {"original_key": "task_index"}}
    for key in features:
        if key.startswith("annotation."):
            annotation[key.removeprefix("annotation.")] = {"original_key": key}
    return {
        "state": slices(cols.STATE_SLICES, "observation.state", lambda name: True),
        "action": slices(cols.ACTION_SLICES, "action", lambda name: not name.startswith("delta_")),
        "video": {alias: {"original_key": f"observation.images.{cam}"} for cam, alias in aliases.items()},
        "annotation": annotation,
    }


def _write_parquet(path: Path, columns: dict[str, np.ndarray]) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(cols.to_arrow(columns), path, compression="snappy")
