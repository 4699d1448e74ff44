"""Per-frame columns and feature specs shared by the LeRobot v3.0 and v2.1 exports (docs/sim_outputs.md).

One row per control step. `observation.state` and `action` are float32 vectors made of named slices
(`STATE_SLICES` / `ACTION_SLICES`, repeated in `meta/modality.json`; `info.json` names every dimension):

- state (15): joints (7, rad), gripper_opening (1, m), eef_position (3, m), eef_quaternion (4, wxyz)
- action (29): delta_joints (7, rad: joint target minus current joints), gripper_close (1, 1 = close, 0 = open),
  joints (7, rad: absolute joint targets), gripper_opening (1, m: finger-distance target), eef_position (3, m) and
  eef_quaternion (4, wxyz): the expert's tool target, eef_relative_position (3, m) and eef_relative_rotation
  (3, rad, rotation vector): that target relative to the measured tool pose (`lerobot_eef`)
End-effector poses are in the robot base frame. `action.delta_eef_position` (3, m) repeats eef_relative_position as
its own column, under the name the GR00T-lineage loaders' pause-frame filter reads (InternVLA-M1 drops, by default,
the steps whose tool target is within 0.5 mm of the measured tool position and whose gripper command is unchanged;
without this column it stops with "No suitable position columns found").

Per-frame annotations, per camera view `<v>` (float32 pixels of the stored frame, origin top-left, x right, y down):
`annotation.<v>.bbox2d_tight` (2, 5): rows pick object, container; columns x_min, y_min, x_max, y_max, occlusion
ratio. `annotation.<v>.tcp_2d_trace` (K, 2): the next K tool positions projected. `annotation.<v>.grasp_point_2d`,
`annotation.<v>.place_point_2d` (2,). A label that does not exist in a frame (the object has no pixels, a point
falls outside the image or behind the camera) holds `FILL` (-1) and is False in its bool mask column
`<column>_valid` (`bbox2d_tight_valid` (2,), `tcp_2d_trace_valid` (K,), `grasp_point_2d_valid` (scalar), ...): no
column holds NaN. Cameras that move (wrist) also get `annotation.<v>.T_cam_to_world` (4, 4): that frame's OpenCV
camera->world extrinsics (static cameras: `meta/camera_params.jsonl`). World frame: `annotation.tcp_3d_trace`
(K, 3), `annotation.grasp_point_3d`, `annotation.place_point_3d` (3,). `subtask_index`: the episode phase of the
frame (`meta/subtasks.parquet`). Column names never contain "/" (LeRobot forbids it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dataengine.errors import InputError
from dataengine.export.lerobot_eef import eef_columns
from dataengine.shards.episode import EpisodeData

JOINTS = tuple(f"joint{i}" for i in range(1, 8))
XYZ = ("x", "y", "z")
WXYZ = ("qw", "qx", "qy", "qz")
ROTVEC = ("rx", "ry", "rz")
STATE_SLICES: list[tuple[str, tuple[str, ...]]] = [
    ("joints", JOINTS),
    ("gripper_opening", ()),
    ("eef_position", XYZ),
    ("eef_quaternion", WXYZ),
]
ACTION_SLICES: list[tuple[str, tuple[str, ...]]] = [
    ("delta_joints", JOINTS),
    ("gripper_close", ()),
    ("joints", JOINTS),
    ("gripper_opening", ()),
    ("eef_position", XYZ),
    ("eef_quaternion", WXYZ),
    ("eef_relative_position", XYZ),
    ("eef_relative_rotation", ROTVEC),
]
RELATIVE_ACTIONS = ("delta_joints", "eef_relative_position", "eef_relative_rotation")  # GR00T `absolute: false`
FILL = -1.0  # value of a 2-D label that does not exist in a frame (its `_valid` mask is False)
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
PAUSE_FILTER_COLUMN = "action.delta_eef_position"


def slice_size(elements: tuple[str, ...]) -> int:
    return len(elements) or 1


def slice_bounds(slices: list[tuple[str, tuple[str, ...]]]) -> dict[str, tuple[int, int]]:
    """{name: (start, end)} of consecutive slices."""
    bounds, start = {}, 0
    for name, elements in slices:
        bounds[name] = (start, start + slice_size(elements))
        start += slice_size(elements)
    return bounds


def slice_names(slices: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """Per-dimension names: `joints.joint1`, `eef_position.x`, ...; the slice name for scalars."""
    return [f"{name}.{e}" if elements else name for name, elements in slices for e in (elements or ("",))]


def state_vector(ep: EpisodeData, eef: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    a, eef = ep.arrays, eef or eef_columns(ep)
    parts = [a["state_joints"], a["state_gripper_opening"][:, None], eef["state_eef_position"],
             eef["state_eef_quaternion"]]  # fmt: skip
    return np.concatenate(parts, axis=1).astype(np.float32)


def action_vector(ep: EpisodeData, eef: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    a, eef = ep.arrays, eef or eef_columns(ep)
    parts = [
        a["action_delta_joints"],
        a["action_gripper_close"][:, None],
        a["action_joints"],
        a["action_gripper_opening"][:, None],
        eef["action_eef_position"],
        eef["action_eef_quaternion"],
        eef["action_eef_relative_position"],
        eef["action_eef_relative_rotation"],
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


def moving_cameras(ep: EpisodeData) -> list[str]:
    """Cameras whose extrinsics change from frame to frame (mounted on the robot)."""
    return [cam.name for cam in ep.record.cameras if cam.mount != "world"]


def _points_in_image(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Mask (...,) of 2-D points that exist (finite: in front of the camera) and lie inside the image."""
    x, y = points[..., 0], points[..., 1]
    with np.errstate(invalid="ignore"):
        return np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x <= width) & (y >= 0) & (y <= height)


