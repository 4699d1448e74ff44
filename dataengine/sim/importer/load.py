"""Read one mesh file (OBJ+MTL, STL, GLB/glTF, PLY with trimesh; MuJoCo object MJCF with `mujoco`, see `mjcf`)
and reject what cannot become a sim object.

Rejections raise `MeshRejected` with a snake_case reason: `unreadable`, `empty`, `nan_vertices`, `degenerate`,
`too_many_faces`, `non_manifold` (an edge shared by more than two triangles), `no_mesh_geoms` (an MJCF file with
primitives only). Open (non-watertight) meshes are
kept: their volume comes from the convex hull (see `normalize`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataengine.errors import require


class MeshRejected(Exception):
    """A mesh that cannot be imported; `reason` is a snake_case key, the message says why in words."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class LoadedMesh:
    vertices: np.ndarray  # (V, 3) float64, in the file's units and axes
    faces: np.ndarray  # (F, 3) int64
    uv: np.ndarray | None  # (V, 2) per-vertex texture coordinates when textured
    texture: object | None  # PIL image of the base colour when textured
    rgba: tuple[float, float, float, float]  # the material's colour (or the texture's mean colour)


def _material_image_and_rgba(visual) -> tuple[object | None, tuple[float, float, float, float] | None]:
    material = getattr(visual, "material", None)
    if material is None:
        return None, None
    image = getattr(material, "image", None) or getattr(material, "baseColorTexture", None)
    factor = getattr(material, "baseColorFactor", None)
    if factor is None:
        factor = getattr(material, "diffuse", None)
    rgba = tuple(float(c) / 255.0 for c in np.asarray(factor)[:4]) if factor is not None else None
    return image, rgba


def _to_rgba(color) -> tuple[float, float, float, float]:
    c = [float(v) for v in color]
    c = c + [1.0] * (4 - len(c))
    return (c[0], c[1], c[2], 1.0)


def load_mesh(path, max_faces: int) -> LoadedMesh:
    from dataengine.sim.importer.mjcf import MJCF_SUFFIX, NoMeshGeoms, load_mjcf

    if str(path).lower().endswith(MJCF_SUFFIX):
        try:
            vertices, faces, uv, texture, rgba = load_mjcf(path)
        except NoMeshGeoms as exc:
            raise MeshRejected("no_mesh_geoms", str(exc)) from exc
        except ValueError as exc:
            raise MeshRejected("unreadable", str(exc)) from exc
        _check(vertices, faces, max_faces)
        if texture is not None:
            rgba = _to_rgba(np.asarray(texture, dtype=np.float64).reshape(-1, 3).mean(axis=0) / 255.0)
        return LoadedMesh(vertices=vertices, faces=faces, uv=uv, texture=texture, rgba=rgba)
    trimesh = require("trimesh", "sim", "Importing meshes")
    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise MeshRejected("unreadable", f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise MeshRejected("empty", "no triangles")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    _check(vertices, faces, max_faces)
    texture, rgba = None, None
    uv = getattr(mesh.visual, "uv", None)
    if getattr(mesh.visual, "kind", None) == "texture":
        texture, rgba = _material_image_and_rgba(mesh.visual)
    elif getattr(mesh.visual, "kind", None) == "vertex":
        rgba = _to_rgba(np.asarray(mesh.visual.vertex_colors, dtype=np.float64).mean(axis=0) / 255.0)
    elif getattr(mesh.visual, "kind", None) == "face":
        rgba = _to_rgba(np.asarray(mesh.visual.face_colors, dtype=np.float64).mean(axis=0) / 255.0)
    if texture is not None and (uv is None or len(uv) != len(vertices)):
        texture = None  # a texture without usable UVs cannot be mapped; the colour stays
    if texture is not None:
        texture = texture.convert("RGB")
        rgba = _to_rgba(np.asarray(texture, dtype=np.float64).reshape(-1, 3).mean(axis=0) / 255.0)
    return LoadedMesh(
        vertices=vertices,
        faces=faces,
        uv=np.asarray(uv, dtype=np.float64) if texture is not None else None,
        texture=texture,
        rgba=rgba or (0.7, 0.7, 0.7, 1.0),
    )


def _check(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> None:
    if len(faces) == 0 or len(vertices) == 0:
        raise MeshRejected("empty", "no triangles")
    if not np.all(np.isfinite(vertices)):
        raise MeshRejected("nan_vertices", f"{int((~np.isfinite(vertices)).any(axis=1).sum())} vertices are NaN/inf")
    if len(faces) > max_faces:
        raise MeshRejected("too_many_faces", f"{len(faces)} triangles (limit {max_faces})")
    extent = np.ptp(vertices[np.unique(faces)], axis=0)
    if np.sort(extent)[1] <= 0:
        raise MeshRejected("degenerate", f"extent {extent.tolist()}: flat or a line")
    _check_manifold(vertices, faces)


def weld(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique positions, faces re-indexed into them): vertices split at UV seams become one again."""
    unique, inverse = np.unique(np.round(vertices, 9), axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)[faces]


def _check_manifold(vertices: np.ndarray, faces: np.ndarray) -> None:
    _, welded = weld(vertices, faces)
    edges = np.sort(np.concatenate([welded[:, [0, 1]], welded[:, [1, 2]], welded[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    shared = int((counts > 2).sum())
    if shared:
        raise MeshRejected("non_manifold", f"{shared} edges are shared by more than two triangles")
