"""The one home of coordinate conversions.

Conventions (see docs/architecture.md):
- image coordinates are continuous pixels: origin at the top-left corner of the top-left pixel, x right, y down;
  pixel (row r, col c) covers [c, c+1) x [r, r+1) and its centre is (c + 0.5, r + 0.5); a full-image box is
  [0, 0, W, H];
- boxes are `xyxy` unless a name says `xywh`; stored values are rounded to 2 decimals;
- `*_norm` values are fractions of the image size (0..1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain

import numpy as np

COORD_DECIMALS = 2


def round_coord(value: float) -> float:
    """Round a pixel coordinate to the stored precision (2 decimals)."""
    return round(float(value), COORD_DECIMALS)


def round_coords(values: Sequence[float]) -> list[float]:
    return [round(float(v), COORD_DECIMALS) for v in values]


def is_finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def xywh_to_xyxy(box_xywh: Sequence[float]) -> list[float]:
    """COCO [x, y, w, h] -> [x1, y1, x2, y2] (continuous pixels)."""
    x, y, w, h = (float(v) for v in box_xywh)
    return [x, y, x + w, y + h]


def xyxy_to_xywh(box_xyxy: Sequence[float]) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    return [x1, y1, x2 - x1, y2 - y1]


def clip_box_xyxy(box_xyxy: Sequence[float], width: float, height: float) -> tuple[list[float] | None, bool]:
    """Clip a box to the image. Returns (clipped box rounded to 2 decimals, or None if it leaves no area; whether
    clipping changed it)."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    if x1 > x2:
        x1, x2 = x2, x1
    if y1 > y2:
        y1, y2 = y2, y1
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    changed = (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2)
    box = round_coords([cx1, cy1, cx2, cy2])
    if not (box[0] < box[2] and box[1] < box[3]):
        return None, changed
    return box, changed


def box_inside(box_xyxy: Sequence[float], width: float, height: float) -> bool:
    """True when the box is finite, well ordered and inside [0, W] x [0, H]."""
    x1, y1, x2, y2 = box_xyxy
    return is_finite(box_xyxy) and 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def point_inside(point_xy: Sequence[float], width: float, height: float) -> bool:
    x, y = point_xy
    return is_finite(point_xy) and 0 <= x <= width and 0 <= y <= height


def clip_point(point_xy: Sequence[float], width: float, height: float) -> list[float]:
    x, y = point_xy
    return round_coords([min(max(float(x), 0.0), width), min(max(float(y), 0.0), height)])


