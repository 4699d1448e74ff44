"""Per-frame 2-D points of the objects of a recorded episode, for spatial-grounding co-training of a vision policy.

For every step, camera and object: the projected centre of the object's bounding box (its body frame origin raised
by its half height, as `dataengine.sim.labels` computes `pick_center_2d`) from the recorded object poses and camera
parameters (`object_poses`, `cam_intrinsics`, `cam_T_cam_to_world`), and whether it falls inside the frame. For the
pick object and the container, the generator's occlusion-aware visibility (`pick_visible`, `container_visible`) is
used instead. Points are normalized to [-1, 1] (x right, y down; -1 is the left / top edge of the frame).
"""

from __future__ import annotations

import numpy as np

from dataengine.geometry import project_points_cv

POINT_ARRAY_KEYS = ("object_poses", "cam_intrinsics", "cam_T_cam_to_world", "pick_visible", "container_visible")


def object_points(record, arrays: dict[str, np.ndarray], cameras: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(points (T, C, N, 2) in [-1, 1], visible (T, C, N) bool) for the policy's `cameras` and every object in
    `record.layout.objects` order."""
    layout = record.layout
    names = [c.name for c in record.cameras]
    lift = np.array([[0.0, 0.0, o.half_extents_m[2]] for o in layout.objects])
    poses = arrays["object_poses"]
    steps, n = poses.shape[0], poses.shape[1]
    points = np.zeros((steps, len(cameras), n, 2), np.float32)
    visible = np.zeros((steps, len(cameras), n), bool)
    roles = {"pick": None, "place": None}
    for i, obj in enumerate(layout.objects):
        if obj.role in roles:
            roles[obj.role] = i
    for c, camera in enumerate(cameras):
        ci = names.index(camera)
        info = record.cameras[ci]
        size = np.array([info.width, info.height], dtype=np.float64)
        K = arrays["cam_intrinsics"][ci]
        for t in range(steps):
            centres = poses[t, :, :3] + lift
            px, depth = project_points_cv(centres, K, np.linalg.inv(arrays["cam_T_cam_to_world"][t, ci]))
            inside = (depth > 1e-6) & np.all((px >= 0) & (px < size), axis=1)
            points[t, c] = np.where(np.isfinite(px), px / size * 2 - 1, 0.0)
            visible[t, c] = inside
        for role, key in (("pick", "pick_visible"), ("place", "container_visible")):
            if roles[role] is not None and key in arrays:
                visible[:, c, roles[role]] = arrays[key][:, ci].astype(bool)
    return points, visible


def grasp_yaw_targets(record, tool_poses: np.ndarray) -> np.ndarray:
    """(T, 2) cos and sin of twice the expert's grasp yaw relative to the tool's yaw (the gripper is symmetric under
    a half turn), per step."""
    from dataengine.sim.expert import grasp_yaw_world
    from dataengine.train.observations import tool_yaw

    layout = record.layout
    delta = grasp_yaw_world(layout.pick, layout.robot.base_yaw_rad) - tool_yaw(tool_poses[:, 3:], 0.0)
    return np.stack([np.cos(2 * delta), np.sin(2 * delta)], axis=1).astype(np.float32)


def role_indexes(layout) -> tuple[int, int]:
    """(pick object, container) indexes in `layout.objects`."""
    roles = [o.role for o in layout.objects]
    return roles.index("pick"), roles.index("place")


def point_query(obj) -> str:
    """The text that asks the pointing head for one object: 'Point to the red cube.'"""
    from dataengine.sim.language import phrase

    return f"Point to the {phrase(obj)}."
