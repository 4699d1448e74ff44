"""`Layout`: the backend-neutral description of one scene (`layout/v1`).

A layout is everything a simulator needs to build a scene, and nothing simulator-specific: the table, the objects
and the container (asset id, parts, pose, colour, mass), lights, cameras and the robot's start. It is a record
(stored in every `episode/v1` sample, read by exports and the rewriter without the simulator); the MuJoCo backend
compiles it to MJCF, the USD exporter and the Isaac Sim backend read the same model.

Frames and units: the world frame has z up, x pointing away from the robot base towards the table's far side,
metres and radians everywhere, quaternions (w, x, y, z). An object's body frame sits at the bottom centre of its
bounding box (so `pose.pos_m[2]` is the height of the surface it rests on); parts are placed in that frame.
Cameras follow the MuJoCo/OpenGL convention in the layout (looking along -z, y up); the backend reports the OpenCV
extrinsics (`CameraParams`).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

LAYOUT_SCHEMA = "layout/v1"

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]
Rgba = tuple[float, float, float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Pose(_Model):
    pos_m: Vec3
    quat_wxyz: Quat = (1.0, 0.0, 0.0, 0.0)


class MeshSpec(_Model):
    """A mesh either generated from parameters (`generator` + `params`, built with trimesh) or read from a file
    (`file`: absolute path, or relative to the asset catalog). Scale is applied to the vertices.

    Imported meshes (`dataengine sim assets import`) also name a `texture` (PNG, mapped by the file's UVs) and
    `collision` files: convex pieces the simulator collides with instead of the visual mesh's hull. Both are
    left out of the serialized layout when unset, so layouts without them keep their bytes."""

    generator: str | None = None
    params: dict[str, float] = Field(default_factory=dict)
    file: str | None = None
    scale: Vec3 = (1.0, 1.0, 1.0)
    texture: str | None = None
    collision: list[str] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _omit_unset_extras(self, handler):
        data = handler(self)
        for key in ("texture", "collision"):
            if not data.get(key):
                data.pop(key, None)
        return data


class Part(_Model):
    """One rigid piece (collision and visual) in the object's body frame.

    `size_m` follows MuJoCo's geom conventions: box = half extents (3); cylinder/capsule = (radius, half height);
    sphere = (radius,); ellipsoid = radii (3); mesh = unused (the mesh carries its size)."""

    shape: Literal["box", "cylinder", "sphere", "capsule", "ellipsoid", "mesh"]
    size_m: list[float] = Field(default_factory=list)
    pos_m: Vec3 = (0.0, 0.0, 0.0)
    quat_wxyz: Quat = (1.0, 0.0, 0.0, 0.0)
    mesh: MeshSpec | None = None
    rgba: Rgba | None = Field(default=None, description="overrides the object's colour for this part")


class Interior(_Model):
    """The region of a container that counts as 'in' it, in the container's body frame."""

    shape: Literal["rect", "round"]
    half_xy_m: tuple[float, float] = Field(description="inner half extents (round: radius, radius)")
    floor_z_m: float = Field(description="height of the inner floor above the container's bottom")
    rim_z_m: float = Field(description="height of the rim above the container's bottom")


class SceneObject(_Model):
    """A free rigid body on the table: a graspable object or a container."""

    uid: str = Field(description="unique id in the scene, e.g. 'obj_0' or 'container'")
    asset_id: str
    name: str
    category: str
    color: str = Field(description="colour name used in instructions")
    rgba: Rgba
    size_label: Literal["small", "medium", "large"]
    attributes: list[str] = Field(default_factory=list)
    role: Literal["pick", "place", "distractor"]
    kind: Literal["object", "container"]
    pose: Pose
    parts: list[Part]
    half_extents_m: Vec3 = Field(description="half extents of the bounding box; its centre is (0, 0, hz)")
    mass_kg: float = Field(gt=0)
    friction: float = Field(default=1.0, gt=0)
    grasp_width_m: float | None = Field(
        default=None, description="object width across the gripper's closing axis at its best grasp yaw"
    )
    grasp_yaw_rad: float = Field(default=0.0, description="grasp yaw in the object frame (closing axis = +x)")
    grasp_height_m: float | None = Field(default=None, description="height of the grasp point above the bottom")
    interior: Interior | None = None
    scale: float = Field(default=1.0, gt=0, description="size relative to the catalog asset (left out when 1)")

    @model_serializer(mode="wrap")
    def _omit_unit_scale(self, handler):
        data = handler(self)
        if data.get("scale") == 1.0:
            data.pop("scale")
        return data


NOMINAL_TABLE_HEIGHT_M = 0.75  # the table top's height above the floor unless a recipe varies it


class Table(_Model):
    """The table. World cameras and lights hang at fixed heights above the floor (`floor_z_m`); the robot stands
    on the top. `height_m`, `texture_file` are left out of the serialized layout when unset (default height, no
    image texture), so layouts without them keep their bytes."""

    top_center_m: Vec3 = Field(description="centre of the table's top surface")
    half_size_m: tuple[float, float] = Field(description="half extents of the top in x and y")
    thickness_m: float = 0.04
    rgba: Rgba = (0.75, 0.68, 0.58, 1.0)
    texture: Literal["none", "checker", "grain", "noise"] = "none"
    height_m: float = Field(default=NOMINAL_TABLE_HEIGHT_M, gt=0.2, description="top above the floor")
    texture_file: str | None = Field(default=None, description="PNG image on the top (absolute path)")

    @property
    def floor_z_m(self) -> float:
        return self.top_center_m[2] - self.height_m

    @property
    def rig_z_m(self) -> float:
        """The height world cameras and lights are placed relative to: the nominal table top above the floor."""
        if self.height_m == NOMINAL_TABLE_HEIGHT_M:  # exactly the top (no rounding through the floor)
            return self.top_center_m[2]
        return self.floor_z_m + NOMINAL_TABLE_HEIGHT_M

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler):
        data = handler(self)
        if data.get("height_m") == NOMINAL_TABLE_HEIGHT_M:
            data.pop("height_m")
        if data.get("texture_file") is None:
            data.pop("texture_file", None)
        return data


