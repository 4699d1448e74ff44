"""Image facts from encoded bytes without a full decode: format, size, hash, completeness."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image

from dataengine.errors import InputError

# Encoded format (PIL name, lower case) -> WebDataset member extension.
FORMAT_TO_EXT = {"jpeg": "jpg", "png": "png", "webp": "webp"}
EXT_TO_FORMAT = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}
IMAGE_EXTS = frozenset(EXT_TO_FORMAT)


@dataclass(frozen=True)
class ImageHeader:
    """What the header of an encoded image says."""

    format: str  # "jpeg" | "png" | "webp"
    width: int
    height: int

    @property
    def ext(self) -> str:
        return FORMAT_TO_EXT[self.format]


def probe_image(data: bytes) -> ImageHeader:
    """Read format and size from the image header (PIL opens lazily: no pixel decode)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").lower()
            width, height = im.size
    except Exception as exc:  # PIL raises several types for garbage
        raise InputError(f"not a readable image ({type(exc).__name__}: {exc})") from exc
    if fmt not in FORMAT_TO_EXT:
        raise InputError(f"unsupported image format {fmt!r}; expected one of {sorted(FORMAT_TO_EXT)}")
    return ImageHeader(fmt, int(width), int(height))


def sha1_hex(data: bytes) -> str:
    """SHA-1 of the exact bytes, as stored in `image.sha1`."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def is_complete(data: bytes, fmt: str) -> bool:
    """Cheap truncation check: JPEG ends with EOI, PNG with the IEND chunk, WebP's RIFF size matches."""
    if fmt == "jpeg":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if fmt == "png":
        return data[-12:-4] == b"\x00\x00\x00\x00IEND"
    if fmt == "webp":
        return len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 <= len(data)
    return True


def decode_ok(data: bytes) -> bool:
    """Full decode (slow); used by `validate --decode`."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        return True
    except Exception:
        return False
