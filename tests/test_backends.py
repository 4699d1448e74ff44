"""One suite for every simulator backend: MuJoCo always, Isaac Sim when `isaacsim` can be imported.

The same checks run through the `SimBackend` protocol only: load a layout, reset, read poses, drive the arm with
joint targets, save and restore state, contacts, render RGB / depth / segmentation, and camera parameters that
agree with what was rendered (back-projected depth of an object's pixels lands inside that object).
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

from dataengine.errors import MissingDependencyError
from dataengine.geometry import project_points_cv, quat_angle_between_rad, quat_wxyz_to_matrix
from dataengine.runtime.jobs import check_placement
from dataengine.sim.backends import get_backend
from dataengine.sim.backends.placement import (
    RTX_RESOURCE,
    backend_remote_options,
    check_backend_available,
)
from tests.fixtures.usd_scenes import demo_recipe, sampled_layout

ISAAC_INSTALLED = importlib.util.find_spec("isaacsim") is not None
BACKENDS = [
    pytest.param("mujoco", marks=pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="no mujoco")),
    pytest.param(
        "isaac",
        marks=pytest.mark.skipif(
            not ISAAC_INSTALLED,
            reason="Isaac Sim is not installed (isaacsim 5.1 needs an RTX GPU node; see docs/isaac.md)",
        ),
    ),
]
# PhysX is float32 and not bitwise reproducible after a reset (Isaac Lab says so); MuJoCo is exact.
STATE_TOL = {"mujoco": 1e-12, "isaac": 2e-3}
POSE_TOL_M = {"mujoco": 1e-9, "isaac": 1e-4}


@pytest.fixture(scope="module")
def recipe():
    return demo_recipe(size=96)


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request, recipe):
    """(backend name, backend with the demo layout of episode 0 loaded)."""
    layout = sampled_layout(recipe, 0)
    backend = get_backend(request.param)
    backend.load(layout, control_hz=recipe.control_hz, quality=recipe.render.quality)
    yield request.param, backend, layout
    backend.close()


def test_reset_places_objects_and_robot_at_the_layout(loaded):
    name, backend, layout = loaded
    backend.reset()
    for obj in layout.objects:
        pos, quat = backend.object_pose(obj.uid)
        assert np.abs(pos - obj.pose.pos_m).max() < POSE_TOL_M[name], obj.uid
        assert quat_angle_between_rad(quat, obj.pose.quat_wxyz) < 1e-3, obj.uid
    reading = backend.robot()
    assert np.abs(reading.arm_qpos_rad - layout.robot.arm_qpos_rad).max() < 1e-3
    assert reading.gripper_opening_m == pytest.approx(layout.robot.gripper_opening_m, abs=1e-3)
    assert backend.control_dt_s == pytest.approx(1.0 / demo_recipe().control_hz, rel=0.05)


def test_joint_targets_drive_the_arm_toward_them(loaded):
    _, backend, layout = loaded
    backend.reset()
    start = backend.robot()
    target = np.asarray(layout.robot.arm_qpos_rad) + np.array([0.25, 0.15, -0.1, 0.2, 0.1, -0.2, 0.3])
    backend.set_joint_targets(target, 0.04)
    backend.step(10)  # one second at 10 Hz
    after = backend.robot()
    assert np.linalg.norm(after.arm_qpos_rad - target) < 0.2 * np.linalg.norm(start.arm_qpos_rad - target)
    assert after.gripper_opening_m == pytest.approx(0.04, abs=0.01)
    assert np.linalg.norm(after.tool_pos_m - start.tool_pos_m) > 0.02
    for obj in layout.objects:  # nothing was hit: objects rest where they were
        assert np.abs(backend.object_pose(obj.uid)[0] - obj.pose.pos_m).max() < 0.01, obj.uid


def test_state_restores_and_replays(loaded):
    name, backend, layout = loaded
    backend.reset()
    backend.set_joint_targets(np.asarray(layout.robot.arm_qpos_rad) + 0.1, 0.06)
    saved = backend.get_state().copy()
    backend.step(3)
    first = backend.get_state()
    backend.set_state(saved)
    assert np.abs(backend.get_state().qpos - saved.qpos).max() < STATE_TOL[name]
    backend.step(3)
    again = backend.get_state()
    assert np.abs(again.qpos - first.qpos).max() < STATE_TOL[name]


def test_objects_rest_on_the_table_untouched_by_the_robot(loaded):
    _, backend, layout = loaded
    backend.reset()
    backend.step(2)
    pick = layout.pick.uid
    assert backend.contacts_between(pick, "table")
    assert not backend.contacts_between(pick, "robot")
    lin, ang = backend.object_velocity(pick)
    assert np.linalg.norm(lin) < 0.05 and np.linalg.norm(ang) < 0.5


@pytest.mark.parametrize("camera", ["front", "side", "wrist"])
def test_render_shapes_and_camera_parameters_agree_with_the_image(loaded, camera):
    _, backend, layout = loaded
    backend.reset()
    cam = layout.camera(camera)
    frame = backend.render(camera, rgb=True, depth=True, segmentation=True)
    assert frame.rgb.shape == (cam.height, cam.width, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth_m.shape == (cam.height, cam.width) and frame.depth_m.dtype == np.float32
    assert frame.segmentation.shape == (cam.height, cam.width) and frame.segmentation.dtype == np.int16
    assert frame.rgb.std() > 5  # an image, not a blank
    assert np.isfinite(frame.depth_m).all() and (frame.depth_m > 0).all()
    assert frame.segmentation.min() >= -1 and frame.segmentation.max() < len(layout.objects)
    params = backend.camera_params(camera)
    K, T = params.intrinsics_k, params.T_cam_to_world_cv
    assert K.shape == (3, 3) and np.allclose(T[3], [0, 0, 0, 1]) and np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3))
    seen = 0
    for index, obj in enumerate(layout.objects):
        rows, cols = np.nonzero(frame.segmentation == index)
        if rows.size < 15:
            continue
        seen += 1
        # back-project the object's pixels (pixel centres) with the rendered depth into the world ...
        z = frame.depth_m[rows, cols].astype(np.float64)
        rays = np.linalg.inv(K) @ np.stack([cols + 0.5, rows + 0.5, np.ones_like(z)])
        world = (T[:3, :3] @ (rays * z) + T[:3, 3:4]).T
        # ... and they must lie in the object's bounding box (body frame: bottom centre, z up)
        pos, quat = backend.object_pose(obj.uid)
        local = (world - pos) @ quat_wxyz_to_matrix(quat)
        hx, hy, hz = obj.half_extents_m
        tol = 0.004
        inside = (
            (np.abs(local[:, 0]) <= hx + tol)
            & (np.abs(local[:, 1]) <= hy + tol)
            & (local[:, 2] >= -tol)
            & (local[:, 2] <= 2 * hz + tol)
        )
        assert inside.mean() > 0.95, f"{camera}: {obj.uid} pixels back-project outside it ({inside.mean():.2f})"
        # ... and the object's centre projects into the box of its pixels
        centre = pos + quat_wxyz_to_matrix(quat) @ np.array([0.0, 0.0, hz])
        (u, v), depth = (a[0] for a in project_points_cv(centre[None], K, np.linalg.inv(T)))
        assert depth > 0
        assert cols.min() - 3 <= u <= cols.max() + 4 and rows.min() - 3 <= v <= rows.max() + 4, (camera, obj.uid)
    assert seen >= 2, f"{camera} sees {seen} objects"  # every rig camera sees the table at the start pose


def test_get_backend_rejects_unknown_names():
    from dataengine.errors import RecipeError

    with pytest.raises(RecipeError, match="unknown simulator backend"):
        get_backend("gazebo")
    with pytest.raises(RecipeError, match="valid: mujoco, isaac"):
        backend_remote_options("gazebo")


@pytest.mark.skipif(ISAAC_INSTALLED, reason="Isaac Sim is installed here")
def test_isaac_without_isaac_sim_fails_at_once_with_the_install_hint(tmp_path):
    started = time.perf_counter()
    with pytest.raises(MissingDependencyError) as caught:
        get_backend("isaac")
    assert time.perf_counter() - started < 2.0
    message = str(caught.value)
    assert "isaacsim[all,extscache]==5.1.0" in message and "https://pypi.nvidia.com" in message
    assert "RTX" in message and caught.value.exit_code == 2
    with pytest.raises(MissingDependencyError, match=r"Isaac Sim 5\.x"):
        check_backend_available("isaac")
    check_backend_available("mujoco")


@pytest.mark.skipif(ISAAC_INSTALLED, reason="Isaac Sim is installed here")
def test_generate_with_the_isaac_backend_stops_before_writing_episodes(tmp_path):
    from dataengine.sim.generate import generate

    recipe = demo_recipe(size=64, episodes=1, backend="isaac")
    with pytest.raises(MissingDependencyError, match="isaacsim"):
        generate(recipe, tmp_path / "out", workers=0, render=False, show_progress=False)
    assert not list((tmp_path / "out").glob("*.tar"))


def test_isaac_tasks_ask_for_an_rtx_gpu_and_clusters_without_one_are_refused():
    assert backend_remote_options("mujoco") == {}
    options = backend_remote_options("isaac")
    assert options == {"num_gpus": 1, "resources": {RTX_RESOURCE: 1}}
    cpu_only = {"CPU": 64.0, "memory": 1e11}
    datacenter_gpus = {"CPU": 64.0, "GPU": 8.0}
    for resources in (cpu_only, datacenter_gpus):
        with pytest.raises(Exception, match=r"ray start .*--resources='\{\"rtx\": 1\}'"):
            check_placement(resources, options, "sim generate")
    check_placement({"CPU": 16.0, "GPU": 2.0, RTX_RESOURCE: 2.0}, options, "sim generate")
    check_placement(cpu_only, backend_remote_options("mujoco"), "sim generate")


@pytest.mark.ray
def test_isaac_remote_options_place_tasks_only_on_the_rtx_node(tmp_path):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from dataengine.runtime.jobs import Task, run_tasks
    from tests.sim_backend_tasks import report_node

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    rtx_node = cluster.add_node(num_cpus=1, num_gpus=1, resources={RTX_RESOURCE: 1})
    try:
        cluster.wait_for_nodes()
        tasks = [Task(task_id=f"t{i}", payload={"i": i}) for i in range(3)]
        results = run_tasks(
            report_node,
            tasks,
            tmp_path,
            job_name="placement",
            fingerprint="placement",
            workers=2,
            ray_address=cluster.address,
            remote_options=backend_remote_options("isaac"),
            show_progress=False,
        )
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    assert [r["i"] for r in results] == [0, 1, 2]
    assert {r["node"] for r in results} == {rtx_node.node_id}
    assert all(r["gpus"] == ["0"] for r in results)


# --- the Isaac backend's own translation logic (pure Python: runs without Isaac Sim) -------------------------------


def test_isaac_prim_paths_map_to_interface_names_and_segmentation_indexes():
    pytest.importorskip("pxr")
    from dataengine.sim.backends.isaac import PrimOwners, segmentation_from_instance_ids

    owners = PrimOwners(["container", "obj_0", "obj_1"])
    assert owners("/World/Objects/obj_1/part_00") == "obj_1"
    assert owners("/World/Objects/obj_10/part_00") == "/World/Objects/obj_10/part_00"  # no prefix confusion
    assert owners("/World/Robot/panda_leftfinger/collisions") == "fingers"
    assert owners("/World/Robot/panda_link3/visuals/mesh_0") == "robot"
    assert owners("/World/Table/leg2") == "table"
    ids = np.array([[0, 3, 3], [7, 9, 12]], dtype=np.uint32)[..., None]  # (H, W, 1) as the annotator gives
    labels = {
        "0": "BACKGROUND",
        "3": "/World/Objects/obj_0/part_00",
        "7": "/World/Objects/container/part_04",
        "9": "/World/Robot/panda_hand/visuals",
        "12": "/World/Objects/obj_1/part_00",
    }
    seg = segmentation_from_instance_ids({"data": ids, "info": {"idToLabels": labels}}, owners)
    assert seg.dtype == np.int16
    assert seg.tolist() == [[-1, 1, 1], [0, -1, 2]]


def test_isaac_contact_events_fold_into_touching_pairs():
    from dataengine.sim.backends.isaac import pairs_touch, update_touching

    touching: set = set()
    update_touching(touching, [("obj_0", "table", False), ("fingers", "obj_0", False), ("obj_1", "table", False)])
    assert pairs_touch(touching, "table", "obj_0") and pairs_touch(touching, "obj_0", "robot")
    assert pairs_touch(touching, "obj_0", "fingers") and not pairs_touch(touching, "obj_0", "obj_1")
    update_touching(touching, [("obj_0", "fingers", True)])
    assert not pairs_touch(touching, "obj_0", "robot") and pairs_touch(touching, "obj_1", "table")
