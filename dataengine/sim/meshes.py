"""Meshes for assets: generated from parameters with trimesh (offline, deterministic) or read from a user's file.

Generators take sizes in metres. Every mesh is returned as (vertices (V, 3) float64, faces (F, 3) int32) in the
part's frame. Simulators use the convex hull of a mesh for collision, so generated shapes are convex or nearly so.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from dataengine.errors import InputError, require
from dataengine.records.layout import MeshSpec

MeshArrays = tuple[np.ndarray, np.ndarray]


def _trimesh():
    return require("trimesh", "sim", "Generating asset meshes")


def _cone(radius: float, height: float, sections: float = 24) -> object:
    return _trimesh().creation.cone(radius=radius, height=height, sections=int(sections))


def _frustum(radius_bottom: float, radius_top: float, height: float, sections: float = 24) -> object:
    """A truncated cone (cup, bucket, lampshade), bottom at z = 0."""
    angles = np.linspace(0, 2 * np.pi, int(sections), endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    bottom = np.hstack([ring * radius_bottom, np.zeros((len(ring), 1))])
    top = np.hstack([ring * radius_top, np.full((len(ring), 1), height)])
    return _trimesh().convex.convex_hull(np.vstack([bottom, top]))


def _prism(radius: float, height: float, sides: float = 6) -> object:
    """A regular prism (hexagonal nut, triangular block), bottom at z = 0."""
    return _frustum(radius, radius, height, sections=sides)


def _pyramid(half_base: float, height: float) -> object:
    base = [
        [-half_base, -half_base, 0],
        [half_base, -half_base, 0],
        [half_base, half_base, 0],
        [-half_base, half_base, 0],
    ]
    return _trimesh().convex.convex_hull(np.array([*base, [0, 0, height]], dtype=float))


def _icosphere(radius: float, subdivisions: float = 2) -> object:
    return _trimesh().creation.icosphere(subdivisions=int(subdivisions), radius=radius)


def _capsule(radius: float, height: float, count: float = 12) -> object:
    return _trimesh().creation.capsule(height=height, radius=radius, count=[int(count), int(count)])


def _wedge(half_x: float, half_y: float, height: float) -> object:
    """A ramp: rectangular base, one vertical side of full height."""
    pts = [
        [-half_x, -half_y, 0], [half_x, -half_y, 0], [half_x, half_y, 0], [-half_x, half_y, 0],
        [-half_x, -half_y, height], [-half_x, half_y, height],
    ]  # fmt: skip
    return _trimesh().convex.convex_hull(np.array(pts, dtype=float))


GENERATORS: dict[str, Callable[..., object]] = {
    "cone": _cone,
    "frustum": _frustum,
    "prism": _prism,
    "pyramid": _pyramid,
    "icosphere": _icosphere,
    "capsule": _capsule,
    "wedge": _wedge,
}


@lru_cache(maxsize=256)
def _generated(generator: str, params_key: tuple[tuple[str, float], ...]) -> MeshArrays:
    if generator not in GENERATORS:
        raise InputError(f"unknown mesh generator {generator!r}; valid: {sorted(GENERATORS)}")
    try:
        mesh = GENERATORS[generator](**dict(params_key))
    except TypeError as exc:
        raise InputError(f"mesh generator {generator!r}: bad parameters {dict(params_key)}: {exc}") from exc
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int32)


@lru_cache(maxsize=64)
def _from_file(path: str) -> MeshArrays:
    if not Path(path).is_file():
        raise InputError(f"mesh file {path} does not exist")
    mesh = _trimesh().load(path, force="mesh")
    if len(mesh.faces) == 0:
        raise InputError(f"mesh file {path} holds no triangles")
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int32)


def resolve_path(file: str, base_dir: str | Path | None = None) -> Path:
    """An asset file (mesh, texture) as an absolute path: relative ones are resolved against `base_dir`."""
    path = Path(file)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path.resolve()


def mesh_arrays(spec: MeshSpec, base_dir: str | Path | None = None) -> MeshArrays:
    """(vertices, faces) of a mesh spec, scaled. Files are resolved against `base_dir` when relative."""
    if spec.generator:
        vertices, faces = _generated(spec.generator, tuple(sorted(spec.params.items())))
    elif spec.file:
        vertices, faces = _from_file(str(resolve_path(spec.file, base_dir)))
    else:
        raise InputError("a mesh needs either a 'generator' or a 'file'")
    return vertices * np.asarray(spec.scale, dtype=np.float64), faces


@lru_cache(maxsize=64)
def _textured_from_file(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not Path(path).is_file():
        raise InputError(f"mesh file {path} does not exist")
    mesh = _trimesh().load(path, force="mesh", process=False)
    uv = getattr(mesh.visual, "uv", None)
    if uv is None or len(uv) != len(mesh.vertices):
        raise InputError(f"mesh file {path} has a texture in its catalog entry but no per-vertex UVs")
    return (
        np.asarray(mesh.vertices, dtype=np.float64),
        np.asarray(mesh.faces, dtype=np.int32),
        np.asarray(uv, dtype=np.float64),
    )


def textured_mesh_arrays(spec: MeshSpec, base_dir: str | Path | None = None) -> tuple[np.ndarray, ...]:
    """(vertices, faces, uv (V, 2)) of a file mesh with a texture, scaled, vertices in the file's order."""
    if not spec.file:
        raise InputError("a textured mesh needs a 'file' with UVs")
    vertices, faces, uv = _textured_from_file(str(resolve_path(spec.file, base_dir)))
    return vertices * np.asarray(spec.scale, dtype=np.float64), faces, uv


def mesh_bounds(spec: MeshSpec, base_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(min corner (3,), max corner (3,)) of the scaled mesh. A file's corners are cached apart from its arrays
    (`_file_bounds`, six numbers each), so sampling from a catalog of thousands of mesh files does not reload them
    every attempt once they no longer fit `_from_file`'s cache; scaling per axis is monotonic, so the corners are
    the same numbers as those of the scaled vertices."""
    if not spec.file:
        vertices, _ = mesh_arrays(spec, base_dir)
        return vertices.min(axis=0), vertices.max(axis=0)
    lo, hi = _file_bounds(str(resolve_path(spec.file, base_dir)))
    scale = np.asarray(spec.scale, dtype=np.float64)
    a, b = lo * scale, hi * scale
    return np.minimum(a, b), np.maximum(a, b)


@lru_cache(maxsize=65536)
def _file_bounds(path: str) -> tuple[np.ndarray, np.ndarray]:
    vertices, _ = _from_file(path)
    return vertices.min(axis=0), vertices.max(axis=0)


def mesh_volume_m3(spec: MeshSpec, base_dir: str | Path | None = None) -> float:
    """Volume of the mesh's convex hull (what the simulator collides with)."""
    from scipy.spatial import ConvexHull

    vertices, _ = mesh_arrays(spec, base_dir)
    return float(ConvexHull(vertices).volume)
