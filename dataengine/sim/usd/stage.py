"""Build a USD stage from a `Layout`: the same scene the MuJoCo backend compiles to MJCF, for Isaac Sim.

Stage layout (z up, metres, kilograms; prim names are the layout's uids and camera / light names):

    /World                      defaultPrim; customData["dataengine"] = seed, task, episode key, ...
      PhysicsScene              gravity -z 9.81
      Looks/<name>              UsdPreviewSurface materials (object colours, table, floor)
      PhysicsMaterials/<name>   friction (UsdPhysics.MaterialAPI, bound with purpose "physics")
      Floor, Table/{top,leg0..3} static colliders (no rigid body)
      Objects/<uid>             rigid body (RigidBodyAPI, MassAPI mass), body frame at the bottom centre
        part_00, part_01, ...   colliders (Cube / Cylinder / Capsule / Sphere / Mesh with convexHull)
      Robot                     payload (or reference) to the Franka USD, at the robot base pose
        panda_link7/<camera>    wrist cameras, in the link-7 frame
      Lights/{ambient,<name>}   DomeLight + one light per layout light
      Cameras/<name>            world cameras (USD cameras look along -z with +y up, as the layout's)
    /Render/<camera>            RenderProduct: the camera's resolution

The root layer's customLayerData keeps the layout JSON, so `layout_from_stage` gives back the exact layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pxr import Gf, Sdf, Tf, Usd, UsdGeom, UsdLux, UsdPhysics, UsdRender, UsdSemantics

from dataengine.geometry import look_at_quat_gl, usd_lens_from_fovy, yaw_to_quat_wxyz
from dataengine.records.layout import LAYOUT_SCHEMA, Camera, Layout, Light, SceneObject
from dataengine.sim.meshes import resolve_path
from dataengine.sim.usd import franka
from dataengine.sim.usd.geoms import (
    PHYSICS_PURPOSE,
    bind,
    define_box,
    define_part,
    physics_material,
    preview_material,
    set_pose,
    textured_material,
)

SCENE_SCHEMA = "dataengine-usd/v1"
WORLD = "/World"
LOOKS = "/World/Looks"
PHYSICS_MATERIALS = "/World/PhysicsMaterials"
OBJECTS = "/World/Objects"
ROBOT = "/World/Robot"
TABLE = "/World/Table"
FLOOR = "/World/Floor"
LIGHTS = "/World/Lights"
CAMERAS = "/World/Cameras"
RENDER = "/Render"
LAYOUT_KEY = "dataengine:layout_json"
CLIPPING_RANGE_M = (0.01, 50.0)
SPHERE_LIGHT_INTENSITY = 30000.0  # a 5 cm sphere light 2 m away gives a few hundred lux on the table
DISTANT_LIGHT_INTENSITY = 2500.0
AMBIENT_INTENSITY = 250.0  # the MuJoCo scene's headlight ambient, roughly
SPOT_CONE_DEG = 45.0  # MuJoCo's default spotlight cutoff
LEG_HALF_XY_M = 0.025


def prim_name(name: str) -> str:
    """A valid USD prim name for a layout name (uids and camera names normally already are)."""
    return Tf.MakeValidIdentifier(name)


def object_path(uid: str) -> str:
    return f"{OBJECTS}/{prim_name(uid)}"


def camera_path(camera: Camera) -> str:
    if camera.mount == "wrist":
        return f"{ROBOT}/{franka.LINK7}/{prim_name(camera.name)}"
    return f"{CAMERAS}/{prim_name(camera.name)}"


def _float_list(values) -> list[float]:
    return [float(v) for v in values]


def _metadata(layout: Layout, metadata: dict | None, robot_usd: str) -> dict:
    data = {
        "scene_schema": SCENE_SCHEMA,
        "layout_schema": LAYOUT_SCHEMA,
        "robot_usd": robot_usd,
        "objects": [o.uid for o in layout.objects],
        "cameras": [c.name for c in layout.cameras],
    }
    data.update(metadata or {})
    return {k: v for k, v in data.items() if v is not None}


def _table(stage: Usd.Stage, layout: Layout) -> None:
    table = layout.table
    cx, cy, top = table.top_center_m
    hx, hy = table.half_size_m
    floor_z = table.floor_z_m
    looks = {
        "table": preview_material(stage, f"{LOOKS}/table", table.rgba),
        "floor": preview_material(stage, f"{LOOKS}/floor", layout.floor_rgba),
        "legs": preview_material(stage, f"{LOOKS}/table_legs", (0.3, 0.3, 0.32, 1.0)),
    }
    ground = physics_material(stage, f"{PHYSICS_MATERIALS}/table", friction=1.0)
    UsdGeom.Xform.Define(stage, FLOOR)
    floor = define_box(stage, f"{FLOOR}/slab", (0.0, 0.0, floor_z - 0.01), (4.0, 4.0, 0.01), layout.floor_rgba)
    bind(floor.GetPrim(), looks["floor"])
    root = UsdGeom.Xform.Define(stage, TABLE).GetPrim()
    top_box = define_box(
        stage, f"{TABLE}/top", (cx, cy, top - table.thickness_m / 2), (hx, hy, table.thickness_m / 2), table.rgba
    )
    bind(top_box.GetPrim(), looks["table"])
    leg_half_h = (table.height_m - table.thickness_m) / 2
    for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        center = (cx + sx * (hx - 0.05), cy + sy * (hy - 0.05), floor_z + leg_half_h)
        leg = define_box(stage, f"{TABLE}/leg{i}", center, (LEG_HALF_XY_M, LEG_HALF_XY_M, leg_half_h))
        bind(leg.GetPrim(), looks["legs"])
    for prim in (root, floor.GetPrim()):
        bind(prim, ground, PHYSICS_PURPOSE)
    root.SetCustomDataByKey("dataengine:texture", table.texture)
    for wall in layout.walls:  # backdrop planes: visual only
        look = preview_material(stage, f"{LOOKS}/wall_{wall.name}", wall.rgba)
        path = f"{FLOOR}/wall_{wall.name}"
        box = define_box(stage, path, wall.center_m, wall.half_size_m, wall.rgba, collision=False)
        bind(box.GetPrim(), look)


def _object(stage: Usd.Stage, obj: SceneObject, index: int, catalog_dir) -> None:
    path = object_path(obj.uid)
    xform = UsdGeom.Xform.Define(stage, path)
    set_pose(xform, obj.pose.pos_m, obj.pose.quat_wxyz)
    prim = xform.GetPrim()
    UsdPhysics.RigidBodyAPI.Apply(prim)
    UsdPhysics.MassAPI.Apply(prim).CreateMassAttr(float(obj.mass_kg))
    look = preview_material(stage, f"{LOOKS}/{prim_name(obj.uid)}", obj.rgba)
    bind(prim, look)
    bind(prim, physics_material(stage, f"{PHYSICS_MATERIALS}/{prim_name(obj.uid)}", obj.friction), PHYSICS_PURPOSE)
    UsdSemantics.LabelsAPI.Apply(prim, "class").CreateLabelsAttr([obj.category])
    prim.SetCustomData(
        {
            "dataengine": {
                "uid": obj.uid,
                "asset_id": obj.asset_id,
                "name": obj.name,
                "category": obj.category,
                "color": obj.color,
                "role": obj.role,
                "kind": obj.kind,
                "segmentation_index": index,
            }
        }
    )
    for k, part in enumerate(obj.parts):
        gprim = define_part(stage, f"{path}/part_{k:02d}", part, catalog_dir)
        rgba = part.rgba or obj.rgba
        gprim.CreateDisplayColorAttr([Gf.Vec3f(*_float_list(rgba[:3]))])
        if part.rgba is not None:
            bind(gprim.GetPrim(), preview_material(stage, f"{LOOKS}/{prim_name(obj.uid)}_part_{k:02d}", part.rgba))
        elif part.mesh is not None and part.mesh.texture:
            texture = str(resolve_path(part.mesh.texture, catalog_dir))
            bind(gprim.GetPrim(), textured_material(stage, f"{LOOKS}/{prim_name(obj.uid)}_part_{k:02d}", texture))


def _robot(stage: Usd.Stage, layout: Layout, robot_usd: str, arc: str) -> None:
    robot = layout.robot
    xform = UsdGeom.Xform.Define(stage, ROBOT)
    set_pose(xform, robot.base_pos_m, yaw_to_quat_wxyz(robot.base_yaw_rad))
    prim = xform.GetPrim()
    stage.MuteLayer(robot_usd)  # authoring must not open the asset (it may be remote); the written file is unaffected
    if arc == "payload":
        prim.GetPayloads().AddPayload(robot_usd)
    else:
        prim.GetReferences().AddReference(robot_usd)
    usd_joints = franka.layout_to_usd_joints(robot.arm_qpos_rad, robot.gripper_opening_m)
    prim.SetCustomData(
        {
            "dataengine": {
                "model": robot.model,
                "arm_qpos_rad": _float_list(robot.arm_qpos_rad),
                "gripper_opening_m": float(robot.gripper_opening_m),
                "usd_joint_names": [*franka.ARM_JOINT_NAMES, *franka.FINGER_JOINT_NAMES],
                "usd_joint_positions": _float_list(np.round(usd_joints, 12)),
            }
        }
    )


def _light_quat(light: Light):
    pos = np.asarray(light.pos_m, dtype=np.float64)
    return look_at_quat_gl(pos, pos + np.asarray(light.dir, dtype=np.float64))  # lights shine along their -z


def author_light(stage: Usd.Stage, light: Light) -> None:
    """A layout light: directional -> DistantLight, otherwise a small SphereLight shaped as MuJoCo's spotlight."""
    path = f"{LIGHTS}/{prim_name(light.name)}"
    diffuse = np.asarray(light.diffuse, dtype=np.float64)
    level = float(diffuse.max()) or 1.0
    if light.directional:
        usd_light = UsdLux.DistantLight.Define(stage, path)
        usd_light.CreateIntensityAttr(DISTANT_LIGHT_INTENSITY * level)
    else:
        usd_light = UsdLux.SphereLight.Define(stage, path)
        usd_light.CreateRadiusAttr(0.05)
        usd_light.CreateIntensityAttr(SPHERE_LIGHT_INTENSITY * level)
        UsdLux.ShapingAPI.Apply(usd_light.GetPrim()).CreateShapingConeAngleAttr(SPOT_CONE_DEG)
    usd_light.CreateColorAttr(Gf.Vec3f(*_float_list(diffuse / level)))
    UsdLux.ShadowAPI.Apply(usd_light.GetPrim()).CreateShadowEnableAttr(bool(light.cast_shadow))
    set_pose(usd_light, light.pos_m, _light_quat(light))
    usd_light.GetPrim().SetCustomDataByKey("dataengine:diffuse", Gf.Vec3d(*_float_list(light.diffuse)))


