"""The state vector a policy observes at a control step, built the same way from a recorded episode (training)
and from the live simulator (closed-loop evaluation), so the two can never drift apart.

State kinds (`data.state` in a training recipe):
- `proprio` (8): the 7 arm joint positions and the gripper opening;
- `proprio_ee` (19): `proprio` + joint velocities over the last control step (7) + the tool position (3, world)
  + the tool's yaw about the neutral wrist (1): what the robot knows about itself;
- `task` (37): `proprio_ee` + privileged task features, what the scripted expert knows: the grasp point (3) and
  grasp yaw (1, folded as the expert folds it), the place point (3), the pick object's half extents (3) and grasp
  height (1), the container's rim height (1), and the grasp and place points relative to the tool (6). A policy on
  `task` needs no camera: it measures whether the demonstrations are consistent and learnable, apart from vision
  (`dataengine sim probe`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dataengine.geometry import wrap_angle_rad

STATE_KINDS = ("proprio", "proprio_ee", "task")
STATE_DIMS = {"proprio": 8, "proprio_ee": 19, "task": 37}


@dataclass
class TaskContext:
    """Per-episode constants of the `task` state: from a recorded episode (`from_record`) or from the expert's plan
    of a live layout (`from_plan`)."""

    constants: np.ndarray  # (12,) grasp point, grasp yaw, place point, pick half extents, grasp height, rim z
    neutral_yaw_rad: float

    @property
    def grasp_point(self) -> np.ndarray:
        return self.constants[0:3]

    @property
    def place_point(self) -> np.ndarray:
        return self.constants[4:7]


def neutral_yaw(layout) -> float:
    """The tool yaw of the neutral wrist (the expert folds grasp yaws into +-90 degrees around it)."""
    return layout.robot.base_yaw_rad - math.pi / 2


def task_context(layout, grasp_point_m, place_point_m) -> TaskContext:
    from dataengine.sim.expert import grasp_yaw_world

    pick, container = layout.pick, layout.place
    neutral = neutral_yaw(layout)
    grasp_yaw = wrap_angle_rad(grasp_yaw_world(pick, layout.robot.base_yaw_rad) - neutral)
    rim_z = container.pose.pos_m[2] + container.interior.rim_z_m
    constants = np.concatenate(
        [
            np.asarray(grasp_point_m, dtype=np.float64),
            [grasp_yaw],
            np.asarray(place_point_m, dtype=np.float64),
            np.asarray(pick.half_extents_m, dtype=np.float64),
            [pick.grasp_height_m or 0.0, rim_z],
        ]
    )
    return TaskContext(constants, neutral)


def context_from_record(record) -> TaskContext:
    labels = record.labels
    if "grasp_point_3d" not in labels or "place_point_3d" not in labels:
        from dataengine.errors import InputError

        raise InputError(f"{record.key}: episode.json has no grasp/place points (labels); regenerate the episodes")
    return task_context(record.layout, labels["grasp_point_3d"], labels["place_point_3d"])


def tool_yaw(quat_wxyz: np.ndarray, neutral: float) -> np.ndarray:
    """Yaw of the tool's x axis about world z, relative to the neutral wrist, wrapped to [-pi, pi). (..., 4) -> (...)"""
    w, x, y, z = np.moveaxis(np.asarray(quat_wxyz, dtype=np.float64), -1, 0)
    yaw = np.arctan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z))  # angle of the rotated x axis
    return (yaw - neutral + math.pi) % (2 * math.pi) - math.pi


def state_vectors(
    kind: str,
    joints: np.ndarray,
    gripper_opening: np.ndarray,
    joint_velocity: np.ndarray,
    tool_pose: np.ndarray,
    context: TaskContext | None,
) -> np.ndarray:
    """(T, D) state vectors from per-step arrays: joints (T, 7), gripper opening (T,), joint velocity (T, 7), tool
    pose (T, 7: position + quaternion wxyz)."""
    if kind not in STATE_KINDS:
        raise ValueError(f"unknown state kind {kind!r}; known: {list(STATE_KINDS)}")
    joints = np.asarray(joints, dtype=np.float64).reshape(-1, 7)
    grip = np.asarray(gripper_opening, dtype=np.float64).reshape(-1, 1)
    parts = [joints, grip]
    if kind in ("proprio_ee", "task"):
        if context is None and kind == "task":
            raise ValueError("the task state needs a TaskContext")
        neutral = context.neutral_yaw_rad if context is not None else -math.pi / 2
        tool = np.asarray(tool_pose, dtype=np.float64).reshape(-1, 7)
        parts += [np.asarray(joint_velocity, dtype=np.float64).reshape(-1, 7), tool[:, :3]]
        parts.append(tool_yaw(tool[:, 3:], neutral)[:, None])
        if kind == "task":
            n = len(joints)
            c = context.constants
            parts += [np.tile(c, (n, 1)), c[0:3] - tool[:, :3], c[4:7] - tool[:, :3]]
    return np.concatenate(parts, axis=1)


def joint_velocity(joints: np.ndarray, control_dt_s: float) -> np.ndarray:
    """Joint velocity over the last control step (the first step: zero), the same for recorded and live states."""
    joints = np.asarray(joints, dtype=np.float64)
    out = np.zeros_like(joints)
    out[1:] = (joints[1:] - joints[:-1]) / control_dt_s
    return out


def episode_states(kind: str, record, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """(T, D) states of a recorded episode (arrays: state_joints, state_gripper_opening, ee_pose)."""
    joints = arrays["state_joints"]
    context = context_from_record(record) if kind == "task" else None
    if kind == "proprio_ee" and context is None:
        context = TaskContext(np.zeros(12), neutral_yaw(record.layout))
    velocity = joint_velocity(joints, 1.0 / record.control_hz)
    return state_vectors(kind, joints, arrays["state_gripper_opening"], velocity, arrays["ee_pose"], context)


STATE_ARRAY_KEYS = ("state_joints", "state_gripper_opening", "ee_pose")


class LiveState:
    """The state of a live simulator episode, step after step (keeps the previous joints for the velocity)."""

    def __init__(self, kind: str, layout, context: TaskContext | None, control_dt_s: float) -> None:
        self.kind, self.dt = kind, control_dt_s
        self.context = context or TaskContext(np.zeros(12), neutral_yaw(layout))
        self.previous: np.ndarray | None = None

    def observe(self, reading) -> np.ndarray:
        """The state vector now; call once per control step (before the step's action) so velocities match."""
        joints = np.asarray(reading.arm_qpos_rad, dtype=np.float64)
        velocity = np.zeros(7) if self.previous is None else (joints - self.previous) / self.dt
        self.previous = joints
        pose = np.concatenate([reading.tool_pos_m, reading.tool_quat_wxyz])
        return state_vectors(self.kind, joints, [reading.gripper_opening_m], velocity, pose, self.context)[0]
