"""Action spaces: how a recorded episode's actions become training chunks, and how a predicted chunk becomes joint
targets in the simulator. Both directions live here, so training and closed-loop execution cannot disagree.

- `ee_relative` (7 = 6 + gripper): for the chunk starting at step t, entry k is the expert's tool target of step
  t + k relative to the tool pose measured at t, in the robot base frame: the position offset (3, m) and the
  rotation offset as a rotation vector (3, rad; R_target = exp(r) R_t). Executed by solving IK for each target from
  the measured pose at t (seeded with the previous solution). Errors do not accumulate within a chunk, and an
  object seen 2 cm to the left asks for a 2 cm move, whatever the arm's posture.
- `joint_relative` (8 = 7 + gripper): entry k is the expert's joint target of step t + k minus the joints measured
  at t; executed as the joints at t + entry (no IK; errors do not accumulate, but a 2 cm move is a posture-dependent
  joint offset).
- `joint_absolute` (8): entry k is the expert's joint target of step t + k, executed as is.
- `joint_delta` (8 = 7 + gripper): entry k is the expert's joint target of step t + k minus the joints measured at
  step t + k; executed as measured joints + delta at every step (errors of a chunk add up).

The gripper entry is the close command (1 close, 0 open). Past the end of an episode a chunk holds: the last target
(ee_relative) or zero delta (joint_delta), and the last gripper command.
"""

from __future__ import annotations

import numpy as np

from dataengine.errors import InputError

ACTION_SPACES = ("ee_relative", "joint_relative", "joint_absolute", "joint_delta")
MOTION_DIMS = {"ee_relative": 6, "joint_relative": 7, "joint_absolute": 7, "joint_delta": 7}
MAX_CHUNK = 32  # longest chunk the normalization statistics cover
TOOL_TARGET_KEY = "action_tool_target"  # (T, 7) the expert's tool target per step: world position + quaternion wxyz


def motion_dim(space: str) -> int:
    if space not in MOTION_DIMS:
        raise ValueError(f"unknown action space {space!r}; known: {list(ACTION_SPACES)}")
    return MOTION_DIMS[space]


