"""Helpers every converter shares: safe paths from the data, keys, image facts, prompt clean-up."""

from __future__ import annotations

import gc
import hashlib
import re
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from dataengine.converters.files import FileRefused, InputFiles
from dataengine.errors import InputError
from dataengine.images import ImageHeader, is_complete, probe_image, sha1_hex
from dataengine.records.grounding import KEY_PATTERN

_KEY_RE = re.compile(KEY_PATTERN)
_SLUG_RE = re.compile(r"[^A-Za-z0-9_-]+")
_WINDOWS_DRIVE_RE = re.compile(r"^[A-Za-z]:")
# Slash-separated names of letters, digits and `_-.()#,+ ` that are not `.` or `..`: already safe and normal.
_PLAIN_RELPATH_RE = re.compile(
    r"^(?!\.{1,2}(?:/|$))[\w\-+#,() ]+(?:\.[\w\-+#,() ]+)*(?:/(?!\.{1,2}(?:/|$))[\w\-+#,() ]+(?:\.[\w\-+#,() ]+)*)*$"
)
_COCO_NAME_RE = re.compile(r"(?:^|/)(?:COCO_(?:train|val)2014_)?(\d{12})\.jpg$")
MAX_KEY_LEN = 128


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while building many small objects (annotation indexes, records).

    With millions of live objects each full collection walks them all, which can double a conversion's time.
    On exit the surviving objects are frozen (moved out of the collector's generations: reference counting still
    frees them) so that re-enabling the collector does not trigger a walk over everything at once. Converters
    create no reference cycles worth collecting early."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


class UnsafePathError(ValueError):
    """A path taken from the data would leave the input root (absolute, drive letter or `..`)."""


def safe_relpath(raw: str) -> str:
    """Normalize a relative path written in the data: backslashes become slashes, `./` parts go; absolute paths,
    drive letters, empty paths and `..` components raise UnsafePathError."""
    if isinstance(raw, str) and _PLAIN_RELPATH_RE.match(raw) and raw.strip() == raw:  # the common case, cheaply
        return raw
    if not isinstance(raw, str) or not raw.strip():
        raise UnsafePathError(f"empty or non-string path {raw!r}")
    text = raw.strip().replace("\\", "/")
    if text.startswith("/") or _WINDOWS_DRIVE_RE.match(text) or "\x00" in text:
        raise UnsafePathError(f"absolute path {raw!r} in the data")
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if not parts:
        raise UnsafePathError(f"empty path {raw!r}")
    if ".." in parts:
        raise UnsafePathError(f"path {raw!r} climbs out of the input root with '..'")
    return "/".join(parts)


def slug(text: str, max_len: int = 48) -> str:
    """Filename- and key-safe form of free text: runs of other characters become one underscore. Text longer than
    `max_len` keeps its start and ends in `_` + a short hash of the whole text, so two long names that differ only
    at the end stay distinct and traceable."""
    out = _SLUG_RE.sub("_", str(text)).strip("_")
    if len(out) > max_len >= 16:
        return out[: max_len - 9].rstrip("_") + "_" + short_hash(text)
    return out[:max_len] or "x"


