"""LeRobot v3.0 writer: episodes concatenated into chunked parquet and one MP4 stream per camera.

Layout (as `ledataset`/`lerobot` `LeRobotDataset` reads it):
```
meta/info.json  meta/stats.json  meta/tasks.parquet  meta/episodes/chunk-000/file-000.parquet
data/chunk-000/file-000.parquet  videos/observation.images.<camera>/chunk-000/file-000.mp4
```
A data or video file takes episodes until it reaches `data_files_size_in_mb` / `video_files_size_in_mb`, then the
next file starts; `chunks_size` files make a chunk folder. Each row of `meta/episodes` locates its episode:
`data/chunk_index`, `data/file_index`, `dataset_from_index`, `dataset_to_index` (global frame indices) and per video
`videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp}` (seconds into that MP4), plus its tasks,
length and flattened `stats/<feature>/<stat>`. Extra columns carry what LeRobot has no slot for: `episode_key`,
the four instructions, `frame_status` (phase start steps, JSON) and per camera `cameras/<cam>/intrinsics_k` (3x3,
row-major) and `cameras/<cam>/T_cam_to_world_first` (4x4 OpenCV camera->world at step 0; every frame's is in the
`annotation.<cam>.T_cam_to_world` data column).
"""

from __future__ import annotations

import json
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
    write_tasks_parquet,
)
from dataengine.export.video import VideoWriter, video_info
from dataengine.sim.episode_reader import EpisodeData

CODEBASE_VERSION = "v3.0"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
EPISODES_PER_META_FILE = 10_000
MB = 1024 * 1024


class _Slot:
    """(chunk, file) indices of a growing file series."""

    def __init__(self, chunks_size: int) -> None:
        self.chunk, self.file, self.chunks_size = 0, 0, chunks_size

    def advance(self) -> None:
        self.file += 1
        if self.file == self.chunks_size:
            self.chunk, self.file = self.chunk + 1, 0

    def path(self, template: str, **extra) -> str:
        return template.format(chunk_index=self.chunk, file_index=self.file, **extra)


class _DataFiles:
    """Parquet data files, each closed when it would exceed the size limit."""

    def __init__(self, root: Path, options: ExportOptions) -> None:
        self.root, self.limit = root, options.data_files_size_in_mb * MB
        self.slot = _Slot(options.chunks_size)
        self.tables: list = []
        self.bytes = 0

    def add(self, table) -> tuple[int, int]:
        if self.tables and self.bytes + table.nbytes > self.limit:
            self.flush()
            self.slot.advance()
        self.tables.append(table)
        self.bytes += table.nbytes
        return self.slot.chunk, self.slot.file

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.tables:
            return
        path = self.root / self.slot.path(DATA_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(self.tables), path, compression="snappy")
        self.tables, self.bytes = [], 0


class _VideoFiles:
    """One MP4 series for one camera; a new file starts once the current one passes the size limit."""

    def __init__(self, root: Path, key: str, shape: tuple[int, int], options: ExportOptions) -> None:
        self.root, self.key, self.shape, self.options = root, key, shape, options
        self.limit = options.video_files_size_in_mb * MB
        self.slot = _Slot(options.chunks_size)
        self.writer: VideoWriter | None = None
        self.info: dict = {}

    def add(self, frames: np.ndarray) -> dict:
        if self.writer is not None and self.writer._tmp.stat().st_size >= self.limit:
            self.close()
            self.slot.advance()
        if self.writer is None:
            h, w = self.shape
            path = self.root / self.slot.path(VIDEO_PATH, video_key=self.key)
            self.writer = VideoWriter(path, self.options.fps, w, h, self.options.video)
        start = self.writer.frames
        for frame in frames:
            self.writer.write(frame)
        fps = self.options.fps
        return {
            f"videos/{self.key}/chunk_index": self.slot.chunk,
            f"videos/{self.key}/file_index": self.slot.file,
            f"videos/{self.key}/from_timestamp": start / fps,
            f"videos/{self.key}/to_timestamp": (start + len(frames)) / fps,
        }

    def close(self) -> None:
        if self.writer is not None:
            path = self.writer.close()
            self.info = self.info or video_info(path, self.options.fps, self.options.video)
            self.writer = None


