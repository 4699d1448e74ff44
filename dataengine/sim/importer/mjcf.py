"""MuJoCo object MJCF files (robosuite-style object XMLs) as import sources.

Such a file is a `<mujoco>` model whose body holds mesh geoms referencing `.stl`/`.obj`/`.msh` files, with textures
and materials in `<asset>`. `mjcf_files` lists the files it reads (so its digest covers them and the importer does
not import its meshes a second time); `load_mjcf` compiles it with the `mujoco` package (so `meshdir`, mesh
`scale`, the `.msh` format and geom poses are MuJoCo's own reading) and returns one mesh: the visual geoms
(`contype=conaffinity=0`; every mesh geom when there are none) in the model's frame, with the texture of the
first textured one. Meshes with texture coordinates keep them; for meshes without, coordinates are projected
along each triangle's dominant axis, `texrepeat` times per metre (MuJoCo's `texuniform` look).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from dataengine.errors import require

MJCF_SUFFIX = ".xml"
_FILE_ATTRS = ("file", "fileright", "fileleft", "fileup", "filedown", "filefront", "fileback")


class NoMeshGeoms(ValueError):
    """An MJCF file that compiles but has no mesh geom (primitive-only objects are not imported)."""


def is_mjcf(path: Path) -> bool:
    """True for an XML file whose root element is `<mujoco>`."""
    try:
        for _, elem in ET.iterparse(str(path), events=("start",)):
            return elem.tag == "mujoco"
    except (ET.ParseError, OSError):
        return False
    return False


def mjcf_files(path: Path) -> list[Path]:
    """The mesh and texture files an MJCF file names (resolved with `<compiler meshdir/texturedir/assetdir>`)."""
    try:
        root = ET.parse(str(path)).getroot()
    except (ET.ParseError, OSError):
        return []
    compiler = root.find("compiler")
    attrs = compiler.attrib if compiler is not None else {}
    asset_dir = attrs.get("assetdir", "")
    dirs = {"mesh": attrs.get("meshdir", asset_dir), "texture": attrs.get("texturedir", asset_dir)}
    found = []
    for kind, folder in dirs.items():
        for elem in root.iter(kind):
            for attr in _FILE_ATTRS:
                if elem.get(attr):
                    found.append((path.parent / folder / elem.get(attr)).resolve())
    return sorted({p for p in found if p.is_file()})


def _texture_image(model, tex_id: int):
    """The texture as a PIL RGB image (a cube texture: its first face)."""
    from PIL import Image

    w, h = int(model.tex_width[tex_id]), int(model.tex_height[tex_id])
    channels = int(model.tex_nchannel[tex_id]) if hasattr(model, "tex_nchannel") else 3
    adr = int(model.tex_adr[tex_id])
    data = np.asarray(model.tex_data[adr : adr + w * h * channels], dtype=np.uint8).reshape(h, w, channels)
    if int(model.tex_type[tex_id]) != 0:  # cube or skybox: faces stacked vertically
        data = data[: min(h, w)]
    return Image.fromarray(data[..., :3].copy(), "RGB")


def _projected_uv(vertices: np.ndarray, faces: np.ndarray, repeat: tuple[float, float]):
    """Unshared vertices with UVs projected along each triangle's dominant normal axis, `repeat` per metre."""
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    axis = np.abs(normals).argmax(axis=1)
    planes = np.array([[1, 2], [0, 2], [0, 1]])[axis]  # the two coordinates across the dominant axis
    flat = tri.reshape(-1, 3)
    cols = np.repeat(planes, 3, axis=0)
    uv = np.stack([flat[np.arange(len(flat)), cols[:, 0]], flat[np.arange(len(flat)), cols[:, 1]]], axis=1)
    return flat, np.arange(len(flat)).reshape(-1, 3), uv * np.asarray(repeat)


