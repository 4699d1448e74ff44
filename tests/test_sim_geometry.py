"""Property tests of the rigid-transform and camera helpers the simulator added to dataengine.geometry."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataengine.geometry import (
    convex_hull_mask,
    gl_camera_to_cv,
    intrinsics_from_fovy,
    look_at_quat_gl,
    matrix_to_quat_wxyz,
    pose_to_matrix,
    project_points_cv,
    quat_angle_between_rad,
    quat_multiply_wxyz,
    quat_wxyz_to_matrix,
    quat_yaw_rad,
    slerp_wxyz,
    top_down_quat_wxyz,
    transform_points,
    wrap_angle_rad,
    yaw_to_quat_wxyz,
)

unit = st.floats(-1, 1, allow_nan=False)
angle = st.floats(-math.pi, math.pi, allow_nan=False)


def _quat(x, y, z, w):
    q = np.array([w, x, y, z], dtype=float)
    n = np.linalg.norm(q)
    return q / n if n > 1e-3 else np.array([1.0, 0, 0, 0])


@given(unit, unit, unit, unit)
def test_quaternion_matrix_round_trip(x, y, z, w):
    q = _quat(x, y, z, w)
    back = matrix_to_quat_wxyz(quat_wxyz_to_matrix(q))
    assert quat_angle_between_rad(q, back) < 1e-6
    rot = quat_wxyz_to_matrix(q)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-9)


@given(unit, unit, unit, unit, unit, unit, unit, unit)
def test_quaternion_product_composes_rotations(ax, ay, az, aw, bx, by, bz, bw):
    a, b = _quat(ax, ay, az, aw), _quat(bx, by, bz, bw)
    np.testing.assert_allclose(
        quat_wxyz_to_matrix(quat_multiply_wxyz(a, b)), quat_wxyz_to_matrix(a) @ quat_wxyz_to_matrix(b), atol=1e-9
    )


@given(angle)
def test_yaw_helpers_agree(yaw):
    assert abs(wrap_angle_rad(quat_yaw_rad(yaw_to_quat_wxyz(yaw)) - yaw)) < 1e-9
    rot = quat_wxyz_to_matrix(top_down_quat_wxyz(yaw))
    np.testing.assert_allclose(rot[:, 2], [0, 0, -1], atol=1e-9)  # tool z points down
    np.testing.assert_allclose(rot[:, 0], [math.cos(yaw), math.sin(yaw), 0], atol=1e-9)  # closing axis


@given(unit, unit, unit, unit, unit, unit, unit, unit, st.floats(0, 1))
def test_slerp_endpoints_and_unit_norm(ax, ay, az, aw, bx, by, bz, bw, t):
    a, b = _quat(ax, ay, az, aw), _quat(bx, by, bz, bw)
    assert quat_angle_between_rad(slerp_wxyz(a, b, 0.0), a) < 1e-6
    assert quat_angle_between_rad(slerp_wxyz(a, b, 1.0), b) < 1e-6
    assert abs(np.linalg.norm(slerp_wxyz(a, b, t)) - 1) < 1e-9


@settings(max_examples=50)
@given(st.floats(-2, 2), st.floats(-2, 2), st.floats(0.3, 2), st.floats(-0.5, 0.5), st.floats(-0.5, 0.5))
def test_look_at_camera_projects_its_target_to_the_image_centre(ex, ey, ez, tx, ty):
    eye, target = np.array([ex, ey, ez]), np.array([tx, ty, 0.0])
    if np.linalg.norm(eye - target) < 0.1:
        return
    T_cam_to_world = gl_camera_to_cv(pose_to_matrix(eye, look_at_quat_gl(eye, target)))
    K = intrinsics_from_fovy(50.0, 224, 160)
    pixels, depth = project_points_cv(target[None], K, np.linalg.inv(T_cam_to_world))
    np.testing.assert_allclose(pixels[0], [112.0, 80.0], atol=1e-6)
    assert abs(depth[0] - np.linalg.norm(eye - target)) < 1e-9


def test_transform_points_matches_homogeneous_product():
    T = pose_to_matrix([0.1, -0.2, 0.3], yaw_to_quat_wxyz(0.7))
    pts = np.random.default_rng(0).normal(size=(5, 3))
    expected = (T @ np.hstack([pts, np.ones((5, 1))]).T).T[:, :3]
    np.testing.assert_allclose(transform_points(T, pts), expected)


def test_convex_hull_mask_area_and_empty_cases():
    square = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0], [20.0, 20.0]])
    mask = convex_hull_mask(square, 64, 48)
    assert mask.shape == (48, 64)
    assert abs(int(mask.sum()) - 400) <= 42  # 20 x 20 pixels, edges may go either way
    assert convex_hull_mask(square[:2], 64, 48).sum() == 0
    assert convex_hull_mask(np.full((4, 2), np.nan), 64, 48).sum() == 0
