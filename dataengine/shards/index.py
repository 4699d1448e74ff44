"""Random access into WebDataset tars: where each sample starts and how long it is, and reading one sample.

A sample table lists (key, byte offset, byte length) per sample. Shards written by `ShardWriter` carry it in a
sidecar index (`<shard>.idx.json`), used when present and consistent with the tar; tars from other tools are
scanned once, headers only, by the one tar reader (`shards.reader.iter_tar_samples`). Reading a sample is one
seek and one read of its bytes, split into members (plain USTAR parsed directly, anything else through
`tarfile`); nothing is decoded.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dataengine.errors import ShardError
from dataengine.shards.reader import Sample, iter_tar_samples, read_none, split_member_name
from dataengine.shards.tarscan import chunk_members
from dataengine.shards.writer import index_path

SampleRow = tuple[str, int, int]  # key, byte offset of its first header, byte length of all its members


def read_sidecar(shard: Path) -> list[SampleRow] | None:
    """The rows of the shard's sidecar index when it exists and fits the tar (its last sample ends inside the
    file); None when it is missing, unreadable or empty (not fatal: the caller scans the tar instead)."""
    sidecar = index_path(shard)
    if not sidecar.exists():
        return None
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        rows = [(str(k), int(o), int(n)) for k, o, n in data["index"]]
    except (ValueError, KeyError, TypeError):
        return None
    if rows and rows[-1][1] + rows[-1][2] <= shard.stat().st_size:
        return rows
    return None


def scan_tar(shard: Path) -> list[SampleRow]:
    """(key, offset, length) per sample by reading tar headers only (data blocks are seeked over); a sample's
    range runs from its first header to the end of its last member's data."""
    samples = iter_tar_samples(shard, read_none, seekable=True)
    return [(s.key, s.offset, s.end - s.offset) for s in samples]


def sample_table(shard: str | Path) -> list[SampleRow]:
    """The shard's sample table: from its sidecar index when present and consistent, else by scanning."""
    shard = Path(shard)
    return read_sidecar(shard) or scan_tar(shard)


def parse_sample(blob: bytes, shard_name: str, key: str | None = None) -> Sample:
    """One sample's tar bytes -> {"__key__", "__shard__", ext: bytes}. `key`, when given, is the key the caller
    looked up (in an index): members of another sample are then an error."""
    try:
        members = chunk_members(blob)
    except (tarfile.TarError, EOFError) as exc:
        raise ShardError(f"{shard_name}: cannot read sample at its indexed offset ({exc})") from exc
    sample: Sample = {}
    for name, data in members:
        parts = split_member_name(name)
        if parts is None:
            raise ShardError(f"{shard_name}: member {name!r} has no extension")
        member_key, ext = parts
        if key is not None and member_key != key:
            raise ShardError(f"{shard_name}: index entry for {key!r} points at member {name!r}")
        if not sample:
            sample = {"__key__": member_key, "__shard__": shard_name}
        elif sample["__key__"] != member_key:
            raise ShardError(f"{shard_name}: index entry mixes samples {sample['__key__']!r} and {member_key!r}")
        sample[ext] = data
    if not sample:
        raise ShardError(f"{shard_name}: indexed sample holds no file members")
    return sample


def read_sample(fh: BinaryIO, offset: int, length: int, shard_name: str, key: str) -> Sample:
    """Sample `key`, whose tar bytes are `length` bytes at `offset` of the open shard `fh` (see `parse_sample`)."""
    if fh.tell() != offset:
        fh.seek(offset)
    blob = fh.read(length)
    if len(blob) != length:
        raise ShardError(f"{shard_name}: truncated at sample {key!r}")
    return parse_sample(blob, shard_name, key)


def read_samples(
    shard: str | Path, keys: set[str], shard_name: str | None = None, *, table: list[SampleRow] | None = None
) -> Iterator[Sample]:
    """The samples with these keys that the shard holds, in tar order, found through its sample table (sidecar
    index or a header-only scan; or `table` when the caller has it): one seek and one read each."""
    shard = Path(shard)
    rows = {key: (offset, length) for key, offset, length in (table if table is not None else sample_table(shard))}
    with open(shard, "rb") as fh:
        for key in sorted(keys & rows.keys(), key=lambda k: rows[k][0]):
            yield read_sample(fh, *rows[key], shard_name or shard.name, key)
