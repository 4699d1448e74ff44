"""Options, report and metadata helpers shared by the LeRobot v3.0 and v2.1 writers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from dataengine.errors import InputError
from dataengine.export.lerobot_cameras import cameras_json
from dataengine.export.lerobot_columns import view_aliases
from dataengine.export.lerobot_gr00t import modality_json
from dataengine.export.lerobot_stats import DatasetStats, stats_to_json
from dataengine.export.trainer_config import GroundingSource, gr00t_stats_envelope
from dataengine.export.video import VideoSettings
from dataengine.shards.episode import EpisodeData

InstructionKind = Literal["base", "attr", "semantic", "spatial"]
INSTRUCTION_KINDS = ("base", "attr", "semantic", "spatial")


@dataclass
class ExportOptions:
    """What the user chose. `fps` None: the episodes' control rate (must be a whole number of frames per second)."""

    video: VideoSettings = field(default_factory=VideoSettings)
    instruction: InstructionKind = "base"
    robot_type: str = "franka_panda"
    fps: float | None = None
    chunks_size: int = 1000
    data_files_size_in_mb: int = 100
    video_files_size_in_mb: int = 200
    grounding: list[GroundingSource] = field(default_factory=list)  # llava-json exports for the trainer config
    trainer: str = "starvla"  # the loader meta/stats_gr00t.json and trainer/ are written for (trainer_config.TRAINERS)

    def __post_init__(self) -> None:
        if self.instruction not in INSTRUCTION_KINDS:
            raise InputError(f"unknown instruction kind {self.instruction!r}; valid: {list(INSTRUCTION_KINDS)}")
        for name in ("chunks_size", "data_files_size_in_mb", "video_files_size_in_mb"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")

    def resolve_fps(self, ep: EpisodeData) -> None:
        rate = float(ep.record.control_hz)
        if self.fps is None:
            if not rate.is_integer():
                raise InputError(f"{ep.key}: control rate {rate} Hz is not a whole number of frames per second")
            self.fps = rate
        elif abs(self.fps - rate) > 1e-9:
            raise InputError(f"{ep.key}: control rate {rate} Hz differs from the export's {self.fps} fps")

    def task_text(self, ep: EpisodeData) -> str:
        return getattr(ep.record.instructions, self.instruction)


@dataclass
class ExportReport:
    format: str
    episodes: int = 0
    frames: int = 0
    tasks: int = 0
    videos: int = 0
    cameras: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def add(self, ep: EpisodeData) -> None:
        self.episodes += 1
        self.frames += ep.num_steps
        self.cameras = self.cameras or list(ep.cameras)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "wall_s"}


def check_same_layout(first: EpisodeData, ep: EpisodeData) -> None:
    """Every exported episode must be rendered, with the first one's cameras and frame sizes."""
    if not ep.rendered:
        raise InputError(f"{ep.key}: the episode has no frames (generated with --no-render); render it to export")
    sizes = [(c.name, c.width, c.height) for c in ep.record.cameras]
    expected = [(c.name, c.width, c.height) for c in first.record.cameras]
    if sizes != expected:
        raise InputError(f"{ep.key}: cameras {sizes} differ from the first episode's {expected}; export them apart")


