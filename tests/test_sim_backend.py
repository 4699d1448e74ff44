"""MuJoCo backend, assets, layout sampling, IK and projection: fast checks (no episode generation)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("mink")

from dataengine.geometry import pose_to_matrix, project_points_cv, top_down_quat_wxyz
from dataengine.records.layout import Layout, Pose
from dataengine.sim.assets import graspable, load_catalog, make_object
from dataengine.sim.backends import SimBackend, get_backend
from dataengine.sim.recipe import load_recipe
from dataengine.sim.sampler import AttemptFailed, sample_layout

DEMO = "recipes/sim/pick_place_demo.yaml"


@pytest.fixture(scope="module")
def recipe():
    return load_recipe(DEMO, render={"preset": "fast", "cameras": ["front", "wrist"], "width": 96, "height": 96})


@pytest.fixture(scope="module")
def scene(recipe):
    catalog = load_catalog()
    for attempt in range(20):
        try:
            layout = sample_layout(recipe, catalog, np.random.default_rng([1, attempt]))
            break
        except AttemptFailed:
            continue
    backend = get_backend("mujoco")
    backend.load(layout, control_hz=10, quality=recipe.render.quality)
    yield backend, layout
    backend.close()


def test_catalog_size_and_splits():
    catalog = load_catalog()
    assert len(catalog.objects) >= 30 and len(catalog.containers) >= 6
    for kind in ("object", "container"):
        assert catalog.pool(kind, "seen") and catalog.pool(kind, "unseen")
        assert not {a.id for a in catalog.pool(kind, "seen")} & {a.id for a in catalog.pool(kind, "unseen")}
    assert all(graspable(a, catalog.base_dir) for a in catalog.objects)
    for asset in catalog.objects + catalog.containers:
        obj = make_object(asset, "x", "pick", Pose(pos_m=(0, 0, 0)), catalog.base_dir)
        assert obj.parts and min(obj.half_extents_m) > 0


def test_layout_json_round_trip(scene):
    _, layout = scene
    again = Layout.from_json(layout.to_json())
    assert again == layout and again.to_json() == layout.to_json()
    assert layout.pick.role == "pick" and layout.place.interior is not None


def test_backend_implements_protocol_and_state_round_trip(scene):
    backend, layout = scene
    assert isinstance(backend, SimBackend)
    backend.reset()
    state = backend.get_state()
    backend.set_joint_targets(np.asarray(layout.robot.arm_qpos_rad) + 0.2, 0.0)
    backend.step(3)
    assert not np.allclose(backend.get_state().qpos, state.qpos)
    backend.set_state(state)
    np.testing.assert_array_equal(backend.get_state().qpos, state.qpos)
    pos, _ = backend.object_pose(layout.pick.uid)
    np.testing.assert_allclose(pos, layout.pick.pose.pos_m, atol=1e-9)


def test_position_servos_hold_the_start_posture(scene):
    backend, layout = scene
    backend.reset()
    backend.step(10)  # one second with gravity compensation: no sag
    np.testing.assert_allclose(backend.robot().arm_qpos_rad, layout.robot.arm_qpos_rad, atol=0.01)


def test_ik_reaches_a_top_down_pose(scene):
    backend, layout = scene
    backend.reset()
    target_pos = np.array([0.5, 0.1, 0.15])
    target_quat = top_down_quat_wxyz(-1.2)
    result = backend.solve_ik(target_pos, target_quat, np.asarray(layout.robot.arm_qpos_rad))
    assert result.converged and result.pos_error_m < 3e-3
    backend.set_joint_targets(result.arm_qpos_rad, 0.08)
    backend.step(20)
    assert np.linalg.norm(backend.robot().tool_pos_m - target_pos) < 0.01


def test_projection_matches_segmentation(scene):
    """A point projected with the reported K and extrinsics lands on the object's segmentation pixels."""
    backend, layout = scene
    backend.reset()
    params = backend.camera_params("front")
    frame = backend.render("front", rgb=True, segmentation=True)
    assert frame.rgb.shape == (96, 96, 3) and frame.segmentation.shape == (96, 96)
    hits = 0
    for index, obj in enumerate(layout.objects):
        top_centre = pose_to_matrix(obj.pose.pos_m, obj.pose.quat_wxyz) @ np.array([0, 0, obj.half_extents_m[2], 1])
        pixels, depth = project_points_cv(top_centre[None, :3], params.intrinsics_k, params.T_world_to_cam_cv)
        col, row = int(pixels[0, 0]), int(pixels[0, 1])
        assert depth[0] > 0
        if 0 <= row < 96 and 0 <= col < 96:
            window = frame.segmentation[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2]
            hits += int(index in window)
    assert hits >= len(layout.objects) - 1  # one object may hide behind another


def test_unknown_backend_is_a_clear_error():
    from dataengine.errors import RecipeError

    with pytest.raises(RecipeError, match="unknown simulator backend"):
        get_backend("bullet")


def test_recolouring_keeps_instructions_unambiguous(recipe):
    catalog = load_catalog()
    repainted = 0
    for attempt in range(60):
        try:
            layout = sample_layout(recipe, catalog, np.random.default_rng([7, attempt]))
        except AttemptFailed:
            continue
        pick = layout.pick
        assert all((o.name, o.color) != (pick.name, pick.color) for o in layout.by_role("distractor"))
        palette = recipe.task.randomization.object_palette
        for obj in layout.objects:
            asset = catalog.get(obj.asset_id)
            if (obj.color, tuple(obj.rgba)) != (asset.color, tuple(asset.rgba)):
                assert asset.recolor and tuple(palette[obj.color]) == tuple(obj.rgba)
                repainted += 1
    assert repainted > 0
