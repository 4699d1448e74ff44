"""The scripted expert: a top-down grasp, Cartesian waypoints and per-control-step IK targets.

Waypoints (GenManip / ManiSkill style): pre-grasp above the object, grasp, close, lift, pre-place above the
container, place, open, retreat, settle. Each segment is interpolated with a smooth (cosine) time profile at the
task's speed limits, then every control step's tool pose is solved with IK, warm-started from the previous step,
so joint targets change continuously. The plan is open-loop: `rollout.execute` runs it in physics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dataengine.geometry import (
    pose_to_matrix,
    quat_angle_between_rad,
    quat_yaw_rad,
    slerp_wxyz,
    top_down_quat_wxyz,
    transform_points,
    wrap_angle_rad,
)
from dataengine.records.layout import Layout, SceneObject
from dataengine.sim.backends.base import GRIPPER_MAX_OPENING_M, SimBackend
from dataengine.sim.recipe import EXPERT_PHASES, ExpertSpec
from dataengine.sim.sampler import AttemptFailed

PHASES = EXPERT_PHASES
MAX_JOINT_JUMP_RAD = 0.6  # per control step; larger jumps mean IK switched branches


@dataclass
class Plan:
    """Per control step targets (T steps) and the phase boundaries [start, end) in steps."""

    arm_targets_rad: np.ndarray  # (T, 7)
    gripper_targets_m: np.ndarray  # (T,)
    tool_targets: np.ndarray  # (T, 7): position (3) + quaternion wxyz (4), world frame
    phases: list[tuple[str, int, int]]
    grasp_point_m: np.ndarray  # (3,) world
    place_point_m: np.ndarray  # (3,) world: where the tool releases the object
    grasp_yaw_rad: float


@dataclass
class _Segment:
    phase: str
    pos: np.ndarray
    quat: np.ndarray
    gripper_m: float
    speed_m_s: float
    min_steps: int = 1


def grasp_yaw_world(obj: SceneObject, base_yaw_rad: float) -> float:
    """World yaw of the gripper's closing axis, the one of the two symmetric choices nearest the neutral wrist."""
    yaw = quat_yaw_rad(obj.pose.quat_wxyz) + obj.grasp_yaw_rad
    neutral = base_yaw_rad - math.pi / 2
    delta = wrap_angle_rad(yaw - neutral)
    if abs(delta) > math.pi / 2:
        delta = wrap_angle_rad(delta + math.pi)
    return neutral + delta


def place_point(container: SceneObject, pick: SceneObject, clearance_m: float) -> np.ndarray:
    """Tool position that holds the pick object's bottom `clearance_m` above the container's inner floor centre."""
    T_container = pose_to_matrix(container.pose.pos_m, container.pose.quat_wxyz)
    floor_centre = transform_points(T_container, np.array([[0.0, 0.0, container.interior.floor_z_m]]))[0]
    return floor_centre + np.array([0.0, 0.0, clearance_m + pick.grasp_height_m])


def _segments(
    layout: Layout, start_pos, start_quat, spec: ExpertSpec
) -> tuple[list[_Segment], np.ndarray, np.ndarray, float]:
    pick, container = layout.pick, layout.place
    yaw = grasp_yaw_world(pick, layout.robot.base_yaw_rad)
    down = top_down_quat_wxyz(yaw)
    grasp = np.asarray(pick.pose.pos_m) + np.array([0.0, 0.0, pick.grasp_height_m])
    place = place_point(container, pick, spec.place_clearance_m)
    rim_top = container.pose.pos_m[2] + container.interior.rim_z_m
    carry_z = max(grasp[2] + spec.lift_height_m, rim_top + 2 * pick.half_extents_m[2] - pick.grasp_height_m + 0.08)
    pre_grasp = grasp + np.array([0.0, 0.0, spec.pregrasp_height_m])
    lift = np.array([grasp[0], grasp[1], carry_z])
    pre_place = np.array([place[0], place[1], carry_z])
    retreat = place + np.array([0.0, 0.0, 0.10])
    open_m, closed_m = GRIPPER_MAX_OPENING_M, 0.0
    fast, slow = spec.max_speed_m_s, spec.slow_speed_m_s
    segments = [
        _Segment("approach", pre_grasp, down, open_m, fast, 3),
        _Segment("descend", grasp, down, open_m, slow, 3),
        _Segment("close", grasp, down, closed_m, fast, spec.gripper_close_steps),
        _Segment("lift", lift, down, closed_m, slow, 3),
        _Segment("transport", pre_place, down, closed_m, fast, 3),
        _Segment("lower", place, down, closed_m, slow, 2),
        _Segment("open", place, down, open_m, fast, spec.gripper_open_steps),
        _Segment("retreat", retreat, down, open_m, fast, 2),
        _Segment("settle", retreat, down, open_m, fast, max(spec.settle_steps, 1)),
    ]
    return segments, grasp, place, yaw


def plan_pick_place(backend: SimBackend, layout: Layout, spec: ExpertSpec) -> Plan:
    """Plan from the backend's current state (call after `reset`). Raises AttemptFailed('ik_unreachable' or
    'ik_discontinuity')."""
    dt = backend.control_dt_s
    reading = backend.robot()
    segments, grasp, place, yaw = _segments(layout, reading.tool_pos_m, reading.tool_quat_wxyz, spec)
    tool_targets, grippers, phases = [], [], []
    pos, quat = reading.tool_pos_m.copy(), reading.tool_quat_wxyz.copy()
    for seg in segments:
        dist = float(np.linalg.norm(seg.pos - pos))
        angle = quat_angle_between_rad(quat, seg.quat)
        # a cosine profile peaks at pi/2 times the mean speed
        steps = max(
            seg.min_steps,
            math.ceil(dist / seg.speed_m_s / dt * math.pi / 2),
            math.ceil(angle / spec.max_rot_speed_rad_s / dt * math.pi / 2),
        )
        start = len(tool_targets)
        for k in range(1, steps + 1):
            s = 0.5 - 0.5 * math.cos(math.pi * k / steps)
            p = pos + s * (seg.pos - pos)
            q = slerp_wxyz(quat, seg.quat, s)
            tool_targets.append(np.concatenate([p, q]))
            grippers.append(seg.gripper_m)
        phases.append((seg.phase, start, len(tool_targets)))
        pos, quat = seg.pos.astype(float), np.asarray(seg.quat, dtype=float)
    arm = np.zeros((len(tool_targets), 7))
    seed = reading.arm_qpos_rad.copy()
    for t, target in enumerate(tool_targets):
        result = backend.solve_ik(target[:3], target[3:], seed)
        if not result.converged:
            phase = next(name for name, a, b in phases if a <= t < b)
            raise AttemptFailed("ik_unreachable", f"{phase}: error {result.pos_error_m:.3f} m")
        if np.max(np.abs(result.arm_qpos_rad - seed)) > MAX_JOINT_JUMP_RAD:
            raise AttemptFailed("ik_discontinuity", f"step {t}")
        arm[t] = seed = result.arm_qpos_rad
    return Plan(
        arm_targets_rad=arm,
        gripper_targets_m=np.asarray(grippers, dtype=np.float64),
        tool_targets=np.asarray(tool_targets),
        phases=phases,
        grasp_point_m=grasp,
        place_point_m=place,
        grasp_yaw_rad=yaw,
    )
