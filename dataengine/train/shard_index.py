"""The training view of a shard set: per shard its sample table (`shards.index`) plus training units per sample,
and a reader that fetches samples by (shard, index) with a few open files. The loader never decodes what it skips.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from dataengine.errors import ShardError
from dataengine.shards import list_shards
from dataengine.shards.index import read_sample, sample_table


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


def load_entry(path: Path, name: str) -> ShardEntry:
    """The sample table of one shard: from its sidecar index when present and consistent, else by scanning."""
    table = sample_table(path)
    return ShardEntry(path, name, [k for k, _, _ in table], [o for _, o, _ in table], [n for _, _, n in table])


def load_shard_set(root: str | Path) -> list[ShardEntry]:
    """Entries of every tar under `root` (a directory or one tar), sorted by path; names relative to `root`."""
    root = Path(root)
    shards = list_shards(root)
    if not shards:
        raise ShardError(f"no .tar shards under {root}")
    return [load_entry(p, str(p.relative_to(root)) if root.is_dir() else p.name) for p in shards]


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
        return read_sample(fh, offset, length, entry.name, entry.keys[sample_i])

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()

    def __getstate__(self):  # file handles do not travel to data-loader workers
        return {"entries": self.entries, "max_open": self.max_open, "_files": {}}