def _masked(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """values with every element of an invalid entry set to FILL (valid has values' leading dimensions)."""
    out = np.array(values, dtype=np.float32, copy=True)
    out[~valid] = FILL
    return out


def annotation_columns(ep: EpisodeData, view_names: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The per-frame annotation columns described in the module docstring, (T, ...) each."""
    a = ep.arrays
    if "pick_box_xyxy" not in a:
        raise InputError(f"{ep.key}: the episode has no labels (generated with --no-render?); render it to export")
    cols: dict[str, np.ndarray] = {
        "annotation.tcp_3d_trace": a["trace_3d"].astype(np.float32),
        "annotation.grasp_point_3d": a["grasp_point_3d"].astype(np.float32),
        "annotation.place_point_3d": a["place_point_3d"].astype(np.float32),
    }
    moving = set(moving_cameras(ep))
    for c, cam in enumerate(ep.record.cameras):
        v = view_names[cam.name]
        boxes = np.stack(
            [np.concatenate([a[f"{role}_box_xyxy"][:, c], a[f"{role}_occlusion"][:, c, None]], axis=1)
             for role in ("pick", "container")], axis=1)  # fmt: skip
        box_valid = np.isfinite(boxes).all(axis=-1)
        cols[f"annotation.{v}.bbox2d_tight"] = _masked(boxes, box_valid)
        cols[f"annotation.{v}.bbox2d_tight_valid"] = box_valid
        for name, key in (("tcp_2d_trace", "trace_2d"), ("grasp_point_2d", "grasp_point_2d"),
                          ("place_point_2d", "place_point_2d")):  # fmt: skip
            points = a[key][:, c]
            valid = _points_in_image(points, cam.width, cam.height)
            cols[f"annotation.{v}.{name}"] = _masked(points, valid)
            cols[f"annotation.{v}.{name}_valid"] = valid
        if cam.name in moving:
            cols[f"annotation.{v}.T_cam_to_world"] = a["cam_T_cam_to_world"][:, c].astype(np.float32)
    return cols


def subtask_column(ep: EpisodeData, subtasks: dict[str, int]) -> np.ndarray:
    """(T,) int64 index of each frame's phase in `subtasks` (phase name -> index, extended in first-seen order)."""
    index = np.full(ep.num_steps, -1, np.int64)
    for phase in ep.record.phases:
        index[phase.start : phase.end] = subtasks.setdefault(phase.name, len(subtasks))
    if (index < 0).any():
        raise InputError(f"{ep.key}: steps {np.flatnonzero(index < 0)[:5].tolist()} belong to no phase")
    return index


def frame_columns(
    ep: EpisodeData,
    episode_index: int,
    first_index: int,
    task_index: int,
    fps: float,
    view_names: Mapping[str, str],
    subtasks: dict[str, int],
) -> dict[str, np.ndarray]:
    """Every non-video column of one episode, (T, ...) arrays. `timestamp` = frame_index / fps (video sync).
    Raises InputError when a column would hold NaN or infinity."""
    T = ep.num_steps
    frame_index = np.arange(T, dtype=np.int64)
    eef = eef_columns(ep)
    cols = {
        "observation.state": state_vector(ep, eef),
        "action": action_vector(ep, eef),
        PAUSE_FILTER_COLUMN: eef["action_eef_relative_position"].astype(np.float32),
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(T, episode_index, np.int64),
        "index": np.arange(first_index, first_index + T, dtype=np.int64),
        "task_index": np.full(T, task_index, np.int64),
        "subtask_index": subtask_column(ep, subtasks),
    }
    cols.update(annotation_columns(ep, view_names))
    for key, values in cols.items():
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise InputError(f"{ep.key}: column {key} has non-finite values; the episode is damaged")
    return cols


def _names(key: str, values: np.ndarray) -> list[str] | None:
    if key == "observation.state":
        return slice_names(STATE_SLICES)
    if key == "action":
        return slice_names(ACTION_SLICES)
    if key.endswith("bbox2d_tight_valid"):
        return ["pick", "container"]
    if key.endswith("_point_2d"):
        return ["x", "y"]
    if key.endswith("_point_3d") or key == PAUSE_FILTER_COLUMN:
        return list(XYZ)
    return None


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
        feats[key] = {"dtype": str(values.dtype), "shape": shape, "names": _names(key, values)}
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
