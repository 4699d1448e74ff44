"""Image-space coordinates: continuous pixels, boxes, points, normalized values and resized model frames.

For converters, answer styles and inspection. Conventions:
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

__all__ = [
    "COORD_DECIMALS",
    "QWEN_FACTOR",
    "QWEN_MAX_ASPECT_RATIO",
    "QWEN_MAX_PIXELS",
    "QWEN_MIN_PIXELS",
    "box_inside",
    "box_iou",
    "clip_box_xyxy",
    "clip_point",
    "from_bins",
    "from_frame",
    "from_norm",
    "is_finite",
    "point_inside",
    "resize_scale",
    "round_coord",
    "round_coords",
    "scale_xy",
    "smart_resize",
    "to_bins",
    "to_frame",
    "to_norm",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]

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
