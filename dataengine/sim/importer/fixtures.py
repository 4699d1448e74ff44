"""A procedural mesh library in the formats users bring (no downloads): textured OBJ+MTL+PNG, GLB with an
embedded texture, STL in millimetres with a sidecar, robosuite-style MuJoCo object XMLs (a textured OBJ with UVs
in centimetres scaled by the XML, an STL without UVs under a `texuniform` material, a visual and a collision geom),
and broken meshes the importer must quarantine.

`write_mesh_library(folder)` writes it; the tests import it and generate episodes with it, and
`dataengine sim assets fixtures OUT` writes it for a demo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from dataengine.errors import require

GOOD = ("food_can/soup_can.obj", "cereal/cereal_box.obj", "bottle/bottle.glb", "toy/block.stl", "fruit/pear.obj")
MJCF_GOOD = ("kitchen/jam_jar.xml", "kitchen/loaf.xml")
BAD = ("broken/empty.obj", "broken/nan_vertex.obj", "broken/fin.obj", "broken/garbage.glb", "broken/tower.stl")


def _label_texture(size: int, stripes: list[tuple[int, int, int]], seed: int) -> Image.Image:
    """Horizontal colour bands with a dotted pattern (so texture mapping is visible in renders)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), dtype=np.uint8)
    band = size // len(stripes)
    for i, colour in enumerate(stripes):
        img[i * band : (i + 1) * band] = colour
    dots = rng.integers(0, size, size=(size // 2, 2))
    img[dots[:, 0], dots[:, 1]] = 255 - img[dots[:, 0], dots[:, 1]]
    return Image.fromarray(img)


def _unshared(vertices: np.ndarray, faces: np.ndarray):
    """Every triangle with its own three vertices (so each can take its own UV)."""
    return vertices[faces].reshape(-1, 3), np.arange(len(faces) * 3).reshape(-1, 3)


def _cylinder_uv(vertices: np.ndarray) -> np.ndarray:
    angle = (np.arctan2(vertices[:, 1], vertices[:, 0]) + np.pi) / (2 * np.pi)
    height = (vertices[:, 2] - vertices[:, 2].min()) / np.ptp(vertices[:, 2])
    return np.stack([angle, height], axis=1)


def _box_uv(vertices: np.ndarray) -> np.ndarray:
    lo, span = vertices.min(axis=0), np.ptp(vertices, axis=0)
    return np.stack([(vertices[:, 0] - lo[0]) / span[0] * 0.5 + (vertices[:, 1] - lo[1]) / span[1] * 0.5,
                     (vertices[:, 2] - lo[2]) / span[2]], axis=1)  # fmt: skip


def _textured(trimesh, mesh, uv_fn, image):
    vertices, faces = _unshared(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    out = trimesh.Trimesh(vertices, faces, process=False)
    out.visual = trimesh.visual.TextureVisuals(uv=uv_fn(vertices), image=image)
    return out


def _write_obj(trimesh, mesh, path: Path) -> None:
    """OBJ + MTL + PNG with names of our own (trimesh's default names would collide in one folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    export = trimesh.exchange.obj.export_obj
    text, textures = export(mesh, include_texture=True, return_texture=True, mtl_name=f"{path.stem}.mtl")
    path.write_text(text, encoding="utf-8")
    for name, data in textures.items():
        (path.parent / name).write_bytes(data)


def write_mesh_library(folder: str | Path, mjcf: bool = True) -> list[str]:
    """Write the library under `folder`; returns the relative paths of its meshes (good ones, then bad ones).
    `mjcf=False` leaves the MuJoCo object XMLs out (the library the import benchmark measured)."""
    trimesh = require("trimesh", "sim", "Writing the procedural mesh library")
    folder = Path(folder)
    # a soup can: cylinder in metres (plausible size: kept as is), red/white label
    can = trimesh.creation.cylinder(radius=0.033, height=0.1, sections=32)
    can.apply_translation([0, 0, 0.05])
    label = _label_texture(128, [(200, 30, 30), (240, 240, 235), (200, 30, 30)], seed=1)
    _write_obj(trimesh, _textured(trimesh, can, _cylinder_uv, label), folder / GOOD[0])
    # a cereal box in centimetres (no sidecar: the category prior sets its size), blue/yellow print
    box = trimesh.creation.box(extents=[6.0, 19.0, 26.0])
    art = _label_texture(128, [(30, 60, 180), (240, 200, 40), (30, 60, 180), (240, 200, 40)], seed=2)
    _write_obj(trimesh, _textured(trimesh, box, _box_uv, art), folder / GOOD[1])
    # a bottle as GLB (glTF: y up, metres), green glass look
    bottle = trimesh.creation.cylinder(radius=0.03, height=0.2, sections=24)
    shoulder = trimesh.creation.cone(radius=0.03, height=0.06, sections=24)
    shoulder.apply_translation([0, 0, 0.1])
    body = trimesh.util.concatenate([bottle, shoulder]).convex_hull
    glass = _label_texture(64, [(30, 140, 60), (200, 230, 210), (30, 140, 60)], seed=3)
    bottle_mesh = _textured(trimesh, body, _cylinder_uv, glass)
    bottle_mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))  # z up -> y up
    (folder / GOOD[2]).parent.mkdir(parents=True, exist_ok=True)
    (folder / GOOD[2]).write_bytes(bottle_mesh.export(file_type="glb"))
    # a toy block as STL in millimetres, told by a sidecar, with a colour and attributes
    block = trimesh.creation.box(extents=[40.0, 40.0, 50.0])
    (folder / GOOD[3]).parent.mkdir(parents=True, exist_ok=True)
    (folder / GOOD[3]).write_bytes(block.export(file_type="stl"))
    meta = {"name": "toy block", "unit": "mm", "color": "orange", "attributes": ["wooden"], "density_kg_m3": 700}
    (folder / GOOD[3]).with_suffix(".yaml").write_text(json.dumps(meta), encoding="utf-8")
    # a pear: a concave solid of revolution (CoACD splits it), lying on its side as authored
    profile_z = np.linspace(0, 0.1, 15)  # two bulbs with a neck between them: concave
    bulbs = [np.sqrt(np.clip(r**2 - (profile_z - c) ** 2, 0, None)) for c, r in ((0.034, 0.034), (0.08, 0.02))]
    profile_r = np.maximum(*bulbs)
    profile_r[0] = profile_r[-1] = 0.0  # closed at both ends of the axis: a watertight solid
    pear = trimesh.creation.revolve(np.column_stack([profile_r, profile_z]), sections=24)
    pear.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))
    skin = _label_texture(64, [(60, 160, 50), (40, 130, 40)], seed=4)
    _write_obj(trimesh, _textured(trimesh, pear, _cylinder_uv, skin), folder / GOOD[4])
    if mjcf:
        write_mjcf_objects(trimesh, folder)
    _write_bad(folder)
    return [*GOOD, *(MJCF_GOOD if mjcf else ()), *BAD]


def write_mjcf_objects(trimesh, folder: Path) -> None:
    """Two robosuite-like object XMLs in `kitchen/` with their meshes in `kitchen/meshes/` and textures in
    `kitchen/textures/`. `jam_jar.stl` beside `jam_jar.obj` is another format of the same mesh (robosuite ships
    such siblings): the importer must take it as part of the XML, not as an object of its own."""
    kitchen = folder / "kitchen"
    # a jam jar: OBJ with UVs in centimetres, `scale` in the XML; red lid band over a yellow label
    jar = trimesh.creation.cylinder(radius=3.2, height=8.5, sections=28)
    jar.apply_translation([0, 0, 4.25])
    label = _label_texture(128, [(170, 30, 40), (245, 215, 90), (245, 215, 90)], seed=5)
    _write_obj(trimesh, _textured(trimesh, jar, _cylinder_uv, label), kitchen / "meshes" / "jam_jar.obj")
    (kitchen / "meshes" / "jam_jar.stl").write_bytes(jar.export(file_type="stl"))
    # a loaf: STL without UVs (MuJoCo projects the texture: texuniform, texrepeat per metre), metres
    loaf = trimesh.creation.box(extents=[0.06, 0.11, 0.05])
    loaf = trimesh.Trimesh(*trimesh.remesh.subdivide(loaf.vertices, loaf.faces))
    loaf.vertices[:, 2] += 20 * (0.025**2 - loaf.vertices[:, 0] ** 2) * (loaf.vertices[:, 2] > 0)  # a domed top
    (kitchen / "meshes" / "loaf.stl").write_bytes(loaf.export(file_type="stl"))
    (kitchen / "textures").mkdir(parents=True, exist_ok=True)
    crust = _label_texture(64, [(180, 110, 50), (150, 85, 35)], seed=6)
    crust.save(kitchen / "textures" / "crust.png")
    (kitchen / "jam_jar.xml").write_text(_MJCF.format(
        name="jam_jar", mesh='file="meshes/jam_jar.obj" scale="0.01 0.01 0.01"', texture="meshes/material_0.png",
        material='texrepeat="1 1" texuniform="false"', pos="0 0 -0.0425"), encoding="utf-8")  # fmt: skip
    (kitchen / "loaf.xml").write_text(_MJCF.format(
        name="loaf", mesh='file="meshes/loaf.stl"', texture="textures/crust.png",
        material='texrepeat="20 20" texuniform="true"', pos="0 0 0"), encoding="utf-8")  # fmt: skip


_MJCF = """<mujoco model="{name}">
  <asset>
    <mesh {mesh} name="{name}_mesh"/>
    <texture file="{texture}" type="2d" name="tex-{name}"/>
    <material name="{name}" reflectance="0.3" {material} texture="tex-{name}"/>
  </asset>
  <worldbody>
    <body>
      <body name="object">
        <geom pos="{pos}" mesh="{name}_mesh" type="mesh" material="{name}" contype="0" conaffinity="0" group="1"/>
        <geom pos="{pos}" mesh="{name}_mesh" type="mesh" density="300" friction="0.95 0.3 0.1" group="0"/>
      </body>
      <site rgba="0 0 0 0" size="0.005" pos="0 0 -0.04" name="bottom_site"/>
    </body>
  </worldbody>
</mujoco>
"""


def _write_bad(folder: Path) -> None:
    broken = folder / "broken"
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "empty.obj").write_text("# no geometry\nv 0 0 0\n", encoding="utf-8")
    (broken / "nan_vertex.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 nan 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n")
    # three triangles on one edge: non-manifold
    (broken / "fin.obj").write_text("v 0 0 0\nv 0 0 1\nv 1 0 0\nv 0 1 0\nv -1 -1 0\nf 1 2 3\nf 1 2 4\nf 1 2 5\n")
    (broken / "garbage.glb").write_bytes(b"glTF\x02\x00\x00\x00" + bytes(range(64)))
    tower = require("trimesh", "sim", "Writing the procedural mesh library").creation.box(extents=[1.0, 1.0, 3.0])
    (broken / "tower.stl").write_bytes(tower.export(file_type="stl"))
    (broken / "tower.yaml").write_text("unit: m\n", encoding="utf-8")


def write_many_objects(folder: str | Path, count: int, seed: int = 0) -> Path:
    """A catalog of `count` distinct textured convex objects (boxes, cylinders and prisms of random graspable sizes,
    each its own OBJ with UVs, 32 px PNG and collision hull) in `count // 10` categories, all `seen`: the catalog
    the worker-memory benchmark samples from. Returns the catalog path."""
    import yaml

    from dataengine.sim.importer.write import COLOR_NAMES, obj_text, size_label

    trimesh = require("trimesh", "sim", "Writing a many-object catalog")
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    colours = sorted(COLOR_NAMES)
    entries = []
    for i in range(count):
        kind = ("box", "cylinder", "prism")[i % 3]
        width, depth, height = rng.uniform(0.03, 0.06), rng.uniform(0.03, 0.09), rng.uniform(0.04, 0.09)
        if kind == "box":
            mesh, uv_fn = trimesh.creation.box(extents=[width, depth, height]), _box_uv
        else:
            sections = 24 if kind == "cylinder" else int(rng.integers(3, 9))
            mesh, uv_fn = trimesh.creation.cylinder(radius=width / 2, height=height, sections=sections), _cylinder_uv
        mesh.apply_translation([0, 0, height / 2])
        vertices, faces = _unshared(np.asarray(mesh.vertices), np.asarray(mesh.faces))
        colour = colours[int(rng.integers(len(colours)))]
        base = np.asarray(COLOR_NAMES[colour]) * 255
        texture = _label_texture(32, [tuple(int(c) for c in base), tuple(int(c * 0.7) for c in base)], seed=i)
        sub = folder / "meshes" / f"{i:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / "visual.obj").write_text(obj_text(vertices, faces, uv_fn(vertices)), encoding="utf-8")
        (sub / "collision.obj").write_text(obj_text(np.asarray(mesh.vertices), np.asarray(mesh.faces)))
        texture.save(sub / "texture.png")
        mass = float(np.clip(abs(mesh.volume) * 400.0, 0.02, 0.5))
        entries.append({
            "id": f"many_{i:04d}", "name": f"item {i}", "category": f"kind {i % max(1, count // 10):03d}",
            "color": colour, "rgba": [*[round(float(c), 4) for c in COLOR_NAMES[colour]], 1.0],
            "size": size_label(float(max(width, depth, height))), "mass_kg": round(mass, 4),
            "shape": {"mesh": {"file": f"meshes/{i:04d}/visual.obj", "texture": f"meshes/{i:04d}/texture.png",
                               "collision": [f"meshes/{i:04d}/collision.obj"]}},
        })  # fmt: skip
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump({"objects": entries, "containers": []}, sort_keys=False), encoding="utf-8")
    return path
