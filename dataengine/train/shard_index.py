"""Random access into WebDataset tars: where each sample starts and how long it is, and reading one sample.

Shards written by the engine carry a sidecar index (`<shard>.idx.json`: key, byte offset, byte length per sample);
tars from other tools are scanned once (headers only, data blocks are skipped). Reading a sample is one seek and one
read of its bytes, parsed with `tarfile`; the loader never decodes what it only skips.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from dataengine.errors import ShardError
from dataengine.shards import index_path, list_shards
from dataengine.shards.reader import split_member_name

TAR_BLOCK = 512


@dataclass
class ShardEntry:
    """One tar: its path, the name used in loader states (relative to the shard-set root) and its sample table."""

    path: Path
    name: str
    keys: list[str]
    offsets: list[int]
    lengths: list[int]
    units: list[int] = field(default_factory=list)  # training units per sample (1 for grounding, steps for actions)

    def __len__(self) -> int:
        return len(self.keys)


def scan_tar(path: Path) -> list[tuple[str, int, int]]:
    """(key, offset, length) per sample by reading tar headers only."""
    table: list[list] = []
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = split_member_name(member.name)
                if parts is None:
                    raise ShardError(f"{path.name}: member {member.name!r} has no extension (not WebDataset)")
                end = member.offset_data + (member.size + TAR_BLOCK - 1) // TAR_BLOCK * TAR_BLOCK
                if table and table[-1][0] == parts[0]:
                    table[-1][2] = end
                else:
                    table.append([parts[0], member.offset, end])
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ShardError(f"{path.name}: unreadable tar ({exc})") from exc
    return [(key, start, end - start) for key, start, end in table]


def load_entry(path: Path, name: str) -> ShardEntry:
    """The sample table of one shard: from its sidecar index when present and consistent, else by scanning."""
    table = None
    sidecar = index_path(path)
    if sidecar.exists():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
            rows = [(str(k), int(o), int(n)) for k, o, n in data["index"]]
            if rows and rows[-1][1] + rows[-1][2] <= path.stat().st_size:
                table = rows
        except (ValueError, KeyError, TypeError):
            table = None  # a broken sidecar is not fatal: scan instead
    if table is None:
        table = scan_tar(path)
    return ShardEntry(path, name, [k for k, _, _ in table], [o for _, o, _ in table], [n for _, _, n in table])


def load_shard_set(root: str | Path) -> list[ShardEntry]:
    """Entries of every tar under `root` (a directory or one tar), sorted by path; names relative to `root`."""
    root = Path(root)
    shards = list_shards(root)
    if not shards:
        raise ShardError(f"no .tar shards under {root}")
    return [load_entry(p, str(p.relative_to(root)) if root.is_dir() else p.name) for p in shards]


def _ustar_members(blob: bytes) -> list[tuple[str, bytes]] | None:
    """(name, data) of plain USTAR file members (what the engine writes); None when anything else appears (PAX or
    GNU long-name headers, links...), so the caller falls back to `tarfile`."""
    members, offset, view = [], 0, memoryview(blob)
    while offset + TAR_BLOCK <= len(blob):
        header = blob[offset : offset + TAR_BLOCK]
        if header == _ZERO_BLOCK:
            break
        # POSIX ustar only (GNU tars reuse the prefix field for times): regular files only
        if header[257:263] != b"ustar\0" or header[156:157] not in (b"0", b"\0"):
            return None
        try:
            size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        except ValueError:
            return None
        name = header[0:100].split(b"\0", 1)[0]
        prefix = header[345:500].split(b"\0", 1)[0]
        full = (prefix + b"/" + name if prefix else name).decode("utf-8", "surrogateescape")
        start = offset + TAR_BLOCK
        if start + size > len(blob):
            return None
        members.append((full, bytes(view[start : start + size])))
        offset = start + (size + TAR_BLOCK - 1) // TAR_BLOCK * TAR_BLOCK
    return members


_ZERO_BLOCK = bytes(TAR_BLOCK)


def parse_sample_bytes(blob: bytes, shard_name: str) -> dict:
    """The members of one sample's tar bytes -> {"__key__", ext: bytes}. Plain USTAR headers are parsed directly
    (the fast path); anything else goes through `tarfile`."""
    members = _ustar_members(blob)
    if members is None:
        return _parse_with_tarfile(blob, shard_name)
    sample: dict = {}
    for name, data in members:
        parts = split_member_name(name)
        if parts is None:
            raise ShardError(f"{shard_name}: member {name!r} has no extension")
        key, ext = parts
        if sample.setdefault("__key__", key) != key:
            raise ShardError(f"{shard_name}: index entry mixes samples {sample['__key__']!r} and {key!r}")
        sample[ext] = data
    if "__key__" not in sample:
        raise ShardError(f"{shard_name}: indexed sample holds no file members")
    sample["__shard__"] = shard_name
    return sample


def _parse_with_tarfile(blob: bytes, shard_name: str) -> dict:
    sample: dict = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = split_member_name(member.name)
                if parts is None:
                    raise ShardError(f"{shard_name}: member {member.name!r} has no extension")
                key, ext = parts
                if sample.setdefault("__key__", key) != key:
                    raise ShardError(f"{shard_name}: index entry mixes samples {sample['__key__']!r} and {key!r}")
                fileobj = tar.extractfile(member)
                sample[ext] = fileobj.read() if fileobj is not None else b""
    except (tarfile.TarError, EOFError) as exc:
        raise ShardError(f"{shard_name}: cannot read sample at its indexed offset ({exc})") from exc
    if "__key__" not in sample:
        raise ShardError(f"{shard_name}: indexed sample holds no file members")
    sample["__shard__"] = shard_name
    return sample


class ShardReader:
    """Reads samples by (shard, index) with a few open file handles (sequential reads stay sequential)."""

    def __init__(self, entries: list[ShardEntry], max_open: int = 4) -> None:
        self.entries = entries
        self.max_open = max_open
        self._files: dict[int, io.BufferedReader] = {}

    def read(self, shard_i: int, sample_i: int) -> dict:
        entry = self.entries[shard_i]
        fh = self._files.pop(shard_i, None)
        if fh is None:
            if len(self._files) >= self.max_open:
                oldest = next(iter(self._files))
                self._files.pop(oldest).close()
            fh = open(entry.path, "rb")  # noqa: SIM115 - kept open across reads, closed in close()
        self._files[shard_i] = fh  # most recently used last
        offset, length = entry.offsets[sample_i], entry.lengths[sample_i]
        if fh.tell() != offset:
            fh.seek(offset)
        blob = fh.read(length)
        if len(blob) != length:
            raise ShardError(f"{entry.name}: truncated at sample {entry.keys[sample_i]!r}")
        return parse_sample_bytes(blob, entry.name)

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()

    def __getstate__(self):  # file handles do not travel to data-loader workers
        return {"entries": self.entries, "max_open": self.max_open, "_files": {}}
