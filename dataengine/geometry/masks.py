"""Binary masks and COCO polygons: decoding, bounding boxes, inner points, point sampling, convex-hull silhouettes.

For converters (RefCOCO, RoboRefIt, Where2Place) and the simulator's labels; pixel conventions as in `geometry.image`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain

import numpy as np

from dataengine.geometry.image import COORD_DECIMALS, round_coords

__all__ = [
    "INNER_POINT_CLEARANCE_PX",
    "INNER_POINT_GRID",
    "coco_segmentation_to_mask",
    "convex_hull_mask",
    "mask_bbox_xyxy",
    "mask_crop_inner_point",
    "mask_inner_point",
    "point_in_mask",
    "polygon_inner_points",
    "sample_points_in_mask",
]

# --- masks -------------------------------------------------------------------------------------------------


def coco_segmentation_to_mask(segmentation, height: int, width: int) -> np.ndarray:
    """COCO polygons or RLE (compressed or not) -> boolean mask (H, W), via pycocotools."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if len(p) >= 6]
        if not polygons:
            return np.zeros((height, width), dtype=bool)
        rles = mask_utils.frPyObjects(polygons, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(bool)


def mask_inner_point(mask: np.ndarray) -> list[float] | None:
    """The point deepest inside a mask (largest distance to its border), as continuous pixel coordinates of the
    pixel centre. Deterministic: ties go to the first pixel in raster order. None for an empty mask."""
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    padded = np.pad(mask, 1)  # so pixels on the image edge count as near the border
    dist = distance_transform_edt(padded)[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return round_coords([col + 0.5, row + 0.5])


def sample_points_in_mask(mask: np.ndarray, count: int, seed: int) -> list[list[float]]:
    """`count` distinct pixel centres drawn uniformly from a mask with a fixed seed (fewer if the mask is smaller)."""
    rows, cols = np.nonzero(np.asarray(mask, dtype=bool))
    if rows.size == 0:
        return []
    rng = np.random.default_rng(seed)
    picks = rng.choice(rows.size, size=min(count, rows.size), replace=False)
    return [round_coords([cols[i] + 0.5, rows[i] + 0.5]) for i in sorted(picks.tolist())]


def mask_bbox_xyxy(mask: np.ndarray) -> list[float] | None:
    """Tight continuous box around a mask's pixels: [c_min, r_min, c_max + 1, r_max + 1]."""
    rows = np.any(mask, axis=1)
    cols = np.any(mask, axis=0)
    if not rows.any():
        return None
    r0, r1 = np.nonzero(rows)[0][[0, -1]]
    c0, c1 = np.nonzero(cols)[0][[0, -1]]
    return [float(c0), float(r0), float(c1 + 1), float(r1 + 1)]


def point_in_mask(point_xy: Sequence[float], mask: np.ndarray) -> bool:
    """Whether a continuous point falls on a mask pixel."""
    col, row = math.floor(point_xy[0]), math.floor(point_xy[1])
    h, w = mask.shape[:2]
    return 0 <= row < h and 0 <= col < w and bool(mask[row, col])


def mask_crop_inner_point(mask: np.ndarray, box_xyxy: Sequence[float] | None = None) -> list[float] | None:
    """`mask_inner_point` computed on the mask's bounding crop only (same result, far less work on big images).
    `box_xyxy` (continuous pixels) may give the crop; it must contain every mask pixel."""
    mask = np.asarray(mask, dtype=bool)
    box = box_xyxy if box_xyxy is not None else mask_bbox_xyxy(mask)
    if box is None:
        return None
    c0, r0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    c1, r1 = min(mask.shape[1], math.ceil(box[2])), min(mask.shape[0], math.ceil(box[3]))
    point = mask_inner_point(mask[r0:r1, c0:c1])
    return None if point is None else round_coords([point[0] + c0, point[1] + r0])


# --- inner points of COCO polygons, batched ----------------------------------------------------------------

INNER_POINT_GRID = 12  # coarse cells along an object's longer side
INNER_POINT_CLEARANCE_PX = 1.5  # a candidate this far inside every polygon edge is inside the pycocotools mask


def polygon_inner_points(objects: Sequence[tuple[list, int, int]], grid: int = INNER_POINT_GRID):
    """Inner points of many COCO polygon segmentations at once: `objects` holds (segmentation, height, width)
    with segmentation a list of flat [x1, y1, x2, y2, ...] polygons in pixels of a height x width image.

    Returns, per object, a pixel centre [x, y] inside its pycocotools mask near the deepest spot, or None when
    the polygons cover no pixel. Each object is rasterized by pycocotools on a coarse grid (at most `grid` cells
    along its longer side); the cell deepest inside (alternating cross and square erosions, ties broken towards
    the centre of the deepest cells) gives a candidate, kept when the grid is the pixel grid (small objects) or
    when it lies inside the polygons at least INNER_POINT_CLEARANCE_PX from every edge. Other objects fall back to
    `mask_inner_point` on the exact mask crop. Batching keeps numpy's per-call overhead off the per-object cost;
    each object's result does not depend on the others.
    """
    from pycocotools import mask as mask_utils

    batch = _PolygonBatch(objects, grid)
    results: list[list[float] | None] = [None] * len(objects)
    if not batch.polygons:
        return results
    canvas = grid + 1
    coarse_polys = batch.scaled_polygons()
    decoded = mask_utils.decode(mask_utils.frPyObjects(coarse_polys, canvas, canvas))  # (canvas, canvas, P)
    coarse = np.maximum.reduceat(decoded, batch.object_first_polygon, axis=2).transpose(2, 0, 1).astype(bool)
    centres = np.arange(canvas) + 0.5  # cells whose centre falls outside the image crop do not count
    coarse &= (centres[None, :] * batch.scale[:, None] < (batch.y1 - batch.y0)[:, None])[:, :, None]
    coarse &= (centres[None, :] * batch.scale[:, None] < (batch.x1 - batch.x0)[:, None])[:, None, :]
    rows, cols, has_area = _deepest_cells(coarse)
    px = np.minimum(np.floor(batch.x0 + (cols + 0.5) * batch.scale), batch.x1 - 1) + 0.5
    py = np.minimum(np.floor(batch.y0 + (rows + 0.5) * batch.scale), batch.y1 - 1) + 0.5
    inside, clearance = batch.inside_clearance(px, py)
    accept = has_area & ((batch.scale == 1.0) | (inside & (clearance >= INNER_POINT_CLEARANCE_PX)))
    rounded = np.stack([px, py], axis=1).round(COORD_DECIMALS).tolist()
    for n, obj in enumerate(batch.object_index):
        if accept[n]:
            results[obj] = rounded[n]
        else:
            results[obj] = _exact_polygon_inner_point(batch.object_polygons(n), *batch.crop(n))
    return results


class _PolygonBatch:
    """The valid polygons of many objects as flat vertex arrays, with each object's crop and coarse scale."""

    def __init__(self, objects, grid: int) -> None:
        polygons, owners, sizes = [], [], []
        for obj, (segmentation, height, width) in enumerate(objects):
            polys = [p for p in segmentation if _is_polygon(p)]
            polygons.extend(polys)
            owners.extend([obj] * len(polys))
            sizes.append((width, height))
        self.polygons, self.object_index = [], []
        if not polygons:
            return
        vx, vy, n_vertices, first_vertex, first_polygon, polygon_object = _flatten(polygons, owners)
        objects_present = np.asarray(owners)[first_polygon]
        width, height = np.asarray(sizes, dtype=np.float64)[objects_present].T
        x0 = np.maximum(0.0, np.floor(np.minimum.reduceat(vx, first_vertex[first_polygon])))
        y0 = np.maximum(0.0, np.floor(np.minimum.reduceat(vy, first_vertex[first_polygon])))
        x1 = np.minimum(width, np.ceil(np.maximum.reduceat(vx, first_vertex[first_polygon])) + 1)
        y1 = np.minimum(height, np.ceil(np.maximum.reduceat(vy, first_vertex[first_polygon])) + 1)
        keep = (x1 > x0) & (y1 > y0)  # objects entirely outside their image have no pixel
        if not keep.all():
            kept_polygons = keep[polygon_object]
            polygons = [p for p, k in zip(polygons, kept_polygons, strict=True) if k]
            owners = [o for o, k in zip(owners, kept_polygons, strict=True) if k]
            if not polygons:
                return
            vx, vy, n_vertices, first_vertex, first_polygon, polygon_object = _flatten(polygons, owners)
            x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
            objects_present = objects_present[keep]
        self.polygons = polygons
        self.object_index = objects_present.tolist()
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.scale = np.maximum(1.0, np.maximum(x1 - x0, y1 - y0) / grid)
        self.vx, self.vy = vx, vy
        self.polygon_object = polygon_object
        self.polygon_first_vertex = first_vertex
        self.object_first_polygon = first_polygon
        self.object_first_vertex = first_vertex[first_polygon]
        self.vertex_object = np.repeat(polygon_object, n_vertices)
        following = np.arange(1, vx.size + 1)
        following[first_vertex + n_vertices - 1] = first_vertex  # close each polygon
        self.following = following

    def scaled_polygons(self) -> list[np.ndarray]:
        """Polygons in coarse-grid units: (v - crop origin) / scale, one list per polygon for pycocotools."""
        obj = self.vertex_object
        flat = np.empty(self.vx.size * 2)
        flat[0::2] = (self.vx - self.x0[obj]) / self.scale[obj]
        flat[1::2] = (self.vy - self.y0[obj]) / self.scale[obj]
        return np.split(flat, self.polygon_first_vertex[1:] * 2)  # pycocotools takes 1-D arrays as polygons

    def inside_clearance(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per object: whether (px, py) is inside any of its polygons (even-odd rule) and its distance to the
        nearest edge."""
        ax, ay = self.vx, self.vy
        bx, by = ax[self.following], ay[self.following]
        x, y = px[self.vertex_object], py[self.vertex_object]
        with np.errstate(divide="ignore", invalid="ignore"):
            crosses = ((ay > y) != (by > y)) & (x < ax + (y - ay) * (bx - ax) / (by - ay))
            length2 = (bx - ax) ** 2 + (by - ay) ** 2
            t = np.clip(np.where(length2 > 0, ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length2, 0.0), 0, 1)
        dist2 = (ax + t * (bx - ax) - x) ** 2 + (ay + t * (by - ay) - y) ** 2
        inside_polygon = np.add.reduceat(crosses.astype(np.int64), self.polygon_first_vertex) % 2 == 1
        inside = np.maximum.reduceat(inside_polygon, self.object_first_polygon)
        return inside, np.sqrt(np.minimum.reduceat(dist2, self.object_first_vertex))

    def object_polygons(self, n: int) -> list[list[float]]:
        first = int(self.object_first_polygon[n])
        end = int(self.object_first_polygon[n + 1]) if n + 1 < len(self.object_first_polygon) else len(self.polygons)
        return self.polygons[first:end]

    def crop(self, n: int) -> tuple[int, int, int, int]:
        return int(self.x0[n]), int(self.y0[n]), int(self.x1[n]), int(self.y1[n])


def _is_polygon(poly) -> bool:
    """A flat list of at least 3 finite (x, y) pairs."""
    if not isinstance(poly, list | tuple) or len(poly) < 6 or len(poly) % 2:
        return False
    try:
        return math.isfinite(sum(poly))  # one C-level pass; a non-number raises TypeError
    except TypeError:
        return False


def _flatten(polygons: list[list[float]], owners: list[int]):
    """Flat vertex arrays of polygons grouped by owner: (vx, vy, vertices per polygon, first vertex of each
    polygon, first polygon of each owner, owner number (0..) of each polygon)."""
    n_vertices = np.fromiter(map(len, polygons), dtype=np.int64, count=len(polygons)) // 2
    flat = np.fromiter(chain.from_iterable(polygons), dtype=np.float64, count=int(n_vertices.sum()) * 2)
    first_vertex = np.r_[0, np.cumsum(n_vertices)[:-1]]
    owner_array = np.asarray(owners)
    first_polygon = np.flatnonzero(np.r_[True, owner_array[1:] != owner_array[:-1]])
    polygon_object = np.cumsum(np.r_[True, owner_array[1:] != owner_array[:-1]]) - 1
    return flat[0::2], flat[1::2], n_vertices, first_vertex, first_polygon, polygon_object


def _deepest_cells(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, has_area) of the deepest cell of each (H, W) mask in a stack."""
    current = np.pad(masks, ((0, 0), (1, 1), (1, 1)))  # the zero border never changes
    depth = np.zeros(current.shape, dtype=np.uint8)
    inner = current[:, 1:-1, 1:-1]
    level = 0
    while current.any():
        depth += current
        core = inner & current[:, :-2, 1:-1]
        core &= current[:, 2:, 1:-1]
        core &= current[:, 1:-1, :-2]
        core &= current[:, 1:-1, 2:]
        if level % 2:  # alternate cross and square erosions: an octagonal distance, close to Euclidean
            core &= current[:, :-2, :-2]
            core &= current[:, :-2, 2:]
            core &= current[:, 2:, :-2]
            core &= current[:, 2:, 2:]
        inner[...] = core
        level += 1
    flat = depth.reshape(depth.shape[0], -1)
    top = flat.max(axis=1)
    deepest = (flat == top[:, None]).astype(np.float32)
    grid_rows, grid_cols = np.divmod(np.arange(flat.shape[1]), depth.shape[2])
    count = deepest.sum(axis=1)
    centre_r = deepest @ grid_rows.astype(np.float32) / count
    centre_c = deepest @ grid_cols.astype(np.float32) / count
    dist2 = np.square(grid_rows[None].astype(np.float32) - centre_r[:, None])
    dist2 += np.square(grid_cols[None].astype(np.float32) - centre_c[:, None])
    dist2[deepest == 0] = np.inf
    best = dist2.argmin(axis=1)
    return grid_rows[best] - 1, grid_cols[best] - 1, top > 0


def _exact_polygon_inner_point(polygons: list[list[float]], x0: int, y0: int, x1: int, y1: int):
    """`mask_inner_point` on the exact pycocotools raster of polygons, computed on the crop [x0, x1) x [y0, y1)."""
    shifted = [[v - (x0 if i % 2 == 0 else y0) for i, v in enumerate(p)] for p in polygons]
    point = mask_inner_point(coco_segmentation_to_mask(shifted, y1 - y0, x1 - x0))
    return None if point is None else round_coords([point[0] + x0, point[1] + y0])


def convex_hull_mask(points_xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boolean (H, W) mask of the pixels whose centres fall inside the convex hull of continuous pixel points
    (an amodal silhouette for convex shapes). Empty when fewer than 3 finite points or a degenerate hull."""
    from PIL import Image, ImageDraw
    from scipy.spatial import ConvexHull, QhullError

    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    mask = Image.new("1", (width, height), 0)
    if len(pts) >= 3:
        try:
            hull = pts[ConvexHull(pts).vertices]
        except QhullError:
            hull = None
        if hull is not None:
            # PIL puts pixel centres at integer coordinates; ours are at +0.5
            ImageDraw.Draw(mask).polygon([(float(x) - 0.5, float(y) - 0.5) for x, y in hull], fill=1)
    return np.asarray(mask, dtype=bool)
