"""Reading WebDataset tars written by us or by other tools: shard discovery and the one tar reader.

`iter_tar_samples` is the reader every tar read goes through: a tar's file members grouped into samples by key
(WebDataset's rule: the key is everything up to the first dot of the basename, the rest is the extension; the
members of one sample are adjacent), each sample with its byte range and the data of the members the caller
asks for (the others are seeked over, never read). `iter_samples` (every member's bytes, as dicts), the sidecar
index scan (`shards.index`), the corpus scan (JSON members only) and the episode codec (`episode.json` only) are
views of it; random access into a sample's byte range is `shards.index.parse_sample`.

Plain USTAR (what `ShardWriter` writes) is parsed directly (`tarscan`, ~3x faster than `tarfile`); compressed
tars, and anything from the first PAX or GNU long-name header on, go through `tarfile`.
"""

from __future__ import annotations

import itertools
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from dataengine.errors import InputError, ShardError
from dataengine.runtime.completion import STATE_DIR, require_complete
from dataengine.shards.tarscan import BLOCK, Member, UnsupportedTar, ends_with_marker, iter_members, member_at

# WebDataset's rule: the key is everything up to the first dot of the basename, the rest is the extension.
_MEMBER_RE = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")

Sample = dict[str, Any]
ReadWhich = Callable[[str], bool]  # extension -> read this member's data?


def read_all(ext: str) -> bool:
    return True


def read_none(ext: str) -> bool:
    return False


