"""Compile a `Layout` to MuJoCo MJCF: table, free-body objects, lights, cameras and the Franka Panda.

The Panda comes from gymnasium-robotics (`envs/assets/kitchen_franka/franka_assets`, Apache-2.0): position
actuators for 7 arm joints and 2 fingers, 2 ms timestep. We inline its three include files with small patches:
the chain is wrapped in a base body (the layout's base pose), a `tool` site sits between the finger pads, the
asset's grey `end_effector` site is hidden, and wrist cameras are attached to the hand.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

from dataengine.errors import InputError, MissingDependencyError
from dataengine.records.layout import Camera, Layout, Part, SceneObject
from dataengine.sim.meshes import mesh_arrays, resolve_path

TOOL_SITE = "tool"
FINGER_BODIES = ("panda0_leftfinger", "panda0_rightfinger")
ARM_JOINTS = tuple(f"robot:panda0_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("robot:panda0_finger_joint1", "robot:panda0_finger_joint2")
TOOL_OFFSET_IN_HAND_M = 0.2254  # centre of the finger pads along the hand z axis (fingertips 3.4 cm further)
TABLE_TEXTURES = ("none", "checker", "grain", "noise")


@lru_cache(maxsize=1)
def franka_assets_dir() -> Path:
    import importlib.util

    # locate the package without importing it (its import registers environments and prints warnings)
    found = importlib.util.find_spec("gymnasium_robotics")
    if found is None or not found.submodule_search_locations:
        raise MissingDependencyError("gymnasium-robotics", "sim", "The Franka Panda model")
    path = Path(next(iter(found.submodule_search_locations))) / "envs/assets/kitchen_franka/franka_assets"
    if not (path / "chain.xml").is_file():
        raise InputError(f"gymnasium-robotics is installed but {path}/chain.xml is missing")
    return path


def mesh_cache_dir() -> Path:
    """Where derived meshes are cached (`DATAENGINE_CACHE_DIR`, default ~/.cache/dataengine)."""
    import os

    root = os.environ.get("DATAENGINE_CACHE_DIR") or Path.home() / ".cache" / "dataengine"
    return Path(root) / "sim_meshes"


@lru_cache(maxsize=4)
def robot_mesh_dir(visual_fraction: float) -> Path:
    """A mesh directory for the Panda: collision meshes as shipped, visual meshes decimated to `visual_fraction`
    of their triangles (llvmpipe spends most of a frame on the arm's 134k triangles). 1.0 = the shipped dir."""
    source = franka_assets_dir() / "meshes"
    if visual_fraction >= 1.0:
        return source
    target = mesh_cache_dir() / f"panda_visual_{visual_fraction:.3f}"
    if (target / "done").is_file():
        return target
    import shutil
    import tempfile

    import fast_simplification
    import trimesh

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    shutil.copytree(source / "collision", tmp / "collision")
    (tmp / "visual").mkdir()
    for stl in sorted((source / "visual").glob("*.stl")):
        mesh = trimesh.load(stl, force="mesh")
        vertices, faces = fast_simplification.simplify(
            mesh.vertices, mesh.faces, target_reduction=1.0 - visual_fraction
        )
        trimesh.Trimesh(vertices, faces, process=False).export(tmp / "visual" / stl.name)
    (tmp / "done").write_text("ok\n")
    try:
        tmp.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _strip_include(text: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"</?mujocoinclude>", "", text)
    return text.strip()


@lru_cache(maxsize=1)
def _panda_parts() -> tuple[str, str, str]:
    """(asset+default block, chain body, actuators) as MJCF text."""
    root = franka_assets_dir()
    assets = _strip_include((root / "assets.xml").read_text())
    assets = re.sub(r"<compiler[^>]*/>", "", assets)
    assets = re.sub(r"<option[^>]*/>", "", assets)
    assets = re.sub(r"<size[^>]*/>", "", assets)
    chain = _strip_include((root / "chain.xml").read_text())
    anchor = "<site name='end_effector'"
    if anchor not in chain:
        raise InputError(f"unexpected Panda model in {root}: no end_effector site to anchor the tool site")
    chain = chain.replace(anchor, "<site name='end_effector' rgba='0 0 0 0' group='5'", 1)
    # gravity compensation must be in the MJCF: MuJoCo counts gravcomp bodies at compile time
    chain = re.sub(r'<body name="panda0_', '<body gravcomp="1" name="panda0_', chain)
    actuators = _strip_include((root / "actuator.xml").read_text())
    return assets, chain, actuators


def _tool_site_xml(hidden: bool) -> str:
    """The tool site between the finger pads; its x axis is the fingers' closing axis, z points out of the hand."""
    look = " rgba='0 0 0 0' group='5'" if hidden else ""
    return f"<site name='{TOOL_SITE}' pos='0 0 {TOOL_OFFSET_IN_HAND_M}' euler='0 0 0.785398' size='0.005'{look}/>"


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _imported_mesh_xml(obj: SceneObject, index: int, part: Part, catalog_dir: Path | None, assets: list[str]) -> str:
    """An imported mesh: a visual-only geom (textured when the spec names a texture) and one collision geom per
    convex piece (group 3, not rendered), which carry the part's mass."""
    spec = part.mesh
    base = f"{obj.uid}_m{index}"
    pose = f'pos="{_fmt(part.pos_m)}" quat="{_fmt(part.quat_wxyz)}"'
    scale = f'scale="{_fmt(spec.scale)}"'
    assets.append(f'<mesh name="{base}" file="{resolve_path(spec.file, catalog_dir)}" {scale}/>')
    look = f'rgba="{_fmt(part.rgba or obj.rgba)}"'
    if spec.texture:
        assets.append(f'<texture name="{base}_tex" type="2d" file="{resolve_path(spec.texture, catalog_dir)}"/>')
        assets.append(f'<material name="{base}_mat" texture="{base}_tex"/>')
        look = f'material="{base}_mat" rgba="1 1 1 1"'
    geoms = [f'<geom name="{obj.uid}_g{index}" type="mesh" mesh="{base}" {pose} {look} contype="0" conaffinity="0" '
             'group="1" mass="0"/>']  # fmt: skip
    for k, file in enumerate(spec.collision):
        assets.append(f'<mesh name="{base}_c{k}" file="{resolve_path(file, catalog_dir)}" {scale}/>')
        geoms.append(
            f'<geom name="{obj.uid}_g{index}_c{k}" type="mesh" mesh="{base}_c{k}" {pose} group="3" rgba="0 0 0 0" '
            'class="obj"/>'
        )
    return "".join(geoms)


def _part_xml(obj: SceneObject, index: int, part: Part, catalog_dir: Path | None, meshes: list[str]) -> str:
    rgba = part.rgba or obj.rgba
    name = f"{obj.uid}_g{index}"
    common = f'name="{name}" pos="{_fmt(part.pos_m)}" quat="{_fmt(part.quat_wxyz)}" rgba="{_fmt(rgba)}"'
    if part.shape == "mesh":
        if part.mesh is None:
            raise InputError(f"{obj.asset_id}: a mesh part needs a 'mesh'")
        if part.mesh.collision:
            return _imported_mesh_xml(obj, index, part, catalog_dir, meshes)
        vertices, faces = mesh_arrays(part.mesh, catalog_dir)
        mesh_name = f"{obj.uid}_m{index}"
        meshes.append(f'<mesh name="{mesh_name}" vertex="{_fmt(vertices.ravel())}" face="{_fmt(faces.ravel())}"/>')
        return f'<geom {common} type="mesh" mesh="{mesh_name}" class="obj"/>'
    return f'<geom {common} type="{part.shape}" size="{_fmt(part.size_m)}" class="obj"/>'


def _part_volume(part: Part, catalog_dir: Path | None) -> float:
    s = part.size_m
    if part.shape == "box":
        return 8 * s[0] * s[1] * s[2]
    if part.shape == "cylinder":
        return math.pi * s[0] ** 2 * 2 * s[1]
    if part.shape == "sphere":
        return 4 / 3 * math.pi * s[0] ** 3
    if part.shape == "capsule":
        return math.pi * s[0] ** 2 * 2 * s[1] + 4 / 3 * math.pi * s[0] ** 3
    if part.shape == "ellipsoid":
        return 4 / 3 * math.pi * s[0] * s[1] * s[2]
    from dataengine.sim.meshes import mesh_volume_m3

    return mesh_volume_m3(part.mesh, catalog_dir) if part.mesh else 1e-6


def _object_xml(obj: SceneObject, catalog_dir: Path | None, meshes: list[str]) -> str:
    volumes = [max(_part_volume(p, catalog_dir), 1e-9) for p in obj.parts]
    total = sum(volumes)
    geoms = []
    for i, (part, vol) in enumerate(zip(obj.parts, volumes, strict=True)):
        xml = _part_xml(obj, i, part, catalog_dir, meshes)
        pieces = max(1, xml.count(' class="obj"'))  # convex pieces of an imported mesh share its part's mass
        geoms.append(xml.replace(' class="obj"', f' class="obj" mass="{obj.mass_kg * vol / total / pieces:.6g}"'))
    friction = f"{obj.friction:.4g} 0.01 0.001"
    return (
        f'<body name="{obj.uid}" pos="{_fmt(obj.pose.pos_m)}" quat="{_fmt(obj.pose.quat_wxyz)}">'
        f'<freejoint name="{obj.uid}_free"/>'
        + "".join(g.replace(' class="obj"', f' class="obj" friction="{friction}"') for g in geoms)
        + "</body>"
    )


def _camera_xml(cam: Camera) -> str:
    return (
        f'<camera name="{cam.name}" pos="{_fmt(cam.pos_m)}" quat="{_fmt(cam.quat_wxyz)}" '
        f'fovy="{cam.fovy_deg:.6g}" resolution="{cam.width} {cam.height}"/>'
    )


def _table_xml(layout: Layout) -> str:
    t = layout.table
    cx, cy, top = t.top_center_m
    hx, hy = t.half_size_m
    half_t = t.thickness_m / 2
    floor_z = t.floor_z_m
    leg = (t.height_m - t.thickness_m) / 2
    material = "table_file" if t.texture_file else f"table_{t.texture}"
    legs = "".join(
        f'<geom name="table_leg{i}" type="box" size="0.025 0.025 {leg:.6g}" '
        f'pos="{cx + sx * (hx - 0.05):.6g} {cy + sy * (hy - 0.05):.6g} {floor_z + leg:.6g}" rgba="0.3 0.3 0.32 1"/>'
        for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1)))
    )
    return (
        f'<geom name="floor" type="plane" size="4 4 0.1" pos="0 0 {floor_z:.6g}" material="floor_mat" '
        f'rgba="{_fmt(layout.floor_rgba)}"/>'
        f'<geom name="table" type="box" size="{hx:.6g} {hy:.6g} {half_t:.6g}" pos="{cx:.6g} {cy:.6g} '
        f'{top - half_t:.6g}" material="{material}" rgba="{_fmt(t.rgba)}" friction="1 0.01 0.001"/>' + legs
    )


