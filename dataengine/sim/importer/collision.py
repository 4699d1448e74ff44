"""Collision geometry: convex pieces from CoACD's approximate convex decomposition, or one convex hull.

`coacd` (on the package index) keeps concave shapes concave for contact (a mug's opening, a banana's curve); the
`convex-hull` method is a fallback that is cheaper and cruder: the object collides as its hull.
"""

from __future__ import annotations

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


def coacd_pieces(vertices: np.ndarray, faces: np.ndarray, threshold: float, max_pieces: int) -> list[Piece]:
    coacd = require("coacd", "sim", "Convex decomposition of imported meshes")
    coacd.set_log_level("error")
    # weld UV seams first: CoACD's manifold check sees a seam as a hole and remeshes the whole object
    mesh = coacd.Mesh(*weld(vertices, faces))
    parts = coacd.run_coacd(mesh, threshold=threshold, max_convex_hull=max_pieces, seed=0)
    return [convex_hull(np.asarray(v, dtype=np.float64)) for v, _ in parts]


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
