"""Collision geometry: convex pieces from CoACD's approximate convex decomposition, or one convex hull.

`coacd` (on the package index) keeps concave shapes concave for contact (a mug's opening, a banana's curve); the
`convex-hull` method is a fallback that is cheaper and cruder: the object collides as its hull.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Literal

import numpy as np

from dataengine.errors import require
from dataengine.sim.importer.load import weld

CollisionMethod = Literal["coacd", "convex-hull"]
Piece = tuple[np.ndarray, np.ndarray]  # (vertices, faces) of one convex piece
CONVEX_FILL = 0.97  # volume / hull volume above which a closed mesh counts as convex


def hull_fill(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume of the closed mesh over the volume of its hull (0 for an open mesh: unknown, decompose it)."""
    from dataengine.sim.importer.normalize import volume_m3

    volume, source = volume_m3(vertices, faces)
    if source != "mesh":
        return 0.0
    _, hull_volume = volume, convex_hull_volume(vertices[np.unique(faces)])
    return volume / hull_volume if hull_volume > 0 else 0.0


def convex_hull_volume(vertices: np.ndarray) -> float:
    from scipy.spatial import ConvexHull

    return float(ConvexHull(vertices).volume)


def convex_hull(vertices: np.ndarray) -> Piece:
    import trimesh

    hull = trimesh.convex.convex_hull(vertices)
    return np.asarray(hull.vertices, dtype=np.float64), np.asarray(hull.faces, dtype=np.int64)


def _coacd_here(vertices: np.ndarray, faces: np.ndarray, threshold: float, max_pieces: int) -> list[np.ndarray]:
    coacd = require("coacd", "sim", "Convex decomposition of imported meshes")
    coacd.set_log_level("error")
    parts = coacd.run_coacd(coacd.Mesh(vertices, faces), threshold=threshold, max_convex_hull=max_pieces, seed=0)
    return [np.asarray(v, dtype=np.float64) for v, _ in parts]


def _in_ray_worker() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def coacd_pieces(vertices: np.ndarray, faces: np.ndarray, threshold: float, max_pieces: int) -> list[Piece]:
    """CoACD's pieces. Importing coacd before `ray.init()` in one process aborts Ray's start (a C++ regex error
    between their bundled libraries), so outside a Ray worker CoACD runs in a child process."""
    # weld UV seams first: CoACD's manifold check sees a seam as a hole and remeshes the whole object
    welded = weld(vertices, faces)
    if _in_ray_worker():
        hulls = _coacd_here(*welded, threshold, max_pieces)
    else:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            hulls = pool.submit(_coacd_here, *welded, threshold, max_pieces).result()
    return [convex_hull(v) for v in hulls]


def collision_pieces(
    vertices: np.ndarray, faces: np.ndarray, method: CollisionMethod, *, threshold: float = 0.08, max_pieces: int = 16
) -> tuple[list[Piece], str]:
    """(convex pieces, the method that made them). A mesh that already fills its hull (within `CONVEX_FILL`) is
    its own hull: CoACD would spend seconds to return one piece."""
    if method == "coacd" and hull_fill(vertices, faces) >= CONVEX_FILL:
        return [convex_hull(vertices[np.unique(faces)])], "convex_already"
    if method == "coacd":
        return coacd_pieces(vertices, faces, threshold, max_pieces), "coacd"
    return [convex_hull(vertices[np.unique(faces)])], "convex_hull"
