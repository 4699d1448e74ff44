"""USD export: every prim of an exported stage against the MuJoCo scene built from the same layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

pxr = pytest.importorskip("pxr", reason="usd-core is not installed (pip install 'dataengine[usd]')")

from pxr import Usd, UsdGeom, UsdLux, UsdPhysics, UsdRender, UsdSemantics, UsdShade, UsdValidation  # noqa: E402

from dataengine.geometry import (  # noqa: E402
    gl_camera_to_cv,
    intrinsics_from_fovy,
    intrinsics_from_usd_lens,
    project_points_cv,
    usd_lens_from_fovy,
)
from dataengine.sim.usd import franka  # noqa: E402
from dataengine.sim.usd.export import stage_text  # noqa: E402
from dataengine.sim.usd.stage import (  # noqa: E402
    LIGHTS,
    build_stage,
    camera_path,
    layout_from_stage,
    object_path,
    scene_metadata,
)
from tests.fixtures.usd_scenes import (  # noqa: E402
    all_shapes_layout,
    angle_between,
    demo_recipe,
    sampled_layout,
    split_scale,
    world_matrix,
    write_stub_franka,
)

# The MJCF the MuJoCo backend compiles writes numbers with 6 significant digits; USD keeps full doubles.
POS_TOL_M = 2e-6
ROT_TOL_RAD = 5e-5  # e.g. a quaternion written as 0.707107 is 2e-5 rad off


@pytest.fixture(scope="module")
def recipe():
    return demo_recipe()


@pytest.fixture(scope="module", params=["sampled_0", "sampled_1", "all_shapes"])
def scene(request, recipe, tmp_path_factory):
    """(layout, stage opened from its .usda file with a stand-in robot loaded, MuJoCo backend on the layout)."""
    from dataengine.sim.assets import load_catalog
    from dataengine.sim.backends.mujoco import MujocoBackend

    name = request.param
    layout = all_shapes_layout(recipe) if name == "all_shapes" else sampled_layout(recipe, int(name[-1]))
    folder = tmp_path_factory.mktemp(name)
    robot_usd = write_stub_franka(folder / "franka_stub.usda", layout)
    stage = build_stage(
        layout,
        robot_usd=robot_usd,
        metadata={"seed": recipe.seed, "task": recipe.task.name, "episode_key": f"demo-{name}"},
        catalog_dir=load_catalog().base_dir,
    )
    path = folder / "scene.usda"
    path.write_text(stage_text(stage))
    backend = MujocoBackend(catalog_dir=load_catalog().base_dir)
    backend.load(layout, control_hz=10.0)
    yield layout, Usd.Stage.Open(str(path)), backend, robot_usd
    backend.close()


def _mj_id(backend, kind: str, name: str) -> int:
    mj = backend.mujoco
    idx = mj.mj_name2id(backend.model, getattr(mj.mjtObj, kind), name)
    assert idx >= 0, f"MuJoCo has no {kind} {name!r}"
    return idx


def _assert_frame(transform: np.ndarray, pos, rot, what: str) -> None:
    position, rotation, _ = split_scale(transform)
    assert np.abs(position - np.asarray(pos)).max() < POS_TOL_M, what
    assert angle_between(rotation, np.asarray(rot).reshape(3, 3)) < ROT_TOL_RAD, what


def test_objects_and_parts_sit_where_mujoco_puts_them(scene):
    layout, stage, backend, _ = scene
    m, d = backend.model, backend.data
    checked_shapes = set()
    for obj in layout.objects:
        body = _mj_id(backend, "mjOBJ_BODY", obj.uid)
        prim = stage.GetPrimAtPath(object_path(obj.uid))
        _assert_frame(world_matrix(prim), d.xpos[body], d.xmat[body], obj.uid)
        for k, part in enumerate(obj.parts):
            geom = _mj_id(backend, "mjOBJ_GEOM", f"{obj.uid}_g{k}")
            part_prim = prim.GetChild(f"part_{k:02d}")
            transform = world_matrix(part_prim)
            size = m.geom_size[geom]
            checked_shapes.add(part.shape)
            if part.shape == "mesh":  # MuJoCo re-centres meshes: compare the world-space vertices instead
                mesh_id = m.geom_dataid[geom]
                start, count = m.mesh_vertadr[mesh_id], m.mesh_vertnum[mesh_id]
                mj_world = m.mesh_vert[start : start + count] @ d.geom_xmat[geom].reshape(3, 3).T + d.geom_xpos[geom]
                points = np.asarray(UsdGeom.Mesh(part_prim).GetPointsAttr().Get(), dtype=np.float64)
                usd_world = points @ transform[:3, :3].T + transform[:3, 3]
                assert np.abs(usd_world.min(0) - mj_world.min(0)).max() < 1e-5, obj.uid
                assert np.abs(usd_world.max(0) - mj_world.max(0)).max() < 1e-5, obj.uid
                continue
            _assert_frame(transform, d.geom_xpos[geom], d.geom_xmat[geom], f"{obj.uid} part {k}")
            if part.shape == "box":
                assert np.allclose(split_scale(transform)[2], size, atol=1e-9)
                assert UsdGeom.Cube(part_prim).GetSizeAttr().Get() == 2.0
            elif part.shape in ("cylinder", "capsule"):
                gprim = UsdGeom.Cylinder(part_prim) if part.shape == "cylinder" else UsdGeom.Capsule(part_prim)
                assert gprim.GetRadiusAttr().Get() == pytest.approx(size[0])
                assert gprim.GetHeightAttr().Get() == pytest.approx(2 * size[1])
                assert gprim.GetAxisAttr().Get() == "Z"
            elif part.shape == "sphere":
                assert UsdGeom.Sphere(part_prim).GetRadiusAttr().Get() == pytest.approx(size[0])
            elif part.shape == "ellipsoid":
                points = np.asarray(UsdGeom.Mesh(part_prim).GetPointsAttr().Get())
                assert np.allclose(np.abs(points).max(0), size, rtol=0.02)
    if len(layout.objects) > 6:  # the all-shapes layout
        assert checked_shapes == {"box", "cylinder", "sphere", "ellipsoid", "capsule", "mesh"}


def test_table_floor_and_robot_base_match(scene):
    layout, stage, backend, robot_usd = scene
    m, d = backend.model, backend.data
    for usd_name, mj_name in [("top", "table")] + [(f"leg{i}", f"table_leg{i}") for i in range(4)]:
        geom = _mj_id(backend, "mjOBJ_GEOM", mj_name)
        transform = world_matrix(stage.GetPrimAtPath(f"/World/Table/{usd_name}"))
        _assert_frame(transform, d.geom_xpos[geom], d.geom_xmat[geom], mj_name)
        assert np.allclose(split_scale(transform)[2], m.geom_size[geom], atol=1e-9)
    floor = world_matrix(stage.GetPrimAtPath("/World/Floor/slab"))
    floor_z = d.geom_xpos[_mj_id(backend, "mjOBJ_GEOM", "floor")][2]
    assert floor[2, 3] + split_scale(floor)[2][2] == pytest.approx(floor_z)  # the slab's top is MuJoCo's plane
    base = _mj_id(backend, "mjOBJ_BODY", "robot_base")
    robot = stage.GetPrimAtPath("/World/Robot")
    _assert_frame(world_matrix(robot), d.xpos[base], d.xmat[base], "robot base")
    assert [str(p.assetPath) for p in robot.GetPrimStack()[0].payloadList.prependedItems] == [robot_usd]
    info = robot.GetCustomDataByKey("dataengine")
    expected = franka.layout_to_usd_joints(layout.robot.arm_qpos_rad, layout.robot.gripper_opening_m)
    assert np.allclose(info["usd_joint_positions"], expected, atol=1e-9)
    assert list(info["usd_joint_names"])[:7] == list(franka.ARM_JOINT_NAMES)


def test_cameras_reproduce_mujoco_intrinsics_and_extrinsics(scene):
    layout, stage, backend, _ = scene
    d = backend.data
    centres = np.array([np.asarray(o.pose.pos_m) + np.array([0, 0, o.half_extents_m[2]]) for o in layout.objects])
    for cam in layout.cameras:
        usd_camera = UsdGeom.Camera(stage.GetPrimAtPath(camera_path(cam)))
        product = UsdRender.Product(stage.GetPrimAtPath(f"/Render/{cam.name}"))
        width, height = product.GetResolutionAttr().Get()
        assert (width, height) == (cam.width, cam.height)
        assert product.GetCameraRel().GetTargets()[0] == usd_camera.GetPath()
        K = intrinsics_from_usd_lens(
            usd_camera.GetFocalLengthAttr().Get(),
            usd_camera.GetHorizontalApertureAttr().Get(),
            usd_camera.GetVerticalApertureAttr().Get(),
            width,
            height,
        )
        params = backend.camera_params(cam.name)
        assert np.allclose(K, params.intrinsics_k, rtol=1e-6)
        assert usd_camera.GetClippingRangeAttr().Get()[0] > 0
        transform = world_matrix(usd_camera.GetPrim())  # resolved through the stand-in robot for the wrist
        cid = _mj_id(backend, "mjOBJ_CAMERA", cam.name)
        assert np.abs(transform[:3, 3] - d.cam_xpos[cid]).max() < POS_TOL_M, cam.name
        assert angle_between(transform[:3, :3], d.cam_xmat[cid].reshape(3, 3)) < ROT_TOL_RAD, cam.name
        T_usd_cv = gl_camera_to_cv(transform)
        px_usd, depth_usd = project_points_cv(centres, K, np.linalg.inv(T_usd_cv))
        px_mj, depth_mj = project_points_cv(centres, params.intrinsics_k, params.T_world_to_cam_cv)
        assert np.allclose(depth_usd, depth_mj, atol=1e-5)
        assert np.allclose(px_usd, px_mj, atol=1e-3), cam.name


def test_usd_lens_round_trips_fovy():
    for fovy, width, height in [(50, 224, 224), (80, 320, 240), (35.5, 640, 480)]:
        focal, h_ap, v_ap = usd_lens_from_fovy(fovy, width, height)
        assert math.degrees(2 * math.atan(v_ap / (2 * focal))) == pytest.approx(fovy)
        assert h_ap / v_ap == pytest.approx(width / height)
        K = intrinsics_from_usd_lens(focal, h_ap, v_ap, width, height)
        assert np.allclose(K, intrinsics_from_fovy(fovy, width, height))


def test_lights_match_mujoco_positions_and_directions(scene):
    layout, stage, backend, _ = scene
    d = backend.data
    assert stage.GetPrimAtPath(f"{LIGHTS}/ambient").IsA(UsdLux.DomeLight)
    for light in layout.lights:
        prim = stage.GetPrimAtPath(f"{LIGHTS}/{light.name}")
        assert prim.IsA(UsdLux.DistantLight if light.directional else UsdLux.SphereLight)
        transform = world_matrix(prim)
        lid = _mj_id(backend, "mjOBJ_LIGHT", light.name)
        assert np.abs(transform[:3, 3] - d.light_xpos[lid]).max() < POS_TOL_M
        shine = -transform[:3, 2] / np.linalg.norm(transform[:3, 2])
        assert np.abs(shine - d.light_xdir[lid] / np.linalg.norm(d.light_xdir[lid])).max() < 1e-6
        assert UsdLux.ShadowAPI(prim).GetShadowEnableAttr().Get() == light.cast_shadow


def test_physics_schemas_masses_materials_and_semantics(scene):
    layout, stage, backend, _ = scene
    m = backend.model
    scene_prim = stage.GetPrimAtPath("/World/PhysicsScene")
    assert scene_prim.IsA(UsdPhysics.Scene)
    assert UsdPhysics.Scene(scene_prim).GetGravityMagnitudeAttr().Get() == pytest.approx(9.81)
    for obj in layout.objects:
        prim = stage.GetPrimAtPath(object_path(obj.uid))
        assert prim.HasAPI(UsdPhysics.RigidBodyAPI) and prim.HasAPI(UsdPhysics.MassAPI)
        mass = UsdPhysics.MassAPI(prim).GetMassAttr().Get()
        assert mass == pytest.approx(obj.mass_kg, rel=1e-6)  # physics:mass is a float
        assert m.body_mass[_mj_id(backend, "mjOBJ_BODY", obj.uid)] == pytest.approx(mass, rel=1e-5)
        physics, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial("physics")
        assert UsdPhysics.MaterialAPI(physics.GetPrim()).GetStaticFrictionAttr().Get() == pytest.approx(obj.friction)
        assert UsdSemantics.LabelsAPI(prim, "class").GetLabelsAttr().Get() == [obj.category]
        assert prim.GetCustomDataByKey("dataengine")["segmentation_index"] == layout.objects.index(obj)
        for k, part in enumerate(obj.parts):
            part_prim = prim.GetChild(f"part_{k:02d}")
            assert part_prim.HasAPI(UsdPhysics.CollisionAPI)
            assert not part_prim.HasAPI(UsdPhysics.RigidBodyAPI)
            if part.shape in ("mesh", "ellipsoid"):
                assert UsdPhysics.MeshCollisionAPI(part_prim).GetApproximationAttr().Get() == "convexHull"
            material, _ = UsdShade.MaterialBindingAPI(part_prim).ComputeBoundMaterial()
            shader = UsdShade.Shader(material.GetPrim().GetChild("PreviewSurface"))
            rgba = part.rgba or obj.rgba
            assert np.allclose(shader.GetInput("diffuseColor").Get(), rgba[:3], atol=1e-6)
            assert shader.GetInput("opacity").Get() == pytest.approx(rgba[3])
    for path in ["/World/Table/top", "/World/Floor/slab"]:
        prim = stage.GetPrimAtPath(path)
        assert prim.HasAPI(UsdPhysics.CollisionAPI) and not prim.HasAPI(UsdPhysics.RigidBodyAPI)
    table_look, _ = UsdShade.MaterialBindingAPI(stage.GetPrimAtPath("/World/Table/top")).ComputeBoundMaterial()
    shader = UsdShade.Shader(table_look.GetPrim().GetChild("PreviewSurface"))
    assert np.allclose(shader.GetInput("diffuseColor").Get(), layout.table.rgba[:3], atol=1e-6)


def test_stage_metadata_and_layout_round_trip(scene, recipe):
    layout, stage, _, robot_usd = scene
    assert UsdGeom.GetStageUpAxis(stage) == "Z"
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert UsdPhysics.GetStageKilogramsPerUnit(stage) == 1.0
    assert stage.GetDefaultPrim().GetPath() == "/World"
    meta = scene_metadata(stage)
    assert meta["seed"] == recipe.seed and meta["task"] == recipe.task.name
    assert meta["episode_key"].startswith("demo-") and meta["robot_usd"] == robot_usd
    assert meta["objects"] == [o.uid for o in layout.objects]
    assert layout_from_stage(stage) == layout


def test_every_usd_validator_passes(scene):
    _, stage, _, _ = scene
    registry = UsdValidation.ValidationRegistry()
    context = UsdValidation.ValidationContext(registry.GetOrLoadAllValidators())
    errors = [f"{e.GetName()}: {e.GetMessage()}" for e in context.Validate(stage)]
    assert errors == []


def test_same_layout_gives_identical_text_and_default_robot_is_isaac_5_asset(recipe, monkeypatch):
    monkeypatch.delenv(franka.FRANKA_USD_ENV, raising=False)
    layout = sampled_layout(recipe, 2)
    first, second = stage_text(build_stage(layout)), stage_text(build_stage(layout.model_copy(deep=True)))
    assert first == second
    assert "@https://omniverse-content-production.s3-us-west-2.amazonaws.com/Assets/Isaac/5.1" in first
    assert franka.FRANKA_USD_IN_ASSETS in first
    monkeypatch.setenv(franka.FRANKA_USD_ENV, "/opt/assets/franka.usd")
    assert "@/opt/assets/franka.usd@" in stage_text(build_stage(layout))
    as_reference = build_stage(layout, robot_usd="/x/robot.usd", robot_arc="reference")
    assert "references = @/x/robot.usd@" in stage_text(as_reference)
