"""End-effector columns of the LeRobot exports: the measured tool pose and the expert's tool targets in the robot
base frame (x forward, y left, z up, origin at the base: the frame a real arm reports its poses in).

- state `eef_position` (3, m), `eef_quaternion` (4, wxyz): the tool pose measured at step t;
- action `eef_position`, `eef_quaternion`: the expert's tool target of step t (episode array `action_tool_target`);
- action `eef_relative_position` (3, m): target position minus measured position at t;
  `eef_relative_rotation` (3, rad): rotation vector r with R_target = exp(r) R_t. This is entry 0 of a chunk of the
  `ee_relative` training action space (`dataengine.train.actions`); entry k of a chunk (target of t + k relative to
  the pose at t) is `action.eef_position[t + k] - state.eef_position[t]` for the position.

Quaternions are made continuous within an episode (q and -q are the same rotation; consecutive ones get a
non-negative dot product) and each episode starts in the hemisphere qx >= 0, so a normalizer sees no sign jumps.
"""

from __future__ import annotations

import numpy as np

from dataengine.errors import InputError
from dataengine.shards.episode import EpisodeData

TOOL_TARGET_KEY = "action_tool_target"  # (T, 7) the expert's tool target per step: world position + quaternion wxyz


def base_pose(layout) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), p (3,)) of the robot base in the world: p_world = R @ p_base + p."""
    c, s = np.cos(layout.robot.base_yaw_rad), np.sin(layout.robot.base_yaw_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]), np.asarray(layout.robot.base_pos_m, np.float64)


def base_to_world_matrix(layout) -> np.ndarray:
    """4x4 T_base_to_world."""
    R, p = base_pose(layout)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, p
    return T


def continuous_quaternions(quat_wxyz: np.ndarray) -> np.ndarray:
    """Flip signs so consecutive quaternions have a non-negative dot product, the first one with qx >= 0."""
    q = np.array(quat_wxyz, dtype=np.float64, copy=True)
    if len(q) == 0:
        return q
    if q[0, 1] < 0:
        q[0] = -q[0]
    for t in range(1, len(q)):
        if np.dot(q[t], q[t - 1]) < 0:
            q[t] = -q[t]
    return q


def poses_in_base(poses_world: np.ndarray, layout) -> tuple[np.ndarray, np.ndarray]:
    """World poses (T, 7: position + wxyz) -> (positions (T, 3), rotation matrices (T, 3, 3)) in the base frame."""
    from scipy.spatial.transform import Rotation

    poses = np.asarray(poses_world, dtype=np.float64).reshape(-1, 7)
    R, p = base_pose(layout)
    pos = (poses[:, :3] - p) @ R
    rot = R.T @ Rotation.from_quat(poses[:, 3:], scalar_first=True).as_matrix()
    return pos, rot


def eef_columns(ep: EpisodeData) -> dict[str, np.ndarray]:
    """{state_eef_position, state_eef_quaternion, action_eef_position, action_eef_quaternion,
    action_eef_relative_position, action_eef_relative_rotation} of one episode, (T, n) float64 each."""
    from scipy.spatial.transform import Rotation

    if TOOL_TARGET_KEY not in ep.arrays:
        raise InputError(
            f"{ep.key}: no {TOOL_TARGET_KEY} array (generated before the end-effector action space); regenerate "
            "the episodes with `dataengine sim generate RECIPE --out DIR` to export them"
        )
    layout = ep.record.layout
    tool_pos, tool_rot = poses_in_base(ep.arrays["ee_pose"], layout)
    target_pos, target_rot = poses_in_base(ep.arrays[TOOL_TARGET_KEY], layout)
    quat = lambda m: continuous_quaternions(Rotation.from_matrix(m).as_quat(scalar_first=True))  # noqa: E731
    relative = target_rot @ np.transpose(tool_rot, (0, 2, 1))  # R_target R_t^T
    return {
        "state_eef_position": tool_pos,
        "state_eef_quaternion": quat(tool_rot),
        "action_eef_position": target_pos,
        "action_eef_quaternion": quat(target_rot),
        "action_eef_relative_position": target_pos - tool_pos,
        "action_eef_relative_rotation": Rotation.from_matrix(relative).as_rotvec(),
    }
