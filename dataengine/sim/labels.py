"""Per-frame spatial labels from segmentation and projection.

For every frame and camera: tight 2-D boxes (xyxy pixels) of the pick object and the container from their
segmentation pixels, with an occlusion ratio (1 - visible pixels / pixels of the amodal silhouette, the convex hull
of the object's projected surface points); the projected centres of both; the projected grasp point (fixed on the
object, so it follows it once grasped) and place point; and the future tool trace (the next K tool positions,
3-D world and 2-D per camera, the last position repeated near the end). Pixel coordinates follow
`dataengine.geometry` (continuous, origin at the top-left corner). Missing values are NaN.
"""

from __future__ import annotations

import math

import numpy as np

from dataengine.geometry import (
    convex_hull_mask,
    mask_bbox_xyxy,
    pose_to_matrix,
    project_points_cv,
    transform_points,
)
from dataengine.records.layout import Layout, Part, SceneObject
from dataengine.sim.meshes import mesh_arrays
from dataengine.sim.render import RenderedEpisode
from dataengine.sim.rollout import Trajectory

MIN_VISIBLE_PX = 12  # fewer segmentation pixels than this: not visible
MAX_VISIBLE_OCCLUSION = 0.5  # more occluded than this: not counted as visible (the box may miss the centre)


def _part_points(part: Part, base_dir: str | None) -> np.ndarray:
    s = part.size_m
    if part.shape == "box":
        pts = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float) * s[:3]
    elif part.shape in ("cylinder", "capsule"):
        angles = np.linspace(0, 2 * math.pi, 16, endpoint=False)
        ring = np.stack([np.cos(angles) * s[0], np.sin(angles) * s[0]], axis=1)
        cap = s[0] if part.shape == "capsule" else 0.0
        pts = np.vstack([np.hstack([ring, np.full((16, 1), z)]) for z in (-s[1] - cap, -s[1], s[1], s[1] + cap)])
    elif part.shape in ("sphere", "ellipsoid"):
        radii = np.array([s[0]] * 3 if part.shape == "sphere" else s[:3])
        golden = math.pi * (3 - math.sqrt(5))
        k = np.arange(64)
        z = 1 - 2 * (k + 0.5) / 64
        r = np.sqrt(1 - z**2)
        pts = np.stack([r * np.cos(golden * k), r * np.sin(golden * k), z], axis=1) * radii
    else:
        pts, _ = mesh_arrays(part.mesh, base_dir)
    return transform_points(pose_to_matrix(part.pos_m, part.quat_wxyz), pts)


def object_surface_points(obj: SceneObject, base_dir: str | None = None) -> np.ndarray:
    """Points on the object's outer surface in its body frame (N, 3), for silhouettes."""
    return np.vstack([_part_points(p, base_dir) for p in obj.parts])


def _project(points_world: np.ndarray, K: np.ndarray, T_cam_to_world: np.ndarray) -> np.ndarray:
    pixels, depth = project_points_cv(points_world, K, np.linalg.inv(T_cam_to_world))
    pixels[depth <= 1e-6] = np.nan
    return pixels


