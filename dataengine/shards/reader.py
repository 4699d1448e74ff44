"""Reading WebDataset tars written by us or by other tools: shard discovery and sample iteration."""

from __future__ import annotations

import itertools
import re
import tarfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from dataengine.errors import InputError, ShardError
from dataengine.runtime.completion import STATE_DIR, require_complete
from dataengine.shards.tarscan import BLOCK, Member, UnsupportedTar, ends_with_marker, iter_members

# WebDataset's rule: the key is everything up to the first dot of the basename, the rest is the extension.
_MEMBER_RE = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")

Sample = dict[str, Any]


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


def iter_samples(shard: str | Path, shard_name: str | None = None) -> Iterator[Sample]:
    """Yield samples of one tar: dicts with `__key__`, `__shard__` and one bytes value per member extension.

    Members of one sample must be adjacent (the WebDataset rule). Raises ShardError naming the shard when the tar
    is corrupt or truncated, or when a key repeats non-adjacently.
    """
    shard = Path(shard)
    label = shard_name or shard.name
    current: Sample | None = None
    seen: set[str] = set()
    members = _FileMembers(shard)
    try:
        for name, read in members:
            parts = split_member_name(name)
            if parts is None:
                raise ShardError(f"{label}: member {name!r} has no extension (not WebDataset)")
            key, ext = parts
            if current is not None and current["__key__"] != key:
                yield current
                current = None
            if current is None:
                if key in seen:
                    raise ShardError(f"{label}: sample {key!r} appears twice or its members are not adjacent")
                seen.add(key)
                current = {"__key__": key, "__shard__": label}
            if ext in current:
                raise ShardError(f"{label}: sample {key!r} has two {ext!r} members")
            current[ext] = read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        where = f" at sample {current['__key__']!r}" if current is not None else ""
        raise ShardError(f"{label}: unreadable or truncated tar{where} ({exc})") from exc
    if not members.complete:
        where = f" after sample {current['__key__']!r}" if current is not None else ""
        raise ShardError(f"{label}: truncated tar{where} (no end-of-archive marker)")
    if current is not None:
        yield current


class _FileMembers:
    """(name, read data) of a tar's file members in order; afterwards `complete` says whether the archive ended
    with its end-of-archive marker. Plain USTAR is parsed directly (`tarscan`, ~3x faster); compressed tars and
    anything from the first PAX or GNU long-name header on go through tarfile's stream mode."""

    def __init__(self, shard: Path) -> None:
        self.shard = shard
        self.complete = False

    def __iter__(self) -> Iterator[tuple[str, Callable[[], bytes]]]:
        done = 0
        with open(self.shard, "rb") as fh:
            if fh.read(BLOCK)[257:262] == b"ustar":
                fh.seek(0)
                try:
                    for member in iter_members(fh):
                        yield member.name, partial(_read_data, fh, member)
                        done += 1
                    self.complete = ends_with_marker(fh)
                    return
                except UnsupportedTar:
                    pass  # tarfile goes on from this member
        with tarfile.open(self.shard, mode="r|*") as tar:
            for member in itertools.islice((m for m in tar if m.isfile()), done, None):
                yield member.name, partial(_extract, tar, member)
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


def iter_shard_set(path: str | Path) -> Iterator[Sample]:
    """Samples of every shard under `path`, shard by shard in sorted order."""
    root = Path(path)
    for shard in list_shards(root):
        name = str(shard.relative_to(root)) if root.is_dir() else shard.name
        yield from iter_samples(shard, name)
