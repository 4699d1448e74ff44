"""Put a loaded mesh in simulator terms: z up, metres, resting on a stable face, bottom centre at the origin,
decimated for rendering, with a volume and a mass.

Scale, in order of trust: the sidecar's `size_m` (longest side), its `unit`, glTF's metres (when plausible), the
category's typical size (`CATEGORY_SIZE_M`), a unit guessed from the numbers, else `DEFAULT_SIZE_M`. The source of
the scale and every other choice is recorded in the catalog entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dataengine.sim.importer.load import LoadedMesh, MeshRejected, weld
from dataengine.sim.importer.sources import UNITS_M, SourceMeta

DEFAULT_SIZE_M = 0.10
PLAUSIBLE_SIZE_M = (0.02, 0.45)  # longest side of a tabletop object a Panda can handle
DEFAULT_DENSITY_KG_M3 = 400.0
MASS_RANGE_KG = (0.01, 1.5)
# typical longest side (m) and bulk density (kg/m^3) of household categories
CATEGORY_SIZE_M = {
    "apple": 0.08, "banana": 0.19, "bottle": 0.22, "bowl": 0.16, "box": 0.15, "bread": 0.18, "can": 0.12,
    "cereal": 0.2, "cup": 0.1, "fruit": 0.08, "lemon": 0.07, "milk": 0.2, "mug": 0.11, "shoe": 0.28,
    "toy": 0.1, "tool": 0.2,
}  # fmt: skip
CATEGORY_DENSITY_KG_M3 = {"bottle": 300.0, "bread": 150.0, "can": 600.0, "cereal": 150.0, "fruit": 900.0, "milk": 300.0}
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class Normalized:
    vertices: np.ndarray  # metres, z up, bottom centre at the origin
    faces: np.ndarray
    uv: np.ndarray | None
    mass_kg: float
    volume_m3: float
    notes: dict = field(default_factory=dict)  # how each choice was made (recorded in the catalog entry)


def _prior(table: dict, category: str) -> float | None:
    words = category.lower().split()
    for key in [category.lower(), *words]:
        if key in table:
            return table[key]
    return None


def scale_factor(longest: float, meta: SourceMeta, suffix: str, category: str) -> tuple[float, str]:
    """(metres per file unit, how it was decided)."""
    if meta.size_m:
        return meta.size_m / longest, "size_hint"
    if meta.unit:
        return UNITS_M[meta.unit], f"unit_{meta.unit}"
    low, high = PLAUSIBLE_SIZE_M
    if suffix in (".glb", ".gltf") and low <= longest <= high:
        return 1.0, "gltf_metres"
    if suffix == ".xml" and low <= longest <= high:  # MJCF: MuJoCo's unit is the metre, mesh `scale` applied
        return 1.0, "mjcf_metres"
    prior = _prior(CATEGORY_SIZE_M, category)
    if prior:
        return prior / longest, "category_prior"
    for unit in ("m", "cm", "mm"):
        if low <= longest * UNITS_M[unit] <= high:
            return UNITS_M[unit], f"unit_guess_{unit}"
    return DEFAULT_SIZE_M / longest, "default_size"


def _rotation_to(normal: np.ndarray) -> np.ndarray:
    """A rotation taking unit vector `normal` to -z (so that face rests on the table)."""
    target = np.array([0.0, 0.0, -1.0])
    v = np.cross(normal, target)
    c = float(np.dot(normal, target))
    if np.linalg.norm(v) < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def _resting_rotation(vertices: np.ndarray, com: np.ndarray) -> tuple[np.ndarray, str]:
    """Keep the authored orientation when its centre of mass lies over its base; else rest on the convex hull face
    with the largest stability margin (the face whose centre-of-mass projection is deepest inside it)."""
    from scipy.spatial import ConvexHull, Delaunay, QhullError

    height = float(np.ptp(vertices[:, 2]))
    base = vertices[vertices[:, 2] <= vertices[:, 2].min() + 0.01 * height][:, :2]
    try:
        if len(base) >= 3 and Delaunay(base).find_simplex(com[:2]) >= 0:
            return np.eye(3), "as_authored"
    except QhullError:
        pass  # a collinear base: not a resting face
    hull = ConvexHull(vertices)
    best, best_margin = None, -np.inf
    for eq in hull.equations:  # unit outward normal n, offset d: n.x + d = 0
        n, d = eq[:3], eq[3]
        rot = _rotation_to(n)
        pts = vertices @ rot.T
        face = pts[np.abs(vertices @ n + d) < 1e-6 + 1e-4 * height][:, :2]
        c = rot @ com
        if len(face) < 3:
            continue
        try:
            face_hull = ConvexHull(face)
        except QhullError:
            continue
        margin = float(np.min(-(face_hull.equations[:, :2] @ c[:2] + face_hull.equations[:, 2])))
        if margin > best_margin:
            best, best_margin = rot, margin
    return (best, "stable_face") if best is not None else (np.eye(3), "as_authored")


def _decimate(vertices, faces, uv, max_faces: int):
    import fast_simplification
    from scipy.spatial import cKDTree

    reduction = 1.0 - max_faces / len(faces)
    new_v, new_f = fast_simplification.simplify(
        vertices.astype(np.float32), faces.astype(np.int32), target_reduction=reduction
    )
    new_uv = None
    if uv is not None:  # each new vertex takes the UV of the nearest original vertex
        _, nearest = cKDTree(vertices).query(new_v)
        new_uv = uv[nearest]
    return np.asarray(new_v, dtype=np.float64), np.asarray(new_f, dtype=np.int64), new_uv


def volume_m3(vertices: np.ndarray, faces: np.ndarray) -> tuple[float, str]:
    """(volume, 'mesh' when the surface is closed, else 'convex_hull')."""
    import trimesh
    from scipy.spatial import ConvexHull

    closed = trimesh.Trimesh(*weld(vertices, faces), process=True)
    if closed.is_watertight and closed.is_winding_consistent and abs(closed.volume) > 0:
        return float(abs(closed.volume)), "mesh"
    return float(ConvexHull(vertices).volume), "convex_hull"


def normalize(
    mesh: LoadedMesh, meta: SourceMeta, suffix: str, category: str, *, max_size_m: float, max_visual_faces: int
) -> Normalized:
    vertices = mesh.vertices[:, :]
    faces, uv = mesh.faces, mesh.uv
    up = meta.up or ("y" if suffix in (".glb", ".gltf") else "z")
    notes: dict = {"up_axis": up}
    if up == "y":
        vertices = vertices @ Y_UP_TO_Z_UP.T
    used = np.unique(faces)
    longest = float(np.ptp(vertices[used], axis=0).max())
    factor, notes["scale_source"] = scale_factor(longest, meta, suffix, category)
    vertices = vertices * factor
    notes["scale"] = round(factor, 9)
    size = longest * factor
    if size > max_size_m:
        raise MeshRejected("too_large", f"longest side {size:.3g} m (limit {max_size_m} m); give a size hint")
    if len(faces) > max_visual_faces:
        vertices, faces, uv = _decimate(vertices, faces, uv, max_visual_faces)
        notes["decimated_from_faces"] = len(mesh.faces)
    volume, notes["volume_source"] = volume_m3(vertices, faces)
    com = vertices[np.unique(faces)].mean(axis=0)
    rotation, notes["rest_pose"] = _resting_rotation(vertices[np.unique(faces)], com)
    vertices = vertices @ rotation.T
    lo, hi = vertices[np.unique(faces)].min(axis=0), vertices[np.unique(faces)].max(axis=0)
    vertices = vertices - np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    if meta.mass_kg:
        mass, notes["mass_source"] = meta.mass_kg, "metadata"
    else:
        density = meta.density_kg_m3 or _prior(CATEGORY_DENSITY_KG_M3, category) or DEFAULT_DENSITY_KG_M3
        mass = float(np.clip(volume * density, *MASS_RANGE_KG))
        notes["mass_source"] = f"volume x {density:g} kg/m3"
    return Normalized(vertices, faces, uv, round(float(mass), 6), volume, notes)