def write_v30(episodes: Iterable[EpisodeData], root: Path, options: ExportOptions) -> ExportReport:
    """Write every episode to `root` (an empty folder). Returns counts for the report."""
    report = ExportReport(format=CODEBASE_VERSION)
    data = _DataFiles(root, options)
    videos: dict[str, _VideoFiles] = {}
    tasks: dict[str, int] = {}
    rows: list[dict] = []
    all_stats: list[dict] = []
    first: EpisodeData | None = None
    features: dict | None = None
    try:
        for episode_index, ep in enumerate(episodes):
            first = first or ep
            options.resolve_fps(ep)
            check_same_layout(first, ep)
            task = options.task_text(ep)
            task_index = tasks.setdefault(task, len(tasks))
            names = {c: c for c in ep.cameras}
            columns = cols.frame_columns(ep, episode_index, report.frames, task_index, options.fps, names)
            chunk, file = data.add(cols.to_arrow(columns))
            row = {
                "episode_index": episode_index,
                "tasks": [task],
                "length": ep.num_steps,
                "data/chunk_index": chunk,
                "data/file_index": file,
                "dataset_from_index": report.frames,
                "dataset_to_index": report.frames + ep.num_steps,
            }
            images = {}
            for cam in ep.cameras:
                key = f"observation.images.{cam}"
                rgb = np.stack([ep.rgb(cam, t) for t in range(ep.num_steps)])
                if key not in videos:
                    videos[key] = _VideoFiles(root, key, rgb.shape[1:3], options)
                row.update(videos[key].add(rgb))
                images[key] = rgb
            stats = cols.episode_stats(columns, images)
            all_stats.append(stats)
            row.update(_extra_columns(ep))
            row.update(_flat_stats(stats))
            rows.append(row)
            features = features or cols.features(columns, {k: v.shape for k, v in videos.items()}, {})
            report.add(ep)
        data.flush()
        for v in videos.values():
            v.close()
    except BaseException:
        for v in videos.values():
            if v.writer is not None:
                v.writer.abort()
        raise
    if first is None:
        return report
    for key, v in videos.items():
        features[key]["info"] = v.info
    _write_episodes(root, rows)
    write_tasks_parquet(root / "meta" / "tasks.parquet", tasks)
    write_json(root / "meta" / "stats.json", cols.stats_to_json(cols.aggregate_stats(all_stats)))
    layout = {
        "chunks_size": options.chunks_size,
        "data_files_size_in_mb": options.data_files_size_in_mb,
        "video_files_size_in_mb": options.video_files_size_in_mb,
    }
    paths = (DATA_PATH, VIDEO_PATH)
    write_info_json(root, report, options, tasks=len(tasks), layout=layout, paths=paths, features=features)
    return report


def _extra_columns(ep: EpisodeData) -> dict:
    meta = episode_metadata(ep)
    out: dict = {
        "episode_key": ep.key,
        "frame_status": json.dumps(meta["frame_status"], sort_keys=True),
    }
    for kind, text in meta["instructions"].items():
        out[f"instructions/{kind}"] = text
    for cam, params in meta["camera_data"].items():
        out[f"cameras/{cam}/intrinsics_k"] = np.asarray(params["intrinsics_k"], np.float64).reshape(-1).tolist()
        out[f"cameras/{cam}/T_cam_to_world_first"] = (
            np.asarray(params["T_cam_to_world_cv"], np.float64).reshape(-1).tolist()
        )
    return out


def _flat_stats(stats: dict[str, dict]) -> dict:
    flat = {}
    for feature, values in cols.stats_to_json(stats).items():
        for name, value in values.items():
            flat[f"stats/{feature}/{name}"] = value
    return flat


def _write_episodes(root: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    slot = _Slot(1000)
    for start in range(0, len(rows), EPISODES_PER_META_FILE):
        part = rows[start : start + EPISODES_PER_META_FILE]
        for row in part:
            row["meta/episodes/chunk_index"] = slot.chunk
            row["meta/episodes/file_index"] = slot.file
        table = pa.Table.from_pylist(part)
        path = root / slot.path(EPISODES_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="snappy")
        slot.advance()