def compute_labels(
    layout: Layout,
    traj: Trajectory,
    rendered: RenderedEpisode,
    grasp_point_world_at_grasp: np.ndarray,
    grasp_step: int,
    place_point_world: np.ndarray,
    horizon: int,
    base_dir: str | None = None,
) -> dict[str, np.ndarray]:
    """Label arrays, (T, C, ...) with cameras in `layout.cameras` order."""
    names = [c.name for c in layout.cameras]
    T, C = traj.steps, len(names)
    pick_idx = next(i for i, o in enumerate(layout.objects) if o.role == "pick")
    place_idx = next(i for i, o in enumerate(layout.objects) if o.role == "place")
    surfaces = {pick_idx: object_surface_points(layout.objects[pick_idx], base_dir)}
    surfaces[place_idx] = object_surface_points(layout.objects[place_idx], base_dir)
    # grasp point and place point in the frames of the object / container, so they move with them
    T_pick_grasp = pose_to_matrix(
        traj.object_poses[grasp_step, pick_idx, :3], traj.object_poses[grasp_step, pick_idx, 3:]
    )
    grasp_local = transform_points(np.linalg.inv(T_pick_grasp), grasp_point_world_at_grasp[None])[0]
    T_place0 = pose_to_matrix(traj.object_poses[0, place_idx, :3], traj.object_poses[0, place_idx, 3:])
    place_local = transform_points(np.linalg.inv(T_place0), place_point_world[None])[0]

    nan = np.float32(np.nan)
    out = {
        "pick_box_xyxy": np.full((T, C, 4), nan, np.float32),
        "container_box_xyxy": np.full((T, C, 4), nan, np.float32),
        "pick_visible_px": np.zeros((T, C), np.int32),
        "container_visible_px": np.zeros((T, C), np.int32),
        "pick_occlusion": np.full((T, C), nan, np.float32),
        "container_occlusion": np.full((T, C), nan, np.float32),
        "pick_visible": np.zeros((T, C), bool),
        "container_visible": np.zeros((T, C), bool),
        "pick_center_2d": np.full((T, C, 2), nan, np.float32),
        "container_center_2d": np.full((T, C, 2), nan, np.float32),
        "grasp_point_3d": np.zeros((T, 3), np.float64),
        "grasp_point_2d": np.full((T, C, 2), nan, np.float32),
        "place_point_3d": np.zeros((T, 3), np.float64),
        "place_point_2d": np.full((T, C, 2), nan, np.float32),
        "trace_3d": np.zeros((T, horizon, 3), np.float64),
        "trace_2d": np.full((T, C, horizon, 2), nan, np.float32),
    }
    tool_positions = traj.tool_pose[:, :3]
    for t in range(T):
        future = np.arange(t + 1, t + 1 + horizon)
        trace = np.where((future < T)[:, None], tool_positions[np.minimum(future, T - 1)], traj.final_tool_pose[:3])
        out["trace_3d"][t] = trace
        T_pick = pose_to_matrix(traj.object_poses[t, pick_idx, :3], traj.object_poses[t, pick_idx, 3:])
        T_place = pose_to_matrix(traj.object_poses[t, place_idx, :3], traj.object_poses[t, place_idx, 3:])
        out["grasp_point_3d"][t] = transform_points(T_pick, grasp_local[None])[0]
        out["place_point_3d"][t] = transform_points(T_place, place_local[None])[0]
        world = {
            pick_idx: transform_points(T_pick, surfaces[pick_idx]),
            place_idx: transform_points(T_place, surfaces[place_idx]),
        }
        centres = {
            pick_idx: transform_points(T_pick, np.array([[0, 0, layout.objects[pick_idx].half_extents_m[2]]]))[0],
            place_idx: transform_points(T_place, np.array([[0, 0, layout.objects[place_idx].half_extents_m[2]]]))[0],
        }
        for c, name in enumerate(names):
            K = rendered.intrinsics_k[name]
            T_cw = rendered.T_cam_to_world_cv[name][t]
            seg = rendered.segmentation[name][t]
            h, w = seg.shape
            points = np.vstack([out["grasp_point_3d"][t], out["place_point_3d"][t], trace])
            px = _project(points, K, T_cw)
            out["grasp_point_2d"][t, c], out["place_point_2d"][t, c] = px[0], px[1]
            out["trace_2d"][t, c] = px[2:]
            for idx, prefix in ((pick_idx, "pick"), (place_idx, "container")):
                mask = seg == idx
                visible_px = int(mask.sum())
                out[f"{prefix}_visible_px"][t, c] = visible_px
                out[f"{prefix}_center_2d"][t, c] = _project(centres[idx][None], K, T_cw)[0]
                if visible_px == 0:
                    continue
                out[f"{prefix}_box_xyxy"][t, c] = mask_bbox_xyxy(mask)
                amodal = convex_hull_mask(_project(world[idx], K, T_cw), w, h)
                amodal_px = int((amodal | mask).sum())
                occlusion = 1.0 - visible_px / amodal_px if amodal_px else 0.0
                out[f"{prefix}_occlusion"][t, c] = max(0.0, occlusion)
                out[f"{prefix}_visible"][t, c] = visible_px >= MIN_VISIBLE_PX and occlusion <= MAX_VISIBLE_OCCLUSION
    return out
