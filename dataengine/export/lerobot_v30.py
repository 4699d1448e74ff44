"""LeRobot v3.0 writer: episodes concatenated into chunked parquet and one MP4 stream per camera.

Layout (as `ledataset`/`lerobot` `LeRobotDataset` reads it), plus the files both formats share
(`lerobot_common.write_shared_meta`: modality.json, stats_gr00t.json, subtasks.parquet, cameras):
```
meta/info.json  meta/stats.json  meta/tasks.parquet  meta/subtasks.parquet  meta/episodes/chunk-000/file-000.parquet
meta/modality.json  meta/stats_gr00t.json  meta/cameras.json  meta/camera_params.jsonl
data/chunk-000/file-000.parquet  videos/observation.images.<camera>/chunk-000/file-000.mp4
```
A data file takes episodes until it would pass `data_files_size_in_mb`, a video file until it has passed
`video_files_size_in_mb`; then all of them roll over together (`_Files`), so an episode's data and videos share
their (chunk, file) index; `chunks_size` files make a chunk folder. Each row of `meta/episodes` locates its episode:
`data/chunk_index`, `data/file_index`, `dataset_from_index`, `dataset_to_index` (global frame indices) and per video
`videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp}` (seconds into that MP4), plus its tasks,
length and flattened `stats/<feature>/<stat>`. Extra columns carry what LeRobot has no slot for: `episode_key`,
the four instructions, `frame_status` (phase start steps, JSON), `perturbed` and per camera
`cameras/<cam>/intrinsics_k` (3x3, row-major) and `cameras/<cam>/T_cam_to_world_first` (4x4 OpenCV camera->world at
step 0).
"""

from __future__ import annotations

import json
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
    write_shared_meta,
    write_tasks_parquet,
)
from dataengine.export.lerobot_stats import DatasetStats, episode_stats, stats_to_json
from dataengine.export.video import VideoWriter, video_info
from dataengine.shards.episode import EpisodeData

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


class _Files:
    """The data file and the per-camera video files being written. They roll over together: when the data file
    would pass `data_files_size_in_mb` or a video file has passed `video_files_size_in_mb`, every one of them is
    closed and the next episode starts file i + 1 of each series, so an episode's data and videos always share a
    (chunk, file) index (the GR00T loader builds video paths from the data file's indices)."""

    def __init__(self, root: Path, options: ExportOptions) -> None:
        self.root, self.options = root, options
        self.slot = _Slot(options.chunks_size)
        self.tables: list = []
        self.bytes = 0
        self.writers: dict[str, VideoWriter] = {}
        self.video_info: dict[str, dict] = {}

    def _full(self, table) -> bool:
        if not self.tables:
            return False
        data_full = self.bytes + table.nbytes > self.options.data_files_size_in_mb * MB
        video_limit = self.options.video_files_size_in_mb * MB
        return data_full or any(w._tmp.stat().st_size >= video_limit for w in self.writers.values())

    def add(self, table, videos: dict[str, np.ndarray]) -> dict:
        """Append one episode (its table and (T, H, W, 3) frames per video key); returns its location columns."""
        if self._full(table):
            self.close()
            self.slot.advance()
        self.tables.append(table)
        self.bytes += table.nbytes
        row = {"data/chunk_index": self.slot.chunk, "data/file_index": self.slot.file}
        fps = self.options.fps
        for key, frames in videos.items():
            if key not in self.writers:
                path = self.root / self.slot.path(VIDEO_PATH, video_key=key)
                height, width = frames.shape[1:3]
                self.writers[key] = VideoWriter(path, fps, width, height, self.options.video)
            writer = self.writers[key]
            start = writer.frames
            for frame in frames:
                writer.write(frame)
            row[f"videos/{key}/chunk_index"] = self.slot.chunk
            row[f"videos/{key}/file_index"] = self.slot.file
            row[f"videos/{key}/from_timestamp"] = start / fps
            row[f"videos/{key}/to_timestamp"] = (start + len(frames)) / fps
        return row

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.tables:
            path = self.root / self.slot.path(DATA_PATH)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.concat_tables(self.tables), path, compression="snappy")
            self.tables, self.bytes = [], 0
        for key, writer in self.writers.items():
            path = writer.close()
            self.video_info.setdefault(key, video_info(path, self.options.fps, self.options.video))
        self.writers = {}

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


def write_v30(episodes: Iterable[EpisodeData], root: Path, options: ExportOptions) -> ExportReport:
    """Write every episode to `root` (an empty folder). Returns counts for the report."""
    report = ExportReport(format=CODEBASE_VERSION)
    files = _Files(root, options)
    tasks: dict[str, int] = {}
    subtasks: dict[str, int] = {}
    rows: list[dict] = []
    camera_rows: list[dict] = []
    stats = DatasetStats()
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
            columns = cols.frame_columns(ep, episode_index, report.frames, task_index, options.fps, names, subtasks)
            images = {f"observation.images.{cam}": np.stack([ep.rgb(cam, t) for t in range(ep.num_steps)])
                      for cam in ep.cameras}  # fmt: skip
            row = {
                "episode_index": episode_index,
                "tasks": [task],
                "length": ep.num_steps,
                **files.add(cols.to_arrow(columns), images),
                "dataset_from_index": report.frames,
                "dataset_to_index": report.frames + ep.num_steps,
            }
            episode = episode_stats(columns, images)
            stats.add(columns, episode)
            row.update(_extra_columns(ep))
            row.update(_flat_stats(episode))
            rows.append(row)
            camera_rows.append(camera_params_row(ep, episode_index))
            features = features or cols.features(columns, {k: v.shape[1:3] for k, v in images.items()}, {})
            report.add(ep)
        files.close()
    except BaseException:
        files.abort()
        raise
    if first is None:
        return report
    for key, info in files.video_info.items():
        features[key]["info"] = info
    _write_episodes(root, rows)
    write_tasks_parquet(root / "meta" / "tasks.parquet", tasks)
    layout = {
        "chunks_size": options.chunks_size,
        "data_files_size_in_mb": options.data_files_size_in_mb,
        "video_files_size_in_mb": options.video_files_size_in_mb,
    }
    write_shared_meta(
        root, report, options, first=first, tasks=len(tasks), subtasks=subtasks, stats=stats, features=features,
        column_views={c: c for c in first.cameras}, camera_rows=camera_rows, layout=layout,
        paths=(DATA_PATH, VIDEO_PATH),
    )  # fmt: skip
    return report


def _extra_columns(ep: EpisodeData) -> dict:
    meta = episode_metadata(ep)
    out: dict = {
        "episode_key": ep.key,
        "frame_status": json.dumps(meta["frame_status"], sort_keys=True),
        "perturbed": meta["perturbed"],
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
    for feature, values in stats_to_json(stats).items():
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
