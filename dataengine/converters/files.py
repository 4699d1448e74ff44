"""Bounded reads of input files: only regular files inside the input roots, each at most a set size.

Every file a converter reads goes through `InputFiles`: the path is resolved (symlinks included) and must lie
inside one of the input roots (`--input`, `--images`) unless `--follow-symlinks` was given; it must be a regular
file (a FIFO, a device such as `/dev/zero` or a directory is refused before it is opened, so nothing blocks or reads
forever); and it may hold at most `--max-image-mb` (images) or `--max-annotation-mb` (annotation files) megabytes.
The bytes read are exactly the size the file had when it was checked. An image that fails these checks is
quarantined with a reason (`outside_input_root`, `not_a_regular_file`, `image_too_large`); an annotation file
that fails them stops the job with an InputError saying why and how to lift the limit.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dataengine.errors import InputError

MB = 1 << 20
DEFAULT_MAX_IMAGE_MB = 256
DEFAULT_MAX_ANNOTATION_MB = 16384
# Parquet row groups may say they expand to at most this multiple of the file (at least 1 MB): a legitimate dataset
# compresses text perhaps 10x and images not at all; a decompression bomb claims far more.
MAX_PARQUET_EXPANSION = 100


class FileRefused(ValueError):
    """An input file that may not be read: `reason` is a snake_case quarantine reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class InputLimits:
    """What may be read: symlinks leading outside the input roots only with `follow_symlinks`; sizes in MB."""

    follow_symlinks: bool = False
    max_image_mb: float = DEFAULT_MAX_IMAGE_MB
    max_annotation_mb: float = DEFAULT_MAX_ANNOTATION_MB

    def max_bytes(self, kind: str) -> int:
        return int((self.max_image_mb if kind == "image" else self.max_annotation_mb) * MB)


class InputFiles:
    """Checked, bounded reads below a set of input roots (resolved once)."""

    def __init__(self, roots: list[str | Path | None], limits: InputLimits | None = None) -> None:
        self.limits = limits or InputLimits()
        self.roots = sorted({_root(r) for r in roots if r is not None})

    def check(self, path: str | Path, kind: str = "image") -> os.stat_result:
        """The `stat` of a file that may be read; raises FileNotFoundError when it is absent, IsADirectoryError,
        or FileRefused when it is outside the roots, not a regular file, or too large."""
        path = os.fspath(path)
        st = os.stat(path)  # follows symlinks: the file that would be read
        self._check(path, st, os.path.realpath(path), kind)
        return st

    def read(self, path: str | Path, kind: str = "image") -> bytes:
        """The bytes of a file that passes the checks of `check`, made on the file actually opened (no race
        between check and read); never more than the size it had when checked."""
        path = os.fspath(path)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO opens without blocking
        try:
            st = os.fstat(fd)
            self._check(path, st, _opened_path(fd, path), kind)
            chunks, left = [], st.st_size
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 30))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _check(self, path: str, st: os.stat_result, real: str, kind: str) -> None:
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if not self.limits.follow_symlinks and not self._inside(real):
            raise FileRefused(
                "outside_input_root",
                f"{path} resolves to {real}, outside the input folders (pass --follow-symlinks to read symlinked "
                "files anywhere)",
            )
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused("not_a_regular_file", f"{path} is not a regular file ({_kind_of(st.st_mode)})")
        limit = self.limits.max_bytes(kind)
        if st.st_size > limit:
            option = "--max-image-mb" if kind == "image" else "--max-annotation-mb"
            raise FileRefused(
                f"{kind}_too_large",
                f"{path} holds {st.st_size / MB:,.1f} MB, over the {kind} limit of {limit / MB:,.0f} MB "
                f"(raise it with {option})",
            )

    def annotation(self, path: str | Path) -> Path:
        """An annotation file (JSON, parquet, pickle) a converter opens itself: checked, or InputError."""
        try:
            self.check(path, "annotation")
        except FileNotFoundError as exc:
            raise InputError(f"{path} does not exist") from exc
        except FileRefused as exc:
            raise InputError(f"cannot read annotation file: {exc}") from exc
        return Path(path)

    def read_annotation(self, path: str | Path) -> bytes:
        """The bytes of an annotation file, or InputError naming the file and the limit it broke."""
        try:
            return self.read(path, "annotation")
        except FileRefused as exc:
            raise InputError(f"cannot read annotation file: {exc}") from exc
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror or exc}") from exc

    def parquet(self, path: str | Path):
        """A `pyarrow.parquet.ParquetFile` of an annotation file whose row groups expand to at most
        MAX_PARQUET_EXPANSION times its size (by its metadata), or InputError."""
        import pyarrow.parquet as pq

        path = self.annotation(path)
        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for non-parquet data
            raise InputError(f"{path}: not a readable parquet file ({exc})") from exc
        meta = parquet.metadata
        expanded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        allowed = MAX_PARQUET_EXPANSION * max(path.stat().st_size, MB)
        if expanded > allowed:
            raise InputError(
                f"{path}: its row groups expand to {expanded / MB:,.0f} MB, over {MAX_PARQUET_EXPANSION}x the file "
                "size; refusing a likely decompression bomb"
            )
        return parquet

    def load_json(self, path: str | Path) -> Any:
        """A JSON annotation file (see `parse_json`)."""
        return parse_json(self.read_annotation(path), str(path))

    def _inside(self, real: str) -> bool:
        return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots)


def parse_json(data: bytes, source: str) -> Any:
    """Parse JSON with orjson; files holding NaN or Infinity (which strict JSON forbids but Python writes) are
    parsed by the standard library instead, so the records holding them are quarantined one by one rather than
    the whole file refused. Nesting deeper than orjson's limit (1024) is refused."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        strict_error = exc
    if not any(word in data for word in (b"NaN", b"Infinity")):
        raise InputError(f"{source}: not a readable JSON file ({strict_error})")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{source}: not a readable JSON file ({strict_error})") from exc


def _opened_path(fd: int, path: str) -> str:
    """The resolved path of an open file: one readlink on Linux instead of a `realpath` walk (~2 vs ~20 us)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def _root(path: str | Path) -> str:
    """An input root: the folder given, or the folder of the file given; symlinks resolved."""
    real = os.path.realpath(path)
    return real if not os.path.isfile(real) else os.path.dirname(real)


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return name
    return "a special file"