def load_mjcf(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, object | None, tuple]:
    """(vertices, faces, uv or None, texture image or None, rgba) of an MJCF object's visual meshes.

    Raises ValueError when MuJoCo cannot compile it, `NoMeshGeoms` when it has no mesh geom."""
    mujoco = require("mujoco", "sim", "Importing MJCF object files")
    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    except Exception as exc:  # mujoco raises ValueError with the compiler's message
        raise ValueError(f"MuJoCo cannot compile it: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    mesh_type = int(mujoco.mjtGeom.mjGEOM_MESH)
    geoms = [g for g in range(model.ngeom) if int(model.geom_type[g]) == mesh_type]
    if not geoms:
        raise NoMeshGeoms("no mesh geoms (primitive-only MJCF objects are not imported)")
    visual = [g for g in geoms if model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0]
    geoms = visual or geoms
    textured = [g for g in geoms if _geom_texture(model, g) >= 0]
    tex_id = _geom_texture(model, textured[0]) if textured else -1
    parts_v, parts_f, parts_uv, offset = [], [], [], 0
    keep_uv = tex_id >= 0 and all(_geom_texture(model, g) == tex_id for g in geoms)
    for g in geoms:
        mesh = int(model.geom_dataid[g])
        vadr, vnum = int(model.mesh_vertadr[mesh]), int(model.mesh_vertnum[mesh])
        fadr, fnum = int(model.mesh_faceadr[mesh]), int(model.mesh_facenum[mesh])
        local = np.asarray(model.mesh_vert[vadr : vadr + vnum], dtype=np.float64)
        world = local @ data.geom_xmat[g].reshape(3, 3).T + data.geom_xpos[g]
        faces = np.asarray(model.mesh_face[fadr : fadr + fnum], dtype=np.int64)
        uv = None
        if keep_uv:
            tadr = int(model.mesh_texcoordadr[mesh])
            if tadr >= 0:  # per-face texture coordinate indices: unshare vertices to carry them
                tfaces = np.asarray(model.mesh_facetexcoord[fadr : fadr + fnum], dtype=np.int64)
                coords = np.asarray(model.mesh_texcoord[tadr : tadr + int(model.mesh_texcoordnum[mesh])])
                world, uv = world[faces].reshape(-1, 3), coords[tfaces].reshape(-1, 2).astype(np.float64)
                uv[:, 1] = 1.0 - uv[:, 1]  # MuJoCo flips v on load; the OBJ convention has v up
                faces = np.arange(len(world)).reshape(-1, 3)
            else:
                repeat = tuple(float(v) for v in model.mat_texrepeat[int(model.geom_matid[g])])
                world, faces, uv = _projected_uv(world, faces, repeat)
        parts_v.append(world)
        parts_f.append(faces + offset)
        parts_uv.append(uv)
        offset += len(world)
    vertices, faces = np.concatenate(parts_v), np.concatenate(parts_f)
    uv = np.concatenate(parts_uv) if keep_uv else None
    image = _texture_image(model, tex_id) if keep_uv else None
    rgba = _geom_rgba(model, geoms[0])
    return vertices, faces, uv, image, rgba


def _geom_texture(model, geom: int) -> int:
    mat = int(model.geom_matid[geom])
    if mat < 0:
        return -1
    texid = model.mat_texid[mat]
    if np.ndim(texid) == 0:
        return int(texid)
    import mujoco  # MuJoCo >= 3.2: one slot per texture role; the base colour, else any

    rgb = int(texid[int(mujoco.mjtTextureRole.mjTEXROLE_RGB)])
    return rgb if rgb >= 0 else int(np.max(texid))


def _geom_rgba(model, geom: int) -> tuple[float, float, float, float]:
    mat = int(model.geom_matid[geom])
    rgba = model.mat_rgba[mat] if mat >= 0 else model.geom_rgba[geom]
    return (float(rgba[0]), float(rgba[1]), float(rgba[2]), 1.0)
