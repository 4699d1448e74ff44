"""Small builders shared by tests: images and grounding records."""

from __future__ import annotations

import io

from PIL import Image

from dataengine.images import probe_image, sha1_hex
from dataengine.records import GroundingRecord


def make_image(width: int = 64, height: int = 48, fmt: str = "JPEG", color=(120, 80, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, fmt)
    return buf.getvalue()


def make_record(key: str, image: bytes | None, items: list[dict], source: str = "test", split: str = "train"):
    info = None
    if image is not None:
        header = probe_image(image)
        info = {
            "width": header.width,
            "height": header.height,
            "sha1": sha1_hex(image),
            "origin": f"{key}.img",
            "format": header.format,
        }
    return GroundingRecord.model_validate(
        {"key": key, "source": source, "split": split, "license": "CC-BY-4.0", "image": info, "items": items}
    )