def _base_rotation(layout) -> np.ndarray:
    c, s = np.cos(layout.robot.base_yaw_rad), np.sin(layout.robot.base_yaw_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def tool_in_base(poses_world: np.ndarray, layout) -> tuple[np.ndarray, np.ndarray]:
    """(positions (N, 3), rotation matrices (N, 3, 3)) of world tool poses (N, 7) in the robot base frame."""
    from scipy.spatial.transform import Rotation

    poses = np.asarray(poses_world, dtype=np.float64).reshape(-1, 7)
    R_base = _base_rotation(layout)
    pos = (poses[:, :3] - np.asarray(layout.robot.base_pos_m)) @ R_base
    rot = R_base.T @ Rotation.from_quat(poses[:, 3:], scalar_first=True).as_matrix()
    return pos, rot


def ee_relative_chunks(targets_world: np.ndarray, tools_world: np.ndarray, layout, chunk: int) -> np.ndarray:
    """(T, chunk, 6) chunks of every step: target poses (T, 7) relative to the measured tool poses (T, 7)."""
    from scipy.spatial.transform import Rotation

    tp, tr = tool_in_base(targets_world, layout)
    mp, mr = tool_in_base(tools_world, layout)
    steps = len(tp)
    index = np.minimum(np.arange(steps)[:, None] + np.arange(chunk)[None, :], steps - 1)  # (T, chunk), held
    d_pos = tp[index] - mp[:, None, :]
    d_rot = tr[index] @ np.transpose(mr, (0, 2, 1))[:, None]  # R_target R_t^T
    rotvec = Rotation.from_matrix(d_rot.reshape(-1, 3, 3)).as_rotvec().reshape(steps, chunk, 3)
    return np.concatenate([d_pos, rotvec], axis=-1)


def joint_delta_chunks(delta_joints: np.ndarray, chunk: int) -> np.ndarray:
    """(T, chunk, 7): the recorded per-step deltas, zero past the end."""
    steps = len(delta_joints)
    padded = np.concatenate([np.asarray(delta_joints, dtype=np.float64), np.zeros((chunk, delta_joints.shape[1]))])
    index = np.arange(steps)[:, None] + np.arange(chunk)[None, :]
    index = np.where(index < steps, index, steps)  # the zero row
    return padded[index]


def _held_index(steps: int, chunk: int) -> np.ndarray:
    return np.minimum(np.arange(steps)[:, None] + np.arange(chunk)[None, :], steps - 1)


def joint_relative_chunks(targets: np.ndarray, joints: np.ndarray, chunk: int) -> np.ndarray:
    """(T, chunk, 7): joint targets of t..t+chunk-1 (the last held) minus the joints measured at t."""
    targets = np.asarray(targets, dtype=np.float64)
    return targets[_held_index(len(targets), chunk)] - np.asarray(joints, dtype=np.float64)[:, None, :]


def gripper_chunks(close: np.ndarray, chunk: int) -> np.ndarray:
    """(T, chunk) close commands, the last one held past the end."""
    return np.asarray(close, dtype=np.float64)[_held_index(len(close), chunk)]


def required_arrays(space: str) -> tuple[str, ...]:
    """Arrays an action space reads (its tool targets are checked by `episode_chunks`, with a clear message)."""
    if space == "ee_relative":
        return ("ee_pose", "action_gripper_close")
    if space == "joint_delta":
        return ("action_delta_joints", "action_gripper_close")
    return ("action_joints", "state_joints", "action_gripper_close")


def episode_chunks(space: str, record, arrays: dict[str, np.ndarray], chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(motion (T, chunk, D), gripper close (T, chunk)) of every step of a recorded episode."""
    if space == "ee_relative":
        if TOOL_TARGET_KEY not in arrays:
            raise InputError(
                f"{record.key}: no {TOOL_TARGET_KEY} array (generated before the end-effector action space); "
                "regenerate the episodes with `dataengine sim generate RECIPE --out DIR`, "
                "or train with data.actions: joint_delta"
            )
        motion = ee_relative_chunks(arrays[TOOL_TARGET_KEY], arrays["ee_pose"], record.layout, chunk)
    elif space == "joint_relative":
        motion = joint_relative_chunks(arrays["action_joints"], arrays["state_joints"], chunk)
    elif space == "joint_absolute":
        targets = arrays["action_joints"]
        motion = targets[_held_index(len(targets), chunk)]
    else:
        motion = joint_delta_chunks(arrays["action_delta_joints"], chunk)
    return motion, gripper_chunks(arrays["action_gripper_close"], chunk)


class ChunkExecutor:
    """Joint targets for the steps of one predicted chunk (de-normalized motion (n, D) and close commands (n,))."""

    def __init__(self, space: str, backend, layout, motion: np.ndarray, close: np.ndarray) -> None:
        self.space, self.backend, self.close = space, backend, close
        self.motion = np.asarray(motion, dtype=np.float64)
        self._joints: list[np.ndarray] | None = None
        if space == "ee_relative":
            self._joints = self._solve(layout)
        elif space == "joint_relative":
            self._joints = list(backend.robot().arm_qpos_rad + self.motion)
        elif space == "joint_absolute":
            self._joints = list(self.motion)

    def _solve(self, layout) -> list[np.ndarray]:
        from scipy.spatial.transform import Rotation

        reading = self.backend.robot()
        pos, rot = tool_in_base(np.concatenate([reading.tool_pos_m, reading.tool_quat_wxyz])[None], layout)
        R_base, base = _base_rotation(layout), np.asarray(layout.robot.base_pos_m)
        seed, out = reading.arm_qpos_rad, []
        for d in self.motion:
            target_pos = base + R_base @ (pos[0] + d[:3])
            target_rot = R_base @ Rotation.from_rotvec(d[3:]).as_matrix() @ rot[0]
            quat = Rotation.from_matrix(target_rot).as_quat(scalar_first=True)
            seed = self.backend.solve_ik(target_pos, quat, seed).arm_qpos_rad
            out.append(seed)
        return out

    def joint_targets(self, k: int) -> np.ndarray:
        """Arm joint targets of step k of the chunk (read just before the step is applied)."""
        if self._joints is not None:
            return self._joints[k]
        return self.backend.robot().arm_qpos_rad + self.motion[k]
