"""Choosing samples to look at, deterministically, from any folder of grounding/v1 tars.

A sample's rank is SHA-1(seed, key): the `n` lowest-ranked samples that pass the filters are chosen. The rank
does not depend on shard order or on how the samples are found, so the same seed picks the same samples whether
they are looked up through `manifest.parquet` and the sidecar indexes (fast: only the chosen samples are read)
or by streaming every tar (no manifest, or one that does not match the tars).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from pathlib import Path

from pydantic import ValidationError

from dataengine.errors import DataEngineError, InputError, ShardError
from dataengine.inspect.manifest_check import usable_manifest
from dataengine.shards.grounding import GroundingSample, decode_sample
from dataengine.shards.index import read_samples
from dataengine.shards.reader import iter_samples, list_shards

log = logging.getLogger(__name__)


def sample_rank(key: str, seed: int) -> bytes:
    """Order in which samples are picked: a hash of (seed, key), independent of where the sample lives."""
    return hashlib.sha1(f"{seed}\0{key}".encode(), usedforsecurity=False).digest()


def matches(sample: GroundingSample, source: str | None, task: str | None) -> bool:
    record = sample.record
    if source is not None and record.source != source:
        return False
    return task is None or any(item.task == task for item in record.items)


def select_samples(
    path: str | Path, n: int, *, source: str | None = None, task: str | None = None, seed: int = 0
) -> list[GroundingSample]:
    """Up to `n` samples passing the filters, in rank order (see the module docstring)."""
    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    root = Path(path)
    shards = list_shards(root)
    if not shards:
        raise InputError(f"no .tar shards under {root}; expected a folder of grounding/v1 WebDataset tars")
    names = {(str(p.relative_to(root)) if root.is_dir() else p.name): p for p in shards}
    manifest, why = usable_manifest(root, list(names))
    if why:
        log.warning(why)
    if manifest is not None:
        chosen = _select_with_manifest(manifest, names, n, source, task, seed)
        if chosen is not None:
            return chosen
    problems: list[str] = []
    chosen = _select_by_scan(names, n, source, task, seed, problems)
    if not chosen and problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ShardError(f"no readable samples in {root}: {problems[0]}{more}; `dataengine validate {root}` lists them")
    return chosen


def _select_by_scan(
    shards: dict[str, Path], n: int, source: str | None, task: str | None, seed: int, problems: list[str]
) -> list[GroundingSample]:
    """Stream every tar, keeping the n best-ranked matches (a record is parsed only if its rank could enter).
    Corrupt shards and unreadable samples are skipped and described in `problems`."""
    heap: list[tuple[bytes, int, GroundingSample]] = []  # a max-heap on rank: entries hold the reversed rank
    tie = 0
    for name, shard in shards.items():
        try:
            for raw in iter_samples(shard, name):
                rank = sample_rank(raw["__key__"].rsplit("/", 1)[-1], seed)  # a folder prefix is not in record.key
                if len(heap) == n and rank >= _reverse(heap[0][0]):
                    continue
                try:
                    sample = decode_sample(raw)
                except (ValidationError, DataEngineError) as exc:
                    log.debug("skipping unreadable sample %s:%s (%s)", name, raw["__key__"], exc)
                    problems.append(f"{name}:{raw['__key__']}: unreadable record")
                    continue
                if not matches(sample, source, task):
                    continue
                tie += 1
                entry = (_reverse(rank), tie, sample)
                if len(heap) < n:
                    heapq.heappush(heap, entry)
                else:
                    heapq.heapreplace(heap, entry)
        except ShardError as exc:
            log.warning("skipping the rest of %s: %s", name, exc)
            problems.append(str(exc))
    return [sample for _, _, sample in sorted(heap, key=lambda e: _reverse(e[0]))]


def _reverse(rank: bytes) -> bytes:
    """Bytes that sort in the opposite order (its own inverse)."""
    return bytes(255 - b for b in rank)


def _select_with_manifest(
    manifest: Path, shards: dict[str, Path], n: int, source: str | None, task: str | None, seed: int
) -> list[GroundingSample] | None:
    """Rank the manifest's keys, then read only the chosen samples. None when the manifest does not match."""
    import polars as pl

    frame = pl.scan_parquet(manifest)
    if source is not None:
        frame = frame.filter(pl.col("source") == source)
    if task is not None:
        frame = frame.filter(pl.col("task") == task)
    rows = frame.select("key", "shard").unique().collect().iter_rows()
    by_name = {Path(name).name: name for name in shards}
    best = heapq.nsmallest(n, ((sample_rank(key, seed), key, shard) for key, shard in rows))
    wanted: dict[str, set[str]] = {}
    for _, key, shard in best:
        name = shard if shard in shards else by_name.get(shard)
        if name is None:
            log.warning("%s lists shard %s, which is not here; streaming the tars instead", manifest.name, shard)
            return None
        wanted.setdefault(name, set()).add(key)
    found: dict[str, GroundingSample] = {}
    try:
        for name, keys in wanted.items():
            for raw in read_samples(shards[name], keys, name):
                found[raw["__key__"]] = decode_sample(raw)
    except (ShardError, ValidationError) as exc:
        log.warning("reading the chosen samples failed (%s); streaming the tars instead", exc)
        return None
    missing = [key for _, key, _ in best if key not in found]
    if missing:
        log.warning("%s lists keys not in the tars (%s ...); streaming the tars instead", manifest.name, missing[0])
        return None
    return [found[key] for _, key, _ in best]
