"""Reading WebDataset tars written by us or by other tools: shard discovery and sample iteration."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dataengine.errors import InputError, ShardError

# WebDataset's rule: the key is everything up to the first dot of the basename, the rest is the extension.
_MEMBER_RE = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")

Sample = dict[str, Any]


def list_shards(path: str | Path, pattern: str = "*.tar") -> list[Path]:
    """Tar files of a shard set, sorted by path. `path` may be a directory (searched recursively) or one tar."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{path} does not exist; expected a directory of WebDataset .tar shards or a .tar file")
    shards = sorted(p for p in path.rglob(pattern) if p.is_file() and "_state" not in p.parts)
    return shards


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
    end_offset = 0
    try:
        with tarfile.open(shard, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = split_member_name(member.name)
                if parts is None:
                    raise ShardError(f"{label}: member {member.name!r} has no extension (not WebDataset)")
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
                fileobj = tar.extractfile(member)
                current[ext] = fileobj.read() if fileobj is not None else b""
            end_offset = tar.offset
    except (tarfile.TarError, EOFError, OSError) as exc:
        where = f" at sample {current['__key__']!r}" if current is not None else ""
        raise ShardError(f"{label}: unreadable or truncated tar{where} ({exc})") from exc
    if not _has_end_marker(shard, end_offset):
        where = f" after sample {current['__key__']!r}" if current is not None else ""
        raise ShardError(f"{label}: truncated tar{where} (no end-of-archive marker)")
    if current is not None:
        yield current


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
