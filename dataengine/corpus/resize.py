"""Optional downscaling for `max_image_side`: only images larger than the limit are decoded and re-encoded (in their
own format); every coordinate is mapped into the new frame, rounded and clipped. Smaller images pass through."""

from __future__ import annotations

import io

from PIL import Image

from dataengine.geometry import clip_box_xyxy, clip_point, to_frame
from dataengine.images import sha1_hex

JPEG_QUALITY = 95
WEBP_QUALITY = 95


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size of a width x height image scaled so its longer side is `max_side` (unchanged if it fits)."""
    longer = max(width, height)
    if longer <= max_side:
        return width, height
    scale = max_side / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_resized(data: bytes, fmt: str, size: tuple[int, int]) -> bytes:
    """Decode, resize with Lanczos and re-encode in the same format (deterministic for a given Pillow)."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        resized = im.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if fmt == "jpeg":
        if resized.mode not in ("RGB", "L", "CMYK"):
            resized = resized.convert("RGB")
        resized.save(out, "JPEG", quality=JPEG_QUALITY)
    elif fmt == "png":
        resized.save(out, "PNG")
    else:
        resized.save(out, "WEBP", quality=WEBP_QUALITY)
    return out.getvalue()


def scale_item(item: dict, width: int, height: int, new_w: int, new_h: int) -> dict | None:
    """An item dict with its coordinates mapped to the new frame; None when a box collapses to no area."""
    item = dict(item)
    if item["task"] == "box":
        boxes = []
        for box in item["boxes"]:
            clipped, _ = clip_box_xyxy(to_frame(box, width, height, new_w, new_h), new_w, new_h)
            if clipped is None:
                return None
            boxes.append(clipped)
        item["boxes"] = boxes
    elif item["task"] in ("point", "trace"):
        name = "points" if item["task"] == "point" else "trace"
        item[name] = [clip_point(to_frame(p, width, height, new_w, new_h), new_w, new_h) for p in item[name]]
    return item


def resize_sample(
    image: dict, data: bytes, items: list[dict], max_side: int
) -> tuple[dict, bytes, list[dict | None]] | None:
    """Downscale one sample if it is larger than `max_side`. Returns (image info, bytes, items in the new frame,
    None where a box collapsed), or None when the image already fits (its bytes pass through)."""
    width, height = image["width"], image["height"]
    new_w, new_h = fitted_size(width, height, max_side)
    if (new_w, new_h) == (width, height):
        return None
    new_data = encode_resized(data, image["format"], (new_w, new_h))
    scaled = [scale_item(it, width, height, new_w, new_h) for it in items]
    info = {**image, "width": new_w, "height": new_h, "sha1": sha1_hex(new_data), "source_sha1": image["sha1"]}
    info["source_size"] = [width, height]
    return info, new_data, scaled