def author_camera(stage: Usd.Stage, camera: Camera) -> UsdGeom.Camera:
    """A pinhole camera reproducing the layout's fovy and resolution (square pixels, centred optical axis)."""
    path = camera_path(camera)
    if camera.mount == "wrist":
        stage.OverridePrim(f"{ROBOT}/{franka.LINK7}")  # the link comes from the robot asset
    usd_camera = UsdGeom.Camera.Define(stage, path)
    focal, h_aperture, v_aperture = usd_lens_from_fovy(camera.fovy_deg, camera.width, camera.height)
    usd_camera.CreateProjectionAttr(UsdGeom.Tokens.perspective)
    usd_camera.CreateFocalLengthAttr(float(focal))
    usd_camera.CreateHorizontalApertureAttr(float(h_aperture))
    usd_camera.CreateVerticalApertureAttr(float(v_aperture))
    usd_camera.CreateClippingRangeAttr(Gf.Vec2f(*CLIPPING_RANGE_M))
    set_pose(usd_camera, camera.pos_m, camera.quat_wxyz)
    usd_camera.GetPrim().SetCustomData(
        {
            "dataengine": {
                "mount": camera.mount,
                "fovy_deg": float(camera.fovy_deg),
                "width": int(camera.width),
                "height": int(camera.height),
            }
        }
    )
    product = UsdRender.Product.Define(stage, f"{RENDER}/{prim_name(camera.name)}")
    product.CreateCameraRel().SetTargets([Sdf.Path(path)])
    product.CreateResolutionAttr(Gf.Vec2i(int(camera.width), int(camera.height)))
    product.CreatePixelAspectRatioAttr(1.0)
    return usd_camera


