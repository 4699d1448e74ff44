"""Image facts from encoded bytes without a full decode: format, size, hash, completeness."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from dataengine.errors import InputError

# Encoded format (PIL name, lower case) -> WebDataset member extension.
FORMAT_TO_EXT = {"jpeg": "jpg", "png": "png", "webp": "webp"}
EXT_TO_FORMAT = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}
IMAGE_EXTS = frozenset(EXT_TO_FORMAT)
_ADDRESS_RE = re.compile(r" (?:object )?at 0x[0-9a-fA-F]+")


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
    except UnidentifiedImageError as exc:
        raise InputError(
            f"not a readable image (no known image format in its first {min(len(data), 16)} bytes)"
        ) from exc
    except Exception as exc:  # PIL raises several types for garbage
        raise InputError(f"not a readable image ({type(exc).__name__}: {stable_text(str(exc))})") from exc
    if fmt not in FORMAT_TO_EXT:
        raise InputError(f"unsupported image format {fmt!r}; expected one of {sorted(FORMAT_TO_EXT)}")
    return ImageHeader(fmt, int(width), int(height))


def stable_text(text: str) -> str:
    """An error text without the memory addresses some libraries put in (`<_io.BytesIO object at 0x7f...>`), so
    that reports and quarantine files are the same from run to run."""
    return _ADDRESS_RE.sub("", text)


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
    """Full decode (slow), and for JPEG `jpeg_fully_coded`; used by `validate --decode`."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").lower()
            im.load()
    except Exception:
        return False
    return fmt != "jpeg" or jpeg_fully_coded(data)


_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_PADDING = b"\x55" * 512  # bits 0101...: valid Huffman codes with non-zero values, unlike the zeros a decoder adds


def jpeg_fully_coded(data: bytes) -> bool:
    """Whether a JPEG's entropy-coded data holds every block, whatever bytes follow it.

    A JPEG cut short and given its end marker back decodes without an error: libjpeg pads the missing data with
    zeros and only warns (a warning Pillow drops), so the rest of the image comes out grey. The end marker says
    nothing about that, so this decodes: once at 1/8 scale (one pixel a block, about half a full decode); a
    sequential JPEG whose last block is not mid-grey is complete, because padded blocks are exactly mid-grey.
    Otherwise (a grey last block, or a progressive JPEG) the image is decoded again with other bytes after its
    entropy-coded data: a complete image never reads them, so both decodes agree; a truncated one reads them."""
    ends, progressive = _scan_ends(data)
    if not ends:
        return False
    try:
        first = _decode(data, small=not progressive)
        if not progressive and first.getpixel((first.width - 1, first.height - 1)) != 128:
            return True
        if not progressive:
            first = _decode(data, small=False)
        second = _decode(data[: ends[-1]] + _PADDING + b"\xff\xd9", small=False)
    except Exception:  # PIL raises several types for broken data
        return False
    return first.tobytes() == second.tobytes()


def _decode(data: bytes, small: bool) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        if small:
            im.draft("L", (max(1, im.width // 8), max(1, im.height // 8)))
        im.load()
        return im.convert("L") if small and im.mode != "L" else im.copy()


def _scan_ends(data: bytes) -> tuple[list[int], bool]:
    """Byte offsets where each scan's entropy-coded data ends (at the next marker), and whether the JPEG is
    progressive. Empty when the marker structure is broken."""
    ends: list[int] = []
    progressive = restarts = False
    i, n = 2, len(data)
    if data[:2] != b"\xff\xd8":
        return [], False
    while i + 4 <= n:
        if data[i] != 0xFF:
            return [], progressive
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0xD9:
            return ends, progressive
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        progressive = progressive or marker in _PROGRESSIVE_SOF
        restarts = restarts or (marker == 0xDD and data[i + 4 : i + 6] != b"\x00\x00")  # a restart interval
        i += 2 + length
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not a stuffed byte or a restart
            while True:
                i = data.find(b"\xff", i)
                if i < 0 or i + 1 >= n:
                    return [], progressive  # no end marker at all
                following = data[i + 1]
                if following == 0x00 or (restarts and 0xD0 <= following <= 0xD7) or following == 0xFF:
                    i += 1 if following == 0xFF else 2
                    continue
                ends.append(i)
                break
    return ends, progressive