class Wall(_Model):
    """A backdrop plane (a thin visual box, no collisions) around the table."""

    name: str
    center_m: Vec3
    half_size_m: Vec3 = Field(description="half extents of the box in the world frame")
    rgba: Rgba
    texture: Literal["none", "checker", "grain", "noise"] = "none"


class Light(_Model):
    name: str
    pos_m: Vec3
    dir: Vec3 = (0.0, 0.0, -1.0)
    diffuse: tuple[float, float, float] = (0.6, 0.6, 0.6)
    specular: tuple[float, float, float] = (0.2, 0.2, 0.2)
    directional: bool = False
    cast_shadow: bool = True


class Camera(_Model):
    """A camera, OpenGL convention (looks along its -z axis, y up). `mount: wrist` poses are in the hand frame."""

    name: str
    mount: Literal["world", "wrist"] = "world"
    pos_m: Vec3
    quat_wxyz: Quat
    fovy_deg: float = Field(gt=1, lt=179)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class RobotStart(_Model):
    model: Literal["franka_panda"] = "franka_panda"
    base_pos_m: Vec3 = (0.0, 0.0, 0.0)
    base_yaw_rad: float = 0.0
    arm_qpos_rad: tuple[float, float, float, float, float, float, float]
    gripper_opening_m: float = Field(default=0.08, ge=0, le=0.08, description="distance between the fingers")


class Layout(_Model):
    """One scene. Serialize with `to_json()`; the same layout always builds the same simulator scene."""

    schema_: Literal["layout/v1"] = Field(default=LAYOUT_SCHEMA, alias="schema")
    table: Table
    floor_rgba: Rgba = (0.32, 0.34, 0.38, 1.0)
    objects: list[SceneObject]
    lights: list[Light]
    cameras: list[Camera]
    robot: RobotStart
    walls: list[Wall] = Field(default_factory=list, description="backdrop planes (left out when none)")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_serializer(mode="wrap")
    def _omit_no_walls(self, handler):
        data = handler(self)
        if not data.get("walls"):
            data.pop("walls", None)
        return data

    def object(self, uid: str) -> SceneObject:
        for obj in self.objects:
            if obj.uid == uid:
                return obj
        raise KeyError(f"no object {uid!r} in the layout; objects: {[o.uid for o in self.objects]}")

    def by_role(self, role: str) -> list[SceneObject]:
        return [o for o in self.objects if o.role == role]

    @property
    def pick(self) -> SceneObject:
        return self.by_role("pick")[0]

    @property
    def place(self) -> SceneObject:
        return self.by_role("place")[0]

    def camera(self, name: str) -> Camera:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"no camera {name!r}; cameras: {[c.name for c in self.cameras]}")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Layout:
        return cls.model_validate_json(text)


class Look(_Model):
    """Visual randomization drawn at render time. Applying a look changes colours, lights and camera poses of a
    loaded scene, never its physics, so one validated trajectory can be rendered under several looks."""

    table_rgba: Rgba
    table_texture: Literal["none", "checker", "grain", "noise"] = "none"
    floor_rgba: Rgba
    lights: list[Light]
    cameras: list[Camera]