def short_hash(*parts: Any, n: int = 8) -> str:
    digest = hashlib.sha1("\x1f".join(str(p) for p in parts).encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest()[:n]


def make_key(*parts: Any) -> str:
    """A dot-free sample key from parts joined by `_`; too long or unsafe input gets a hash suffix instead."""
    key = "_".join(slug(str(p), MAX_KEY_LEN) for p in parts)
    if len(key) > MAX_KEY_LEN:
        key = key[: MAX_KEY_LEN - 17] + "_" + short_hash(*parts, n=16)
    if not _KEY_RE.match(key):
        raise InputError(f"cannot build a valid key from {parts!r}")
    return key


class ImageProblem(ValueError):
    """Image bytes that cannot be stored: `reason` is a quarantine reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the image size.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def jpeg_header(data: bytes) -> ImageHeader | None:
    """Size of a plain JPEG from its start-of-frame segment, walking the marker segments without parsing their
    contents (PIL also parses every quantization and Huffman table: ten times slower on a converter's hot path).
    None when anything is unusual (not a JPEG, a multi-picture MPF file, a malformed segment): the caller then
    asks `images.probe_image`, which is the reference."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    i, end = 2, len(data)
    while i + 4 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xE2 and data[i + 4 : i + 8] == b"MPF\x00":
            return None  # PIL reads these as MPO, which the engine does not store
        if marker in _JPEG_SOF:
            if length < 7 or i + 9 > end:
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return ImageHeader("jpeg", width, height) if width and height else None
        i += 2 + length
    return None


def image_info(data: bytes, origin: str, **extra: Any) -> dict[str, Any]:
    """grounding/v1 `image` block from the exact bytes (size from the header, no decode); raises ImageProblem for
    unreadable, unsupported or truncated images."""
    header = jpeg_header(data)
    if header is None:
        try:
            header = probe_image(data)
        except InputError as exc:
            reason = "unsupported_image_format" if "unsupported image format" in str(exc) else "unreadable_image"
            raise ImageProblem(reason, str(exc)) from exc
    if not is_complete(data, header.format):
        raise ImageProblem("truncated_image", f"{header.format} data of {len(data)} bytes is incomplete")
    info = {
        "width": header.width,
        "height": header.height,
        "sha1": sha1_hex(data),
        "origin": origin,
        "format": header.format,
    }
    info.update({k: v for k, v in extra.items() if v is not None})
    return info


def read_image_file(files: InputFiles, path: str | Path) -> bytes:
    """Bytes of an image file through the input bounds (`converters.files`); raises ImageProblem with the
    quarantine reason: missing_image_file, outside_input_root, not_a_regular_file, image_too_large,
    unreadable_image."""
    try:
        return files.read(path, "image")
    except FileNotFoundError as exc:
        raise ImageProblem("missing_image_file", f"{path} does not exist") from exc
    except IsADirectoryError as exc:
        raise ImageProblem("missing_image_file", f"{path} is a directory") from exc
    except FileRefused as exc:
        raise ImageProblem(exc.reason, str(exc)) from exc
    except OSError as exc:
        raise ImageProblem("unreadable_image", f"{path}: {exc.strerror or exc}") from exc


def read_image_under(files: InputFiles, root: Path, raw: str) -> tuple[str, bytes]:
    """(normalized relative path, bytes) of an image file a record names, below `root`. Raises ImageProblem:
    `unsafe_path` for a path that would leave `root` (see `safe_relpath`), else as `read_image_file` does."""
    try:
        rel = safe_relpath(raw)
    except UnsafePathError as exc:
        raise ImageProblem("unsafe_path", str(exc)) from exc
    return rel, read_image_file(files, root / rel)


def coco_image_id(name: str) -> int | None:
    """COCO image id from a file name such as `COCO_train2014_000000460986.jpg` or `train2017/000000460986.jpg`
    (the id the corpus builder's holdouts use); None for other names."""
    match = _COCO_NAME_RE.search(name.replace("\\", "/"))
    return int(match.group(1)) if match else None


_IMAGE_TOKEN_RE = re.compile(r"^\s*<image>\s*\n?|\n?\s*<image>\s*$")


def strip_image_token(text: str) -> tuple[str, bool]:
    """Remove a leading or trailing `<image>` placeholder (exports add their own); returns (text, removed)."""
    cleaned = _IMAGE_TOKEN_RE.sub("", text, count=1)
    return cleaned, cleaned != text


# The answer-format instruction RoboPoint and Where2Place append to every pointing question. It describes one
# model's output format, not the target, so the canonical query drops it (exports render their own format).
_POINT_FORMAT_RE = re.compile(r"\s*Your answer should be formatted as a list of tuples.*$", re.DOTALL)


def strip_format_instruction(text: str) -> tuple[str, bool]:
    cleaned = _POINT_FORMAT_RE.sub("", text)
    return cleaned.strip(), cleaned != text