def list_shards(path: str | Path, pattern: str = "*.tar", *, allow_incomplete: bool | None = None) -> list[Path]:
    """Tar files of a shard set, sorted by path. `path` may be a directory (searched recursively) or one tar.
    Job state folders (`_state/`, see `runtime.jobs`) below `path` are skipped; `path` itself may lie inside one
    (a build's conversion cache, `OUT/_state/cache/...`). A folder holding an unfinished job is refused
    (`runtime.completion.require_complete`; `allow_incomplete` reads it anyway, with a warning)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; expected a directory of WebDataset .tar shards or a .tar file")
    require_complete(path, allow_incomplete)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{path} is not a directory of WebDataset .tar shards or a .tar file")
    return sorted(p for p in path.rglob(pattern) if p.is_file() and STATE_DIR not in p.relative_to(path).parts)


def split_member_name(name: str) -> tuple[str, str] | None:
    """`a/b.c.json` -> ("a/b", "c.json"); None for names without an extension."""
    match = _MEMBER_RE.match(name)
    return (match.group(1), match.group(2)) if match else None


@dataclass(slots=True)
class TarSample:
    """One sample as found in a tar: its key, byte range (first header to the end of its last member's data),
    the data of the members that were read and the size of every member, by extension."""

    key: str
    offset: int
    end: int
    data: dict[str, bytes] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)  # extensions met twice (the later member's data is kept)


def iter_tar_samples(
    shard: str | Path,
    read: ReadWhich = read_all,
    *,
    label: str | None = None,
    strict: bool = True,
    require_end: bool = False,
    seekable: bool = False,
    sparse: bool = False,
) -> Iterator[TarSample]:
    """The samples of one tar, in order, reading the data of the members whose extension `read` accepts.

    `strict` (the WebDataset rules): a member without an extension, an extension repeated within a sample or a
    key that comes back later raise ShardError naming the shard; otherwise nameless members are skipped and
    repeats recorded in `TarSample.repeated`. `require_end`: a tar without its end-of-archive marker (cut short)
    raises. `seekable`: byte ranges must be file offsets (compressed tars are refused). `sparse`: the caller skips
    most data (the OS is told not to read ahead). Corrupt or truncated tars raise ShardError."""
    shard = Path(shard)
    label = label or shard.name
    current: TarSample | None = None
    seen: set[str] = set()
    read_every = read is read_all
    members = TarMembers(shard, seekable=seekable, sparse=sparse)
    try:
        for member, read_data in members:
            parts = split_member_name(member.name)
            if parts is None:
                if strict:
                    raise ShardError(f"{label}: member {member.name!r} has no extension (not WebDataset)")
                continue
            key, ext = parts
            end = member.end
            if current is None or current.key != key:
                if current is not None:
                    yield current
                if key in seen and strict:
                    raise ShardError(f"{label}: sample {key!r} appears twice or its members are not adjacent")
                seen.add(key)
                current = TarSample(key, member.offset, end, {}, {}, [])
            elif ext in current.sizes:
                if strict:
                    raise ShardError(f"{label}: sample {key!r} has two {ext!r} members")
                current.repeated.append(ext)
            current.end = end
            current.sizes[ext] = member.size
            if read_every or read(ext):
                current.data[ext] = read_data()
    except (tarfile.TarError, EOFError, OSError) as exc:
        where = f" at sample {current.key!r}" if current is not None else ""
        raise ShardError(f"{label}: unreadable or truncated tar{where} ({exc})") from exc
    if require_end and not members.complete:
        where = f" after sample {current.key!r}" if current is not None else ""
        raise ShardError(f"{label}: truncated tar{where} (no end-of-archive marker)")
    if current is not None:
        yield current


def iter_samples(shard: str | Path, shard_name: str | None = None) -> Iterator[Sample]:
    """Yield samples of one tar: dicts with `__key__`, `__shard__` and one bytes value per member extension.

    Members of one sample must be adjacent (the WebDataset rule). Raises ShardError naming the shard when the tar
    is corrupt or truncated, or when a key repeats non-adjacently.
    """
    label = shard_name or Path(shard).name
    for sample in iter_tar_samples(shard, label=label, require_end=True):
        yield {"__key__": sample.key, "__shard__": label, **sample.data}


def iter_shard_set(path: str | Path) -> Iterator[Sample]:
    """Samples of every shard under `path`, shard by shard in sorted order."""
    root = Path(path)
    for shard in list_shards(root):
        name = str(shard.relative_to(root)) if root.is_dir() else shard.name
        yield from iter_samples(shard, name)


class TarMembers:
    """(member, read its data) of a tar's file members in order; afterwards `complete` says whether the archive
    ended with its end-of-archive marker. A member's data can only be read before the next member is asked for.
    Plain USTAR is parsed directly; from the first header `tarscan` does not handle on, `tarfile` goes on (stream
    mode, which also reads compressed tars; with `seekable`, uncompressed only, so offsets are file offsets)."""

    def __init__(self, shard: Path, *, seekable: bool = False, sparse: bool = False) -> None:
        self.shard, self.seekable, self.sparse = shard, seekable, sparse
        self.complete = False

    def __iter__(self) -> Iterator[tuple[Member, Callable[[], bytes]]]:
        done = 0
        with open(self.shard, "rb", buffering=0 if self.sparse else -1) as fh:
            if self.sparse and hasattr(os, "posix_fadvise"):  # read only the pages asked for, not the ones around
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
            if fh.read(BLOCK)[257:262] == b"ustar":
                fh.seek(0)
                try:
                    for member in iter_members(fh):
                        yield member, partial(_read_data, fh, member)
                        done += 1
                    self.complete = ends_with_marker(fh)
                    return
                except UnsupportedTar:
                    pass  # tarfile goes on from this member
        with tarfile.open(self.shard, mode="r:" if self.seekable else "r|*") as tar:
            for info in itertools.islice((m for m in tar if m.isfile()), done, None):
                # `offset` of a member behind PAX or GNU long-name headers is that of its first header
                yield member_at(info.name, info.offset, info.offset_data, info.size), partial(_extract, tar, info)
            end_offset = tar.offset
        self.complete = _has_end_marker(self.shard, end_offset)


def _read_data(fh: BinaryIO, member: Member) -> bytes:
    fh.seek(member.data_offset)
    data = fh.read(member.size)
    if len(data) != member.size:
        raise tarfile.ReadError("unexpected end of data")
    return data


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fileobj = tar.extractfile(member)
    return fileobj.read() if fileobj is not None else b""


def _has_end_marker(shard: Path, end_offset: int) -> bool:
    """An uncompressed tar ends with two zero blocks after its last member; tarfile stops silently without them."""
    with open(shard, "rb") as fh:
        head = fh.read(265)
        if head[257:262] != b"ustar" and end_offset > 0:
            return True  # compressed or exotic: tarfile's own checks apply
        fh.seek(end_offset)
        return fh.read(1024) == bytes(1024)


__all__ = [
    "Sample",
    "TarSample",
    "iter_samples",
    "iter_shard_set",
    "iter_tar_samples",
    "list_shards",
    "read_all",
    "read_none",
    "split_member_name",
]