def build_stage(
    layout: Layout,
    *,
    robot_usd: str | None = None,
    robot_arc: Literal["payload", "reference"] = "payload",
    metadata: dict | None = None,
    catalog_dir: str | Path | None = None,
    identifier: str = "scene.usda",
) -> Usd.Stage:
    """An in-memory stage of the layout (payloads are not loaded, so the robot asset need not be reachable)."""
    robot_usd = robot_usd or franka.default_franka_usd()
    stage = Usd.Stage.CreateInMemory(identifier, load=Usd.Stage.LoadNone)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    world = UsdGeom.Xform.Define(stage, WORLD).GetPrim()
    stage.SetDefaultPrim(world)
    info = _metadata(layout, metadata, robot_usd)
    world.SetCustomData({"dataengine": info})
    layer = stage.GetRootLayer()
    layer.documentation = "Pick-and-place scene written by dataengine (dataengine sim export-usd)."
    layer.customLayerData = {LAYOUT_KEY: layout.to_json(), "dataengine:scene_schema": SCENE_SCHEMA}
    scene = UsdPhysics.Scene.Define(stage, f"{WORLD}/PhysicsScene")
    scene.CreateGravityDirectionAttr(Gf.Vec3f(0.0, 0.0, -1.0))
    scene.CreateGravityMagnitudeAttr(9.81)
    for scope in (LOOKS, PHYSICS_MATERIALS, OBJECTS, LIGHTS, CAMERAS):
        UsdGeom.Scope.Define(stage, scope)
    _table(stage, layout)
    for index, obj in enumerate(layout.objects):
        _object(stage, obj, index, catalog_dir)
    _robot(stage, layout, robot_usd, robot_arc)
    ambient = UsdLux.DomeLight.Define(stage, f"{LIGHTS}/ambient")
    ambient.CreateIntensityAttr(AMBIENT_INTENSITY)
    for light in layout.lights:
        author_light(stage, light)
    UsdGeom.Scope.Define(stage, RENDER)
    for camera in layout.cameras:
        author_camera(stage, camera)
    return stage


def layout_from_stage(stage: Usd.Stage) -> Layout:
    """The layout a stage was built from (kept in the root layer's customLayerData)."""
    from dataengine.errors import InputError

    data = stage.GetRootLayer().customLayerData
    if LAYOUT_KEY not in data:
        raise InputError(f"{stage.GetRootLayer().identifier} was not written by dataengine (no {LAYOUT_KEY})")
    return Layout.from_json(data[LAYOUT_KEY])


def scene_metadata(stage: Usd.Stage) -> dict:
    """`/World`'s customData["dataengine"]: seed, task, episode key, robot asset, ..."""
    return dict(stage.GetPrimAtPath(WORLD).GetCustomDataByKey("dataengine") or {})
