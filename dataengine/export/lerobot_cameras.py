"""Camera intrinsics and extrinsics of the LeRobot exports: `meta/cameras.json` (conventions and the cameras) and
`meta/camera_params.jsonl` (one line per episode: each camera's K and extrinsics at step 0, the robot base pose).

Cameras that move (`moves: true`, the wrist camera) have per-frame extrinsics in the data column their entry names
(`annotation.<view>.T_cam_to_world`); a static camera's extrinsics hold for every frame of the episode.
"""

from __future__ import annotations

import numpy as np

from dataengine.export.lerobot_eef import base_to_world_matrix
from dataengine.shards.episode import EpisodeData

CONVENTIONS = {
    "world_frame": "MuJoCo world frame: z up, metres; the table top is horizontal",
    "robot_base_frame": "x forward, y left, z up, origin at the robot base; observation.state and action "
    "end-effector poses are in this frame; T_base_to_world maps it to the world frame",
    "camera_frame": "OpenCV: x right, y down, z forward along the optical axis",
    "T_cam_to_world": "4x4 homogeneous, p_world = T_cam_to_world @ [p_cam, 1]; its inverse is the world->camera "
    "extrinsics [R | t]",
    "intrinsics_k": "3x3 pinhole [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels of the stored frame; no distortion",
    "pixels": "continuous coordinates, origin at the top-left corner of the image, x right, y down; pixel (i, j) "
    "covers [j, j + 1) x [i, i + 1)",
    "projection": "[u, v, 1] ~ K @ (inverse(T_cam_to_world) @ [p_world, 1])[:3]",
    "quaternions": "wxyz (scalar first)",
}


def cameras_json(ep: EpisodeData, column_views: dict[str, str], aliases: dict[str, str]) -> dict:
    """`meta/cameras.json` from the first episode (every exported episode has the same cameras). `column_views`:
    camera -> the view name in the annotation columns; `aliases`: camera -> GR00T view name (modality.json)."""
    cameras = {}
    for cam in ep.record.cameras:
        moves = cam.mount != "world"
        cameras[cam.name] = {
            "view": aliases[cam.name],
            "mount": cam.mount,
            "moves": moves,
            "video_key": f"observation.images.{cam.name}",
            "width": cam.width,
            "height": cam.height,
            "per_frame_extrinsics": f"annotation.{column_views[cam.name]}.T_cam_to_world" if moves else None,
        }
    return {"conventions": CONVENTIONS, "cameras": cameras, "per_episode": "meta/camera_params.jsonl"}


def camera_params_row(ep: EpisodeData, episode_index: int) -> dict:
    """One line of `meta/camera_params.jsonl`."""
    a = ep.arrays
    cameras = {}
    for c, cam in enumerate(ep.record.cameras):
        K = np.asarray(a["cam_intrinsics"][c], np.float64)
        cameras[cam.name] = {
            "intrinsics_k": np.round(K, 9).tolist(),
            "fovy_deg": cam.fovy_deg,
            "T_cam_to_world_cv": np.round(np.asarray(a["cam_T_cam_to_world"][0, c], np.float64), 9).tolist(),
        }
    return {
        "episode_index": episode_index,
        "episode_key": ep.key,
        "T_base_to_world": np.round(base_to_world_matrix(ep.record.layout), 9).tolist(),
        "cameras": cameras,
    }