def _walls_xml(layout: Layout) -> tuple[str, str]:
    """(assets, geoms) of the backdrop walls: visual boxes that collide with nothing; empty without walls, so
    scenes without walls keep their model."""
    if not layout.walls and not layout.table.texture_file:
        return "", ""
    assets = []
    if layout.table.texture_file:
        assets.append(f'<texture name="tex_table_file" type="2d" file="{layout.table.texture_file}"/>'
                      '<material name="table_file" texture="tex_table_file" texrepeat="2 2"/>')  # fmt: skip
    textures = sorted({w.texture for w in layout.walls})
    assets += [f'<material name="wall_{t}"' + (f' texture="tex_{t}" texrepeat="6 3"' if t != "none" else "") + "/>"
               for t in textures]  # fmt: skip
    geoms = "".join(
        f'<geom name="wall_{w.name}" type="box" size="{_fmt(w.half_size_m)}" pos="{_fmt(w.center_m)}" '
        f'material="wall_{w.texture}" rgba="{_fmt(w.rgba)}" contype="0" conaffinity="0" group="2" mass="0"/>'
        for w in layout.walls
    )
    return "".join(assets), geoms


def build_mjcf(
    layout: Layout, *, timestep_s: float = 0.002, catalog_dir: Path | None = None, robot_visual_fraction: float = 1.0
) -> str:
    """The scene as one MJCF document (meshes of the robot referenced by absolute path)."""
    assets, chain, actuators = _panda_parts()
    base = layout.robot
    wrist_cams = "".join(_camera_xml(c) for c in layout.cameras if c.mount == "wrist")
    tool_site = _tool_site_xml(hidden=True)
    chain = chain.replace("<site name='end_effector'", tool_site + wrist_cams + "<site name='end_effector'", 1)
    max_w = max([c.width for c in layout.cameras] + [64])
    max_h = max([c.height for c in layout.cameras] + [64])
    meshes: list[str] = []
    objects = "".join(_object_xml(o, catalog_dir, meshes) for o in layout.objects)
    lights = "".join(
        f'<light name="{lt.name}" pos="{_fmt(lt.pos_m)}" dir="{_fmt(lt.dir)}" diffuse="{_fmt(lt.diffuse)}" '
        f'specular="{_fmt(lt.specular)}" directional="{str(lt.directional).lower()}" '
        f'castshadow="{str(lt.cast_shadow).lower()}"/>'
        for lt in layout.lights
    )
    world_cams = "".join(_camera_xml(c) for c in layout.cameras if c.mount == "world")
    wall_assets, walls = _walls_xml(layout)
    return f"""<mujoco model="dataengine_pick_place">
  <compiler angle="radian" meshdir="{robot_mesh_dir(robot_visual_fraction)}" autolimits="true"/>
  <option timestep="{timestep_s}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="{max_w}" offheight="{max_h}"/>
    <quality shadowsize="1024" offsamples="0"/>
    <headlight ambient="0.25 0.25 0.25" diffuse="0.3 0.3 0.3" specular="0 0 0"/>
  </visual>
  {assets}
  <default>
    <default class="obj">
      <geom condim="4" solref="0.005 1" solimp="0.95 0.99 0.001" group="1"/>
    </default>
  </default>
  <asset>
    <texture name="tex_checker" type="2d" builtin="checker" rgb1="1 1 1" rgb2="0.7 0.7 0.7" width="256" height="256"/>
    <texture name="tex_grain" type="2d" builtin="gradient" rgb1="1 1 1" rgb2="0.75 0.75 0.75" width="256" height="256"/>
    <texture name="tex_noise" type="2d" builtin="flat" mark="random" random="0.25" rgb1="1 1 1" rgb2="1 1 1"
      markrgb="0.55 0.55 0.55" width="256" height="256"/>
    <material name="table_none"/>
    <material name="table_checker" texture="tex_checker" texrepeat="8 8"/>
    <material name="table_grain" texture="tex_grain" texrepeat="3 1"/>
    <material name="table_noise" texture="tex_noise" texrepeat="2 2"/>
    <material name="floor_mat" reflectance="0.15"/>
    {"".join(meshes)}{wall_assets}
  </asset>
  <worldbody>
    {lights}
    {_table_xml(layout)}{walls}
    {world_cams}
    <body name="robot_base" pos="{_fmt(base.base_pos_m)}" euler="0 0 {base.base_yaw_rad:.6g}">
      {chain}
    </body>
    {objects}
  </worldbody>
  {actuators}
</mujoco>"""


def robot_only_mjcf() -> str:
    """The Panda alone, base at the origin, with the tool site (for IK)."""
    assets, chain, _ = _panda_parts()
    tool_site = _tool_site_xml(hidden=False)
    chain = chain.replace("<site name='end_effector'", tool_site + "<site name='end_effector'", 1)
    return f"""<mujoco model="panda_ik">
  <compiler angle="radian" meshdir="{franka_assets_dir() / "meshes"}" autolimits="true"/>
  {assets}
  <worldbody><body name="robot_base">{chain}</body></worldbody>
</mujoco>"""
