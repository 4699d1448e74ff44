"""LeRobot v2.1 writer, as InternVLA-M1's and starVLA's `gr00t_lerobot` loaders read it (`lerobot_version: v2.0`
in their configs: they name the per-episode layout v2.0).

```
meta/info.json  meta/episodes.jsonl  meta/tasks.jsonl  meta/episodes_stats.jsonl  meta/stats.json
meta/stats_gr00t.json  meta/modality.json  meta/subtasks.parquet  meta/cameras.json  meta/camera_params.jsonl
data/chunk-000/episode_000000.parquet  videos/chunk-000/observation.images.<camera>/episode_000000.mp4
```
Annotation columns use the GR00T view names (world cameras base_view, base_view_2, ...; wrist cameras ego_view,
...: InternVLA-M1's `demo_sim_franka_delta_joints` config reads `video.base_view` and `video.ego_view`). Each line
of `episodes.jsonl` carries `task_data`: phases (`frame_status`), instructions, and per view intrinsics
(`camera_params` [fx, fy, cx, cy, W, H] and K) and extrinsics (camera->world, OpenCV) — the fields InternData-M1
users had to reverse-engineer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dataengine.export import lerobot_columns as cols
from dataengine.export.lerobot_cameras import camera_params_row
from dataengine.export.lerobot_common import (
    ExportOptions,
    ExportReport,
    check_same_layout,
    episode_metadata,
    write_jsonl,
    write_shared_meta,
)
from dataengine.export.lerobot_stats import DatasetStats, episode_stats, stats_to_json
from dataengine.export.video import VideoWriter, video_info
from dataengine.shards.episode import EpisodeData

CODEBASE_VERSION = "v2.1"
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


def write_v21(episodes: Iterable[EpisodeData], root: Path, options: ExportOptions) -> ExportReport:
    """Write every episode to `root` (an empty folder), one parquet and one MP4 per camera each."""
    report = ExportReport(format=CODEBASE_VERSION)
    tasks: dict[str, int] = {}
    subtasks: dict[str, int] = {}
    episode_rows, stats_rows, camera_rows = [], [], []
    stats = DatasetStats()
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
        columns = cols.frame_columns(ep, episode_index, report.frames, task_index, options.fps, aliases, subtasks)
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
        episode = episode_stats(columns, images)
        stats.add(columns, episode)
        stats_rows.append({"episode_index": episode_index, "stats": stats_to_json(episode)})
        meta = episode_metadata(ep)
        meta["camera_data"] = {aliases[c]: {"camera": c, **v} for c, v in meta["camera_data"].items()}
        episode_rows.append(
            {"episode_index": episode_index, "tasks": [task], "length": ep.num_steps, "task_data": meta}
        )
        camera_rows.append(camera_params_row(ep, episode_index))
        features = features or cols.features(columns, {k: v.shape[1:3] for k, v in images.items()}, {})
        report.add(ep)
    if first is None:
        return report
    for key, info in vinfo.items():
        features[key]["info"] = info
    write_jsonl(root / "meta" / "episodes.jsonl", episode_rows)
    write_jsonl(root / "meta" / "episodes_stats.jsonl", stats_rows)
    write_jsonl(root / "meta" / "tasks.jsonl", [{"task_index": i, "task": t} for t, i in tasks.items()])
    chunks = (report.episodes - 1) // options.chunks_size + 1
    layout = {
        "total_videos": report.episodes * len(first.cameras),
        "total_chunks": chunks,
        "chunks_size": options.chunks_size,
    }
    write_shared_meta(
        root, report, options, first=first, tasks=len(tasks), subtasks=subtasks, stats=stats, features=features,
        column_views=aliases, camera_rows=camera_rows, layout=layout, paths=(DATA_PATH, VIDEO_PATH),
    )  # fmt: skip
    return report


def _write_parquet(path: Path, columns: dict[str, np.ndarray]) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(cols.to_arrow(columns), path, compression="snappy")
