"""Atomic file writes: the one way a file appears whole or not at all.

Every output is written under a temporary name beside its final path (`<name>.tmp<digits>`, unique per process
and thread, a name the job runner's resume cleaning knows: `runtime.jobs.task_output_re`), flushed to disk and
renamed over the final path; a failure removes the temporary file. Readers therefore never see a half-written
file, and a crash leaves at most a `.tmp` file that a resumed job removes.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path


def temporary_path(path: Path) -> Path:
    """Where `atomic_output` writes `path` before renaming it (unique per process and thread)."""
    return path.with_name(f"{path.name}.tmp{os.getpid()}{threading.get_native_id()}")


@contextlib.contextmanager
def atomic_output(path: str | Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path for the caller to write; when the block succeeds, flush it to disk (`fsync`) and
    rename it over `path`; when it raises, remove it. The parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        commit(tmp, path, fsync=fsync)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def commit(tmp: Path, path: Path, *, fsync: bool = True) -> None:
    """Rename a finished temporary file over `path` (after flushing it to disk with `fsync`). For writers that
    stream into `temporary_path(path)` themselves (shards, videos)."""
    if fsync:
        _fsync(tmp)
    os.replace(tmp, path)


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = True) -> Path:
    """Write `data` to `path` atomically (temporary file, fsync, rename). `fsync=False` for bulk files whose
    readers check them anyway (content-addressed images)."""
    path = Path(path)
    with atomic_output(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically (temporary file, fsync, rename)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
