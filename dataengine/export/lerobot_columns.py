"""Per-frame columns, feature specs and statistics shared by the LeRobot v3.0 and v2.1 exports.

One row per control step. `observation.state` and `action` are float32 vectors whose named slices are listed in
`STATE_SLICES` / `ACTION_SLICES` (the v2.1 export repeats them in `meta/modality.json`):

- state (15): joints (7, rad), gripper_opening (1, m), eef_position (3, m, world), eef_quaternion (4, wxyz, world)
- action (16): delta_joints (7, rad: joint target minus current joints), gripper_close (1, 1 = close, 0 = open),
  joints (7, rad: absolute joint targets), gripper_opening (1, m: finger-distance target)

Per-frame annotations (float32, NaN = not available in that frame), per camera view `<v>`:
`annotation.<v>.bbox2d_tight` (2, 6): rows pick object, container; columns semantic id (0 pick, 1 container),
x_min, y_min, x_max, y_max (pixels of the stored frame, origin top-left), occlusion ratio; coordinates NaN where
the object has no pixels. `annotation.<v>.tcp_2d_trace` (K, 2): the next K tool positions projected (pixels, may
fall outside the image). `annotation.<v>.grasp_point_2d`, `annotation.<v>.place_point_2d` (2,).
`annotation.<v>.T_cam_to_world` (4, 4): the OpenCV camera->world extrinsics of that frame (wrist cameras move).
World frame: `annotation.tcp_3d_trace` (K, 3), `annotation.grasp_point_3d`, `annotation.place_point_3d` (3,).
Column names never contain "/" (LeRobot forbids it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dataengine.errors import InputError
from dataengine.sim.episode_reader import EpisodeData

STATE_SLICES: list[tuple[str, int]] = [
    ("joints", 7),
    ("gripper_opening", 1),
    ("eef_position", 3),
    ("eef_quaternion", 4),
]
ACTION_SLICES: list[tuple[str, int]] = [
    ("delta_joints", 7),
    ("gripper_close", 1),
    ("joints", 7),
    ("gripper_opening", 1),
]
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")


def slice_bounds(slices: list[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    """{name: (start, end)} of consecutive slices."""
    bounds, start = {}, 0
    for name, size in slices:
        bounds[name] = (start, start + size)
        start += size
    return bounds


def slice_names(slices: list[tuple[str, int]]) -> list[str]:
    """Per-element names: `joints_0`.. for vectors, the slice name for scalars."""
    return [name if size == 1 else f"{name}_{i}" for name, size in slices for i in range(size)]


def state_vector(ep: EpisodeData) -> np.ndarray:
    a = ep.arrays
    parts = [a["state_joints"], a["state_gripper_opening"][:, None], a["ee_pose"][:, :3], a["ee_pose"][:, 3:7]]
    return np.concatenate(parts, axis=1).astype(np.float32)


def action_vector(ep: EpisodeData) -> np.ndarray:
    a = ep.arrays
    parts = [
        a["action_delta_joints"],
        a["action_gripper_close"][:, None],
        a["action_joints"],
        a["action_gripper_opening"][:, None],
    ]
    return np.concatenate(parts, axis=1).astype(np.float32)


def view_aliases(ep: EpisodeData) -> dict[str, str]:
    """InternData-M1 / GR00T view names: world cameras base_view, base_view_2, ...; wrist cameras ego_view, ..."""
    aliases, counts = {}, {"world": 0, "wrist": 0}
    for cam in ep.record.cameras:
        counts[cam.mount] += 1
        stem = "base_view" if cam.mount == "world" else "ego_view"
        aliases[cam.name] = stem if counts[cam.mount] == 1 else f"{stem}_{counts[cam.mount]}"
    return aliases


def annotation_columns(ep: EpisodeData, view_names: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The per-frame annotation columns described in the module docstring, (T, ...) float32 each."""
    a = ep.arrays
    if "pick_box_xyxy" not in a:
        raise InputError(f"{ep.key}: the episode has no labels (generated with --no-render?); render it to export")
    T = ep.num_steps
    cols: dict[str, np.ndarray] = {
        "annotation.tcp_3d_trace": a["trace_3d"].astype(np.float32),
        "annotation.grasp_point_3d": a["grasp_point_3d"].astype(np.float32),
        "annotation.place_point_3d": a["place_point_3d"].astype(np.float32),
    }
    for c, cam in enumerate(ep.cameras):
        v = view_names[cam]
        boxes = np.full((T, 2, 6), np.nan, np.float32)
        boxes[:, 0, 0], boxes[:, 1, 0] = 0, 1
        boxes[:, 0, 1:5], boxes[:, 0, 5] = a["pick_box_xyxy"][:, c], a["pick_occlusion"][:, c]
        boxes[:, 1, 1:5], boxes[:, 1, 5] = a["container_box_xyxy"][:, c], a["container_occlusion"][:, c]
        cols[f"annotation.{v}.bbox2d_tight"] = boxes
        cols[f"annotation.{v}.tcp_2d_trace"] = a["trace_2d"][:, c].astype(np.float32)
        cols[f"annotation.{v}.grasp_point_2d"] = a["grasp_point_2d"][:, c].astype(np.float32)
        cols[f"annotation.{v}.place_point_2d"] = a["place_point_2d"][:, c].astype(np.float32)
        cols[f"annotation.{v}.T_cam_to_world"] = a["cam_T_cam_to_world"][:, c].astype(np.float32)
    return cols


