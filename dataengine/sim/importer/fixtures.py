"""A procedural mesh library in the formats users bring (no downloads): textured OBJ+MTL+PNG, GLB with an
embedded texture, STL in millimetres with a sidecar, and broken meshes the importer must quarantine.

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


def write_mesh_library(folder: str | Path) -> list[str]:
    """Write the library under `folder`; returns the relative paths of its meshes (good ones, then bad ones)."""
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
    _write_bad(folder)
    return [*GOOD, *BAD]


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
