"""Geometric success predicate for pick-and-place (RoboTwin / GenManip style), read through the backend interface.

Success: the pick object's centre lies over the container's interior, its bottom rests between the inner floor
and just above the rim, it is (nearly) still, it does not touch the table or the robot, and the gripper is open.
Each failure has a snake_case reason that doubles as a stat key.
"""

from __future__ import annotations

import numpy as np

from dataengine.geometry import pose_to_matrix, quat_wxyz_to_matrix
from dataengine.records.layout import Layout
from dataengine.sim.backends.base import SimBackend

MAX_REST_SPEED_M_S = 0.05
MIN_OPEN_GRIPPER_M = 0.06
ABOVE_RIM_TOLERANCE_M = 0.03
BELOW_FLOOR_TOLERANCE_M = 0.015
MAX_CONTAINER_TILT_RAD = 0.35


def object_in_container_local(pick_pos: np.ndarray, container_pose) -> np.ndarray:
    """Pick object's bottom centre in the container's body frame."""
    T = pose_to_matrix(*container_pose)
    return (np.linalg.inv(T) @ np.append(pick_pos, 1.0))[:3]


def inside_interior(layout: Layout, local: np.ndarray) -> bool:
    interior = layout.place.interior
    hx, hy = interior.half_xy_m
    if interior.shape == "round":
        inside_xy = float(np.hypot(local[0], local[1])) <= hx
    else:
        inside_xy = abs(local[0]) <= hx and abs(local[1]) <= hy
    z_ok = interior.floor_z_m - BELOW_FLOOR_TOLERANCE_M <= local[2] <= interior.rim_z_m + ABOVE_RIM_TOLERANCE_M
    return bool(inside_xy and z_ok)


def goal_holds(backend: SimBackend, layout: Layout) -> bool:
    """Only the geometric part: the object is in or on the container."""
    pick_pos, _ = backend.object_pose(layout.pick.uid)
    local = object_in_container_local(pick_pos, backend.object_pose(layout.place.uid))
    return inside_interior(layout, local)


def check_success(backend: SimBackend, layout: Layout) -> str | None:
    """None on success, else the failure reason."""
    pick, container = layout.pick.uid, layout.place.uid
    _, container_quat = backend.object_pose(container)
    if np.arccos(np.clip(quat_wxyz_to_matrix(container_quat)[2, 2], -1, 1)) > MAX_CONTAINER_TILT_RAD:
        return "container_tipped"
    if not goal_holds(backend, layout):
        return "not_in_container"
    lin, _ = backend.object_velocity(pick)
    if float(np.linalg.norm(lin)) > MAX_REST_SPEED_M_S:
        return "object_not_resting"
    if backend.contacts_between(pick, "table"):
        return "object_touches_table"
    if backend.robot().gripper_opening_m < MIN_OPEN_GRIPPER_M:
        return "gripper_not_open"
    if backend.contacts_between(pick, "robot"):
        return "object_touches_robot"
    return None