def episode_metadata(ep: EpisodeData) -> dict:
    """Per-episode facts users asked for: phases (InternData-M1 `frame_status`), instructions, camera
    intrinsics and extrinsics (OpenCV convention, camera->world at step 0), grasp and place points, ids."""
    rec = ep.record
    a = ep.arrays
    cameras = {}
    for c, cam in enumerate(rec.cameras):
        K = np.asarray(a["cam_intrinsics"][c]) if "cam_intrinsics" in a else np.asarray(cam.intrinsics_k)
        fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
        cameras[cam.name] = {
            "mount": cam.mount,
            "resolution": [cam.width, cam.height],
            "fovy_deg": cam.fovy_deg,
            "intrinsics_k": np.round(K, 9).tolist(),
            "camera_params": [fx, fy, cx, cy, cam.width, cam.height],
            "T_cam_to_world_cv": cam.T_cam_to_world_cv,
            "extrinsics_per_frame": "annotation.<view>.T_cam_to_world" if cam.mount != "world" else "static",
        }
    return {
        "episode_key": rec.key,
        "frame_status": {p.name: p.start for p in rec.phases},
        "phases": [{"name": p.name, "start": p.start, "end": p.end} for p in rec.phases],
        "instructions": {k: getattr(rec.instructions, k) for k in INSTRUCTION_KINDS},
        "camera_data": cameras,
        "pick_obj_uid": rec.task.pick_uid,
        "place_obj_uid": rec.task.place_uid,
        "pick_asset": rec.task.pick_asset,
        "place_asset": rec.task.place_asset,
        "relation": rec.task.relation,
        "grasp_point_3d": rec.labels.get("grasp_point_3d"),
        "place_point_3d": rec.labels.get("place_point_3d"),
        "seed": rec.seed,
        "recipe": rec.recipe,
        "perturbed": bool(rec.perturbation.perturbed) if rec.perturbation is not None else False,
    }


def write_info_json(
    root: Path, report: ExportReport, options: ExportOptions, *, tasks: int, layout: dict, paths: tuple, features: dict
) -> None:
    """`meta/info.json` in LeRobot's key order: version (`report.format`), robot and totals, then the version's own
    layout fields (`layout`), then fps, the one train split, the (data, video) path templates and the features.
    Also records the task count in the report."""
    data_path, video_path = paths
    info = {
        "codebase_version": report.format,
        "robot_type": options.robot_type,
        "total_episodes": report.episodes,
        "total_frames": report.frames,
        "total_tasks": tasks,
        **layout,
        "fps": int(options.fps),
        "splits": {"train": f"0:{report.episodes}"},
        "data_path": data_path,
        "video_path": video_path,
        "features": features,
    }
    write_json(root / "meta" / "info.json", info)
    report.tasks = tasks


def write_json(path: Path, data, indent: int | None = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, sort_keys=False, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")


def write_tasks_parquet(path: Path, tasks: dict[str, int], column: str = "task_index") -> None:
    """`meta/tasks.parquet` as LeRobot writes it with pandas: the task text is the (unnamed) index, one
    `task_index` column (`meta/subtasks.parquet` alike with `column="subtask_index"`). The pandas metadata is
    written by hand so pandas is not needed here."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ordered = sorted(tasks.items(), key=lambda kv: kv[1])
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": None}
        ],
        "columns": [
            {"name": column, "field_name": column, "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object",
             "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }  # fmt: skip
    table = pa.table(
        {
            column: pa.array([i for _, i in ordered], pa.int64()),
            "__index_level_0__": pa.array([t for t, _ in ordered], pa.string()),
        }
    ).replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_shared_meta(
    root: Path,
    report: ExportReport,
    options: ExportOptions,
    *,
    first: EpisodeData,
    tasks: int,
    subtasks: dict[str, int],
    stats: DatasetStats,
    features: dict,
    column_views: dict[str, str],
    camera_rows: list[dict],
    layout: dict,
    paths: tuple,
) -> None:
    """The `meta/` files both formats share: stats, the GR00T modality and statistics cache, subtasks, cameras,
    then `info.json`."""
    meta = root / "meta"
    aliases = view_aliases(first)
    write_json(meta / "stats.json", stats_to_json(stats.dataset()))
    write_json(meta / "stats_gr00t.json", stats.gr00t(envelope=gr00t_stats_envelope(options.trainer)), indent=1)
    write_json(meta / "modality.json", modality_json(features, aliases))
    write_tasks_parquet(meta / "subtasks.parquet", subtasks, column="subtask_index")
    write_json(meta / "cameras.json", cameras_json(first, column_views, aliases))
    write_jsonl(meta / "camera_params.jsonl", camera_rows)
    write_info_json(root, report, options, tasks=tasks, layout=layout, paths=paths, features=features)