def frame_columns(
    ep: EpisodeData, episode_index: int, first_index: int, task_index: int, fps: float, view_names: Mapping[str, str]
) -> dict[str, np.ndarray]:
    """Every non-video column of one episode, (T, ...) arrays. `timestamp` = frame_index / fps (video sync)."""
    T = ep.num_steps
    frame_index = np.arange(T, dtype=np.int64)
    cols = {
        "observation.state": state_vector(ep),
        "action": action_vector(ep),
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(T, episode_index, np.int64),
        "index": np.arange(first_index, first_index + T, dtype=np.int64),
        "task_index": np.full(T, task_index, np.int64),
    }
    cols.update(annotation_columns(ep, view_names))
    return cols


def features(
    columns: Mapping[str, np.ndarray], video_shapes: Mapping[str, tuple[int, int]], video_info: Mapping[str, dict]
) -> dict[str, dict]:
    """LeRobot `info.json` features: dtype, shape, names (videos: (H, W, 3) with `info`)."""
    feats: dict[str, dict] = {}
    for key, (height, width) in video_shapes.items():
        feats[key] = {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": dict(video_info.get(key, {})),
        }
    for key, values in columns.items():
        shape = list(values.shape[1:]) or [1]
        names = None
        if key == "observation.state":
            names = slice_names(STATE_SLICES)
        elif key == "action":
            names = slice_names(ACTION_SLICES)
        feats[key] = {"dtype": str(values.dtype), "shape": shape, "names": names}
    return feats


def to_arrow(columns: Mapping[str, np.ndarray]):
    """A pyarrow table: scalars as primitives, vectors as fixed-size lists, matrices as nested lists."""
    import pyarrow as pa

    arrays = {}
    for key, values in columns.items():
        if values.ndim == 1:
            arrays[key] = pa.array(values)
        elif values.ndim == 2:
            arrays[key] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
        else:
            inner = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[-1])
            for size in reversed(values.shape[1:-1]):
                inner = pa.FixedSizeListArray.from_arrays(inner, size)
            arrays[key] = inner
    return pa.table(arrays)


def numeric_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """min/max/mean/std/count and quantiles over the first axis, ignoring NaN (LeRobot's stat names)."""
    data = values.astype(np.float64)
    nan = bool(np.isnan(data).any())
    fns = (np.nanmin, np.nanmax, np.nanmean, np.nanstd, np.nanquantile) if nan else (
        np.min, np.max, np.mean, np.std, np.quantile)  # fmt: skip
    with np.errstate(all="ignore"):
        stats = {
            "min": fns[0](data, axis=0),
            "max": fns[1](data, axis=0),
            "mean": fns[2](data, axis=0),
            "std": fns[3](data, axis=0),
            "count": np.array([len(data)]),
        }
        quantiles = fns[4](data, QUANTILES, axis=0)
        for q, value in zip(QUANTILES, quantiles, strict=True):
            stats[f"q{round(q * 100):02d}"] = value
    return stats


def image_stats(frames_rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of (N, H, W, 3) uint8 frames in [0, 1], shaped (3, 1, 1) like LeRobot's (from every 2nd
    frame at a quarter of the resolution: a fixed subsample keeps it cheap and deterministic)."""
    pixels = frames_rgb[::2, ::4, ::4].reshape(-1, 3).astype(np.float64) / 255.0
    stats = numeric_stats(pixels)
    out = {k: (v if k == "count" else v.reshape(3, 1, 1)) for k, v in stats.items()}
    out["count"] = np.array([len(frames_rgb)])
    return out


def episode_stats(columns: Mapping[str, np.ndarray], images: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """Stats of one episode for every numeric column except annotations, plus one entry per video."""
    stats = {k: numeric_stats(v) for k, v in columns.items() if not k.startswith("annotation.")}
    stats.update({k: image_stats(v) for k, v in images.items()})
    return stats


def aggregate_stats(per_episode: list[dict[str, dict]]) -> dict[str, dict]:
    """Dataset stats from episode stats: exact min/max/mean/std (pooled), count-weighted mean of quantiles."""
    out: dict[str, dict] = {}
    for key in per_episode[0] if per_episode else []:
        items = [s[key] for s in per_episode if key in s]
        counts = np.array([float(s["count"][0]) for s in items])
        weights = counts / counts.sum()
        means = np.stack([s["mean"] for s in items])
        mean = np.tensordot(weights, means, axes=1)
        second = np.tensordot(weights, np.stack([s["std"] ** 2 + s["mean"] ** 2 for s in items]), axes=1)
        merged = {
            "min": np.min(np.stack([s["min"] for s in items]), axis=0),
            "max": np.max(np.stack([s["max"] for s in items]), axis=0),
            "mean": mean,
            "std": np.sqrt(np.maximum(second - mean**2, 0.0)),
            "count": np.array([int(counts.sum())]),
        }
        for q in QUANTILES:
            name = f"q{round(q * 100):02d}"
            merged[name] = np.tensordot(weights, np.stack([s[name] for s in items]), axes=1)
        out[key] = merged
    return out


def stats_to_json(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict:
    """Plain lists (NaN-free: a statistic with no data becomes null)."""

    def clean(value):
        if isinstance(value, np.ndarray):
            return clean(value.tolist())
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, float) and not np.isfinite(value):
            return None
        return value

    return {k: {name: clean(np.asarray(v)) for name, v in s.items()} for k, s in stats.items()}
