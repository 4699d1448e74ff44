"""Rigid-body geometry: quaternions (w, x, y, z; rotations act on column vectors), poses, transforms, cameras
(OpenGL/OpenCV axes, intrinsics, projection, USD lens).

For the simulator, the USD exporter and training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "GL_TO_CV",
    "USD_DEFAULT_HORIZONTAL_APERTURE",
    "gl_camera_to_cv",
    "intrinsics_from_fovy",
    "intrinsics_from_usd_lens",
    "look_at_quat_gl",
    "matrix_to_quat_wxyz",
    "pose_to_matrix",
    "project_points_cv",
    "quat_angle_between_rad",
    "quat_multiply_wxyz",
    "quat_wxyz_to_matrix",
    "quat_yaw_rad",
    "slerp_wxyz",
    "top_down_quat_wxyz",
    "transform_points",
    "usd_lens_from_fovy",
    "wrap_angle_rad",
    "yaw_to_quat_wxyz",
]

# --- cameras -----------------------------------------------------------------------------------------------


def project_points_cv(
    points_world: np.ndarray, intrinsics_k: np.ndarray, transform_world_to_cam_cv: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project (N, 3) world points with a 3x3 K and a 4x4 world->camera transform in the OpenCV camera frame
    (x right, y down, z forward). Returns ((N, 2) continuous pixel coordinates, (N,) depth along +z)."""
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    homo = np.concatenate([pts, np.ones((pts.shape[0], 1))], axis=1)
    cam = (np.asarray(transform_world_to_cam_cv, dtype=np.float64) @ homo.T).T[:, :3]
    depth = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (np.asarray(intrinsics_k, dtype=np.float64) @ cam.T).T
        pixels = uv[:, :2] / uv[:, 2:3]
    return pixels, depth


# --- rigid transforms (quaternions are (w, x, y, z); rotations act on column vectors) ------------------------


def quat_wxyz_to_matrix(quat_wxyz: Sequence[float]) -> np.ndarray:
    """Unit quaternion (w, x, y, z) -> 3x3 rotation matrix."""
    from scipy.spatial.transform import Rotation

    w, x, y, z = (float(v) for v in quat_wxyz)
    return Rotation.from_quat([x, y, z, w]).as_matrix()


def matrix_to_quat_wxyz(rotation: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(np.asarray(rotation, dtype=np.float64)).as_quat()
    quat = np.array([w, x, y, z])
    return -quat if quat[0] < 0 else quat


def yaw_to_quat_wxyz(yaw_rad: float) -> np.ndarray:
    """Rotation about the world z axis."""
    return np.array([math.cos(yaw_rad / 2), 0.0, 0.0, math.sin(yaw_rad / 2)])


def quat_multiply_wxyz(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_angle_between_rad(a: Sequence[float], b: Sequence[float]) -> float:
    """Smallest rotation angle taking orientation a to orientation b."""
    dot = abs(float(np.dot(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))))
    return 2.0 * math.acos(min(1.0, dot))


def pose_to_matrix(pos: Sequence[float], quat_wxyz: Sequence[float]) -> np.ndarray:
    """(position, orientation) -> 4x4 homogeneous transform (child frame -> parent frame)."""
    transform = np.eye(4)
    transform[:3, :3] = quat_wxyz_to_matrix(quat_wxyz)
    transform[:3, 3] = np.asarray(pos, dtype=np.float64)
    return transform


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return pts @ np.asarray(transform)[:3, :3].T + np.asarray(transform)[:3, 3]


def look_at_quat_gl(eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0, 0, 1)) -> np.ndarray:
    """Orientation (w, x, y, z) of an OpenGL-convention camera (looks along its -z, y up) at `eye` facing `target`."""
    eye_v, target_v, up_v = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    back = eye_v - target_v
    back /= np.linalg.norm(back)
    right = np.cross(up_v, back)
    if np.linalg.norm(right) < 1e-9:  # looking straight along `up`
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    return matrix_to_quat_wxyz(np.stack([right, cam_up, back], axis=1))


GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # flips y and z: OpenGL camera axes -> OpenCV camera axes


def gl_camera_to_cv(T_cam_gl_to_world: np.ndarray) -> np.ndarray:
    """Camera->world transform of an OpenGL-convention camera -> the same camera in the OpenCV convention."""
    return np.asarray(T_cam_gl_to_world, dtype=np.float64) @ GL_TO_CV


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """Pinhole K for a vertical field of view with square pixels, principal point at the image centre
    (continuous pixel convention: the centre of a W x H image is (W/2, H/2))."""
    focal_px = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)
    return np.array([[focal_px, 0.0, width / 2], [0.0, focal_px, height / 2], [0.0, 0.0, 1.0]])


USD_DEFAULT_HORIZONTAL_APERTURE = 20.955  # UsdGeomCamera's default, in tenths of a scene unit (the lens unit)


def usd_lens_from_fovy(
    fovy_deg: float, width: int, height: int, horizontal_aperture: float = USD_DEFAULT_HORIZONTAL_APERTURE
) -> tuple[float, float, float]:
    """(focalLength, horizontalAperture, verticalAperture) of a USD camera (all in the same lens unit) that
    renders a W x H image with square pixels and a vertical field of view `fovy_deg`, optical axis centred."""
    vertical_aperture = horizontal_aperture * height / width
    focal_length = vertical_aperture / (2 * math.tan(math.radians(fovy_deg) / 2))
    return focal_length, horizontal_aperture, vertical_aperture


def intrinsics_from_usd_lens(
    focal_length: float, horizontal_aperture: float, vertical_aperture: float, width: int, height: int
) -> np.ndarray:
    """Pinhole K of a USD camera without aperture offsets rendering a W x H image (same pixel convention as
    `intrinsics_from_fovy`)."""
    fx = focal_length * width / horizontal_aperture
    fy = focal_length * height / vertical_aperture
    return np.array([[fx, 0.0, width / 2], [0.0, fy, height / 2], [0.0, 0.0, 1.0]])


def slerp_wxyz(a: Sequence[float], b: Sequence[float], t: float) -> np.ndarray:
    """Spherical interpolation between unit quaternions (shortest arc), t in [0, 1]."""
    qa, qb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    dot = float(np.dot(qa, qb))
    if dot < 0:
        qb, dot = -qb, -dot
    if dot > 0.9995:
        q = qa + t * (qb - qa)
        return q / np.linalg.norm(q)
    theta = math.acos(dot)
    return (math.sin((1 - t) * theta) * qa + math.sin(t * theta) * qb) / math.sin(theta)


def quat_yaw_rad(quat_wxyz: Sequence[float]) -> float:
    """Heading (rotation about world z) of an orientation: the angle of its rotated x axis in the xy plane."""
    rot = quat_wxyz_to_matrix(quat_wxyz)
    return math.atan2(rot[1, 0], rot[0, 0])


def wrap_angle_rad(angle: float) -> float:
    """Wrap to [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def top_down_quat_wxyz(yaw_rad: float) -> np.ndarray:
    """Tool orientation for a top-down grasp: tool z points down (-world z), tool x (the gripper's closing axis)
    at `yaw_rad` in the world xy plane."""
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    return matrix_to_quat_wxyz(np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]]))