def box_iou(a_xyxy: Sequence[float], b_xyxy: Sequence[float]) -> float:
    """Intersection over union of two xyxy boxes (0 when either has no area)."""
    ix1, iy1 = max(a_xyxy[0], b_xyxy[0]), max(a_xyxy[1], b_xyxy[1])
    ix2, iy2 = min(a_xyxy[2], b_xyxy[2]), min(a_xyxy[3], b_xyxy[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    area_a = max(0.0, a_xyxy[2] - a_xyxy[0]) * max(0.0, a_xyxy[3] - a_xyxy[1])
    area_b = max(0.0, b_xyxy[2] - b_xyxy[0]) * max(0.0, b_xyxy[3] - b_xyxy[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def to_norm(points_xy_px: Sequence[Sequence[float]], width: float, height: float) -> list[list[float]]:
    """Pixel points -> fractions of the image size."""
    return [[float(x) / width, float(y) / height] for x, y in points_xy_px]


def from_norm(points_xy_norm: Sequence[Sequence[float]], width: float, height: float) -> list[list[float]]:
    """Fractions of the image size -> pixel points (not rounded)."""
    return [[float(x) * width, float(y) * height] for x, y in points_xy_norm]


def scale_xy(values: Sequence[float], scale_x: float, scale_y: float) -> list[float]:
    """Scale a flat [x, y, x, y, ...] list (a box or a point) by per-axis factors."""
    return [float(v) * (scale_x if i % 2 == 0 else scale_y) for i, v in enumerate(values)]


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


# --- cameras -----------------------------------------------------------------------------------------------


def project_points_cv(
    points_world: np.ndarray, intrinsics_k: np.ndarray, transform_world_to_cam_cv: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project (N, 3) world points with a 3x3 K and a 4x4 world->camera transform in the OpenCV camera frame
    (x right, y down, z forward). Returns ((N, 2) continuous pixel coordinates, (N,) depth along +z)."""
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    homo = np.concatenate([pts, np.ones((pts.shape[0], 1))], axis=1)
    cam = (np.asarray(transform_world_to_cam_cv, dtype=np.float64) @ homo.T).T[:, :3]
    depth = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (np.asarray(intrinsics_k, dtype=np.float64) @ cam.T).T
        pixels = uv[:, :2] / uv[:, 2:3]
    return pixels, depth


# --- resized frames (model answer formats) -----------------------------------------------------------------

QWEN_FACTOR = 28  # patch 14 x merge 2
QWEN_MIN_PIXELS = 4 * 28 * 28  # 3136, the released Qwen2.5-VL processor
QWEN_MAX_PIXELS = 16384 * 28 * 28  # 12845056
QWEN_MAX_ASPECT_RATIO = 200


def smart_resize(
    height: int,
    width: int,
    factor: int = QWEN_FACTOR,
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
) -> tuple[int, int]:
    """Qwen2.5-VL's processor size for an image: (resized_height, resized_width), both multiples of `factor`,
    their product within [min_pixels, max_pixels], aspect ratio kept as closely as possible.

    Same arithmetic as `qwen_vl_utils.smart_resize` (a test compares them). Where the reference would return a
    zero side (an elongated image under a small `max_pixels`, e.g. 100x7000 with 50176), this raises instead.
    """
    from dataengine.errors import InputError

    if min(height, width) <= 0 or factor <= 0:
        raise InputError(f"smart_resize needs positive sizes and factor, got {height}x{width}, factor {factor}")
    if max_pixels < min_pixels:
        raise InputError(f"max_pixels ({max_pixels}) must be >= min_pixels ({min_pixels})")
    ratio = max(height, width) / min(height, width)
    if ratio > QWEN_MAX_ASPECT_RATIO:
        raise InputError(f"aspect ratio {ratio:.1f} of {width}x{height} exceeds {QWEN_MAX_ASPECT_RATIO}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    if h_bar <= 0 or w_bar <= 0:
        raise InputError(
            f"a {width}x{height} image cannot be resized to multiples of {factor} within {max_pixels} pixels"
        )
    return h_bar, w_bar


def resize_scale(width: float, height: float, new_width: float, new_height: float) -> tuple[float, float]:
    """Per-axis factors (scale_x, scale_y) that map pixels of a width x height image into a resized frame."""
    return new_width / width, new_height / height


def to_frame(values_xy_px: Sequence[float], width: float, height: float, frame_w: float, frame_h: float):
    """Flat [x, y, ...] pixels of a width x height image -> the same positions in a frame_w x frame_h frame
    (a resized image, 1000 x 1000 for 0..1000 styles, 100 x 100 for percent, 1 x 1 for fractions)."""
    return scale_xy(values_xy_px, frame_w / width, frame_h / height)


def from_frame(values_xy_frame: Sequence[float], width: float, height: float, frame_w: float, frame_h: float):
    """Inverse of `to_frame`: frame units -> pixels of the width x height image (not rounded, not clipped)."""
    return scale_xy(values_xy_frame, width / frame_w, height / frame_h)


def to_bins(values_xy_px: Sequence[float], width: float, height: float, bins: int = 1000) -> list[int]:
    """Florence-2 quantization: bin = floor(v / size * bins), clamped to 0..bins-1, per axis."""
    out = []
    for i, v in enumerate(values_xy_px):
        size = width if i % 2 == 0 else height
        out.append(min(max(math.floor(float(v) / size * bins), 0), bins - 1))
    return out


def from_bins(bins_xy: Sequence[float], width: float, height: float, bins: int = 1000) -> list[float]:
    """Florence-2 dequantization: v = (bin + 0.5) * size / bins, per axis (bin centres)."""
    return [(float(b) + 0.5) * (width if i % 2 == 0 else height) / bins for i, b in enumerate(bins_xy)]


# --- rigid transforms (quaternions are (w, x, y, z); rotations act on column vectors) ------------------------


def quat_wxyz_to_matrix(quat_wxyz: Sequence[float]) -> np.ndarray:
    """Unit quaternion (w, x, y, z) -> 3x3 rotation matrix."""
    from scipy.spatial.transform import Rotation

    w, x, y, z = (float(v) for v in quat_wxyz)
    return Rotation.from_quat([x, y, z, w]).as_matrix()


def matrix_to_quat_wxyz(rotation: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(np.asarray(rotation, dtype=np.float64)).as_quat()
    quat = np.array([w, x, y, z])
    return -quat if quat[0] < 0 else quat


def yaw_to_quat_wxyz(yaw_rad: float) -> np.ndarray:
    """Rotation about the world z axis."""
    return np.array([math.cos(yaw_rad / 2), 0.0, 0.0, math.sin(yaw_rad / 2)])


def quat_multiply_wxyz(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_angle_between_rad(a: Sequence[float], b: Sequence[float]) -> float:
    """Smallest rotation angle taking orientation a to orientation b."""
    dot = abs(float(np.dot(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))))
    return 2.0 * math.acos(min(1.0, dot))


def pose_to_matrix(pos: Sequence[float], quat_wxyz: Sequence[float]) -> np.ndarray:
    """(position, orientation) -> 4x4 homogeneous transform (child frame -> parent frame)."""
    transform = np.eye(4)
    transform[:3, :3] = quat_wxyz_to_matrix(quat_wxyz)
    transform[:3, 3] = np.asarray(pos, dtype=np.float64)
    return transform


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return pts @ np.asarray(transform)[:3, :3].T + np.asarray(transform)[:3, 3]


def look_at_quat_gl(eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0, 0, 1)) -> np.ndarray:
    """Orientation (w, x, y, z) of an OpenGL-convention camera (looks along its -z, y up) at `eye` facing `target`."""
    eye_v, target_v, up_v = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    back = eye_v - target_v
    back /= np.linalg.norm(back)
    right = np.cross(up_v, back)
    if np.linalg.norm(right) < 1e-9:  # looking straight along `up`
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    return matrix_to_quat_wxyz(np.stack([right, cam_up, back], axis=1))


GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # flips y and z: OpenGL camera axes -> OpenCV camera axes


def gl_camera_to_cv(T_cam_gl_to_world: np.ndarray) -> np.ndarray:
    """Camera->world transform of an OpenGL-convention camera -> the same camera in the OpenCV convention."""
    return np.asarray(T_cam_gl_to_world, dtype=np.float64) @ GL_TO_CV


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """Pinhole K for a vertical field of view with square pixels, principal point at the image centre
    (continuous pixel convention: the centre of a W x H image is (W/2, H/2))."""
    focal_px = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)
    return np.array([[focal_px, 0.0, width / 2], [0.0, focal_px, height / 2], [0.0, 0.0, 1.0]])


USD_DEFAULT_HORIZONTAL_APERTURE = 20.955  # UsdGeomCamera's default, in tenths of a scene unit (the lens unit)


def usd_lens_from_fovy(
    fovy_deg: float, width: int, height: int, horizontal_aperture: float = USD_DEFAULT_HORIZONTAL_APERTURE
) -> tuple[float, float, float]:
    """(focalLength, horizontalAperture, verticalAperture) of a USD camera (all in the same lens unit) that
    renders a W x H image with square pixels and a vertical field of view `fovy_deg`, optical axis centred."""
    vertical_aperture = horizontal_aperture * height / width
    focal_length = vertical_aperture / (2 * math.tan(math.radians(fovy_deg) / 2))
    return focal_length, horizontal_aperture, vertical_aperture


def intrinsics_from_usd_lens(
    focal_length: float, horizontal_aperture: float, vertical_aperture: float, width: int, height: int
) -> np.ndarray:
    """Pinhole K of a USD camera without aperture offsets rendering a W x H image (same pixel convention as
    `intrinsics_from_fovy`)."""
    fx = focal_length * width / horizontal_aperture
    fy = focal_length * height / vertical_aperture
    return np.array([[fx, 0.0, width / 2], [0.0, fy, height / 2], [0.0, 0.0, 1.0]])


def slerp_wxyz(a: Sequence[float], b: Sequence[float], t: float) -> np.ndarray:
    """Spherical interpolation between unit quaternions (shortest arc), t in [0, 1]."""
    qa, qb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    dot = float(np.dot(qa, qb))
    if dot < 0:
        qb, dot = -qb, -dot
    if dot > 0.9995:
        q = qa + t * (qb - qa)
        return q / np.linalg.norm(q)
    theta = math.acos(dot)
    return (math.sin((1 - t) * theta) * qa + math.sin(t * theta) * qb) / math.sin(theta)


def quat_yaw_rad(quat_wxyz: Sequence[float]) -> float:
    """Heading (rotation about world z) of an orientation: the angle of its rotated x axis in the xy plane."""
    rot = quat_wxyz_to_matrix(quat_wxyz)
    return math.atan2(rot[1, 0], rot[0, 0])


def wrap_angle_rad(angle: float) -> float:
    """Wrap to [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def top_down_quat_wxyz(yaw_rad: float) -> np.ndarray:
    """Tool orientation for a top-down grasp: tool z points down (-world z), tool x (the gripper's closing axis)
    at `yaw_rad` in the world xy plane."""
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    return matrix_to_quat_wxyz(np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]]))


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
