"""Deterministic WebDataset shard writing.

Guarantees: dot-free keys, members of a sample adjacent and sorted by extension, fixed mtime/owner/mode,
rollover by sample count and bytes, each shard streamed under a temporary name (`runtime.atomic`) and renamed when
complete (not fsynced: readers check a tar's end-of-archive marker), and a sidecar index (`<shard>.idx.json`: key,
byte offset and byte length of every sample) next to each tar.

The tars are the bytes webdataset's `TarWriter` writes with a direct-mode `tarfile` (tested), written directly: one
template header per member, the data and its padding into a 1 MB buffer. `tarfile.addfile` spent ~40 µs per
member building `TarInfo` headers and copying through `BytesIO`, half of a corpus build's write cost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

from dataengine.errors import ShardError
from dataengine.runtime.atomic import atomic_write_text, commit, temporary_path
from dataengine.shards.tarscan import BLOCK, HeaderMaker, end_of_archive, padded_size

KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$")
EXT_RE = re.compile(r"^[a-z0-9][a-z0-9_]*(\.[a-z0-9_]+)*$")  # no leading "_": webdataset reads those as metadata
FIXED_MTIME = 0  # an int: a float mtime makes tarfile add a PAX header to every member
INDEX_SUFFIX = ".idx.json"
IO_BUFFER = 1 << 20
MEMBER_MODE = 0o444


@dataclass
class ShardInfo:
    """A finished shard: file name (relative to the output dir), samples and bytes."""

    name: str
    samples: int
    bytes: int


class _TarStream:
    """Members appended to a USTAR tar on a buffered file; `offset` is the bytes written so far."""

    def __init__(self, stream: BinaryIO, headers: HeaderMaker) -> None:
        self.stream, self.headers, self.offset = stream, headers, 0

    def add(self, name: str, data: bytes | bytearray | memoryview) -> None:
        size = memoryview(data).nbytes
        header, pad = self.headers.header(name, size), -size % BLOCK
        write = self.stream.write
        write(header)
        write(data)
        if pad:
            write(bytes(pad))
        self.offset += len(header) + size + pad

    def close(self) -> None:
        self.stream.write(end_of_archive(self.offset))
        self.stream.close()


@dataclass
class _OpenShard:
    name: str
    tmp_path: Path
    tar: _TarStream
    samples: int = 0
    index: list[list] = field(default_factory=list)


def shard_name(prefix: str, number: int) -> str:
    return f"{prefix}-{number:06d}.tar"


def index_path(shard_path: Path) -> Path:
    return shard_path.with_name(shard_path.name[: -len(".tar")] + INDEX_SUFFIX)


def check_key(key: str) -> None:
    if not KEY_RE.match(key):
        raise ShardError(f"invalid sample key {key!r}: use 1-128 characters from [A-Za-z0-9_-], no dots or slashes")


def _member_bytes(key: str, members: Mapping[str, bytes]) -> int:
    """Bytes the sample occupies in a USTAR stream: a header block per member plus data padded to 512."""
    return sum(BLOCK + padded_size(len(value)) for value in members.values())


class ShardWriter:
    """Write samples (`key`, `{ext: bytes}`) into `OUT/<prefix>-NNNNNN.tar`, rolling over by count and size.

    Same samples in the same order give byte-identical tars. Use as a context manager or call `close()`.
    """

    def __init__(
        self,
        out_dir: str | Path,
        prefix: str,
        *,
        max_samples: int = 10_000,
        max_bytes: int = 1 << 30,
        mtime: int = FIXED_MTIME,
        write_index: bool = True,
    ) -> None:
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", prefix):
            raise ShardError(f"invalid shard prefix {prefix!r}")
        if max_samples < 1 or max_bytes < 1:
            raise ShardError("max_samples and max_bytes must be positive")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self.mtime = int(mtime)
        self._headers = HeaderMaker(self.mtime, MEMBER_MODE)
        self.write_index = write_index
        self._current: _OpenShard | None = None
        self._next_number = 0
        self._seen_keys: set[str] = set()
        self.finished: list[ShardInfo] = []

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def current_shard(self) -> str | None:
        return self._current.name if self._current else None

    def write(self, key: str, members: Mapping[str, bytes]) -> str:
        """Append one sample; returns the name of the shard it went into."""
        check_key(key)
        if key in self._seen_keys:
            raise ShardError(f"duplicate sample key {key!r} in shard set {self.prefix!r}")
        if not members:
            raise ShardError(f"sample {key!r} has no members")
        for ext, value in members.items():
            if not EXT_RE.match(ext):
                raise ShardError(f"invalid member extension {ext!r} for sample {key!r}")
            if not isinstance(value, bytes | bytearray | memoryview):
                raise ShardError(f"member {key}.{ext} must be bytes, got {type(value).__name__}")
        size = _member_bytes(key, members)
        shard = self._current
        if shard is not None and (
            shard.samples >= self.max_samples or (shard.samples > 0 and shard.tar.offset + size > self.max_bytes)
        ):
            self._finish_current()
            shard = None
        if shard is None:
            shard = self._open_next()
        offset = shard.tar.offset
        for ext in sorted(members):
            shard.tar.add(f"{key}.{ext}", members[ext])
        shard.index.append([key, offset, shard.tar.offset - offset])
        shard.samples += 1
        self._seen_keys.add(key)
        return shard.name

    def close(self) -> list[ShardInfo]:
        """Finish the open shard; returns every shard written, in order."""
        if self._current is not None:
            self._finish_current()
        return list(self.finished)

    def abort(self) -> None:
        """Drop the unfinished shard (its temporary file is removed); finished shards stay."""
        shard, self._current = self._current, None
        if shard is not None:
            try:
                shard.tar.stream.close()
            finally:
                shard.tmp_path.unlink(missing_ok=True)

    def _open_next(self) -> _OpenShard:
        name = shard_name(self.prefix, self._next_number)
        self._next_number += 1
        tmp_path = temporary_path(self.out_dir / name)
        stream = open(tmp_path, "wb", buffering=IO_BUFFER)  # noqa: SIM115 - closed in _finish_current / abort
        self._current = _OpenShard(name=name, tmp_path=tmp_path, tar=_TarStream(stream, self._headers))
        return self._current

    def _finish_current(self) -> None:
        shard, self._current = self._current, None
        assert shard is not None
        shard.tar.close()
        final_path = self.out_dir / shard.name
        if self.write_index:
            idx = {"shard": shard.name, "samples": shard.samples, "index": shard.index}
            idx_final = index_path(final_path)
            atomic_write_text(idx_final, json.dumps(idx, separators=(",", ":")) + "\n")
        commit(shard.tmp_path, final_path, fsync=False)  # the index says the tar is whole; see the docstring
        self.finished.append(ShardInfo(shard.name, shard.samples, final_path.stat().st_size))


def shard_infos_to_json(infos: list[ShardInfo]) -> list[dict]:
    return [asdict(i) for i in infos]
