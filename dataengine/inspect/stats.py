"""`dataengine stats`: counts and distributions of any folder of grounding/v1 tars, streaming.

Counts (samples, items and pairs by source / split / task, unique images, pairs per image) come from
`manifest.parquet` when one sits in the folder and lists exactly the tars found there; otherwise from a scan of
the `.json` members. Distributions (box sizes, target locations, trace lengths, query lengths, labels) always
come from the scan. Memory stays flat: values go into fixed histograms, and only 16 bytes per image sample are
kept (a 64-bit SHA-1 prefix and its pair count) to count unique images exactly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from dataengine.errors import InputError, ShardError
from dataengine.images import EXT_TO_FORMAT, IMAGE_EXTS
from dataengine.inspect.distributions import Distributions
from dataengine.inspect.histograms import IntCounts
from dataengine.inspect.manifest_check import usable_manifest
from dataengine.records.grounding import GroundingRecord, item_pairs, item_targets
from dataengine.shards.grounding import MANIFEST_NAME
from dataengine.shards.reader import iter_samples, list_shards

MAX_PROBLEM_EXAMPLES = 20


@dataclass
class ImagePairs:
    """Per image sample: a 64-bit prefix of the image SHA-1 and the sample's pairs (for unique images and
    pairs per unique image)."""

    chunks: list[np.ndarray] = field(default_factory=list)
    _keys: list[int] = field(default_factory=list)
    _pairs: list[int] = field(default_factory=list)

    def add(self, sha1_hex: str, pairs: int) -> None:
        self._keys.append(int(sha1_hex[:16], 16))
        self._pairs.append(pairs)
        if len(self._keys) >= 65_536:
            self.flush()

    def flush(self) -> None:
        if self._keys:
            self.chunks.append(np.array([self._keys, self._pairs], dtype=np.uint64))
            self._keys.clear()
            self._pairs.clear()

    def merge(self, other: ImagePairs) -> None:
        self.flush()
        other.flush()
        self.chunks.extend(other.chunks)

    def per_unique_image(self) -> IntCounts:
        """Pairs per unique image (summed over the samples that share it)."""
        self.flush()
        out = IntCounts()
        if self.chunks:
            keys_pairs = np.concatenate(self.chunks, axis=1)
            _, inverse = np.unique(keys_pairs[0], return_inverse=True)
            per_image = np.bincount(inverse, weights=keys_pairs[1].astype(np.float64))
            values, freq = np.unique(per_image.astype(np.int64), return_counts=True)
            out.counts.update(dict(zip(values.tolist(), freq.tolist(), strict=True)))
        return out


@dataclass
class Counts:
    """How much there is. Keys of the counters: (source, split) for samples, (source, split, task) for items."""

    samples: Counter = field(default_factory=Counter)
    items: Counter = field(default_factory=Counter)
    pairs: Counter = field(default_factory=Counter)
    targets_by_task: Counter = field(default_factory=Counter)
    text_only_samples: int = 0
    images_by_format: Counter = field(default_factory=Counter)
    pairs_per_image: IntCounts = field(default_factory=IntCounts)

    @property
    def unique_images(self) -> int:
        return self.pairs_per_image.n

    def add_record(self, record: GroundingRecord, image_pairs: ImagePairs) -> None:
        self.samples[(record.source, record.split)] += 1
        for item in record.items:
            key = (record.source, record.split, item.task)
            self.items[key] += 1
            self.pairs[key] += item_pairs(item)
            self.targets_by_task[item.task] += item_targets(item)
        if record.image is None:
            self.text_only_samples += 1
        else:
            self.images_by_format[record.image.format or "unknown"] += 1
            image_pairs.add(record.image.sha1, record.num_pairs())

    def merge(self, other: Counts) -> None:
        for name in ("samples", "items", "pairs", "targets_by_task", "images_by_format"):
            getattr(self, name).update(getattr(other, name))
        self.text_only_samples += other.text_only_samples

    def totals(self) -> dict[str, int]:
        return {
            "samples": sum(self.samples.values()),
            "text_only_samples": self.text_only_samples,
            "unique_images": self.unique_images,
            "items": sum(self.items.values()),
            "pairs": sum(self.pairs.values()),
        }


@dataclass
class ShardScan:
    """What one pass over shards found: counts, distributions, unreadable samples."""

    counts: Counts = field(default_factory=Counts)
    distributions: Distributions = field(default_factory=Distributions)
    image_pairs: ImagePairs = field(default_factory=ImagePairs)
    problems: Counter = field(default_factory=Counter)
    problem_examples: list[str] = field(default_factory=list)

    def problem(self, where: str, reason: str, detail: str) -> None:
        self.problems[reason] += 1
        if len(self.problem_examples) < MAX_PROBLEM_EXAMPLES:
            self.problem_examples.append(f"{where}: {reason}: {detail}")

    def merge(self, other: ShardScan) -> None:
        self.counts.merge(other.counts)
        self.distributions.merge(other.distributions)
        self.image_pairs.merge(other.image_pairs)
        self.problems.update(other.problems)
        room = MAX_PROBLEM_EXAMPLES - len(self.problem_examples)
        self.problem_examples.extend(other.problem_examples[: max(room, 0)])


def scan_shard(shard: Path, name: str, with_distributions: bool = True) -> ShardScan:
    """Read the `.json` member of every sample of one tar; bad samples are counted by reason, not fatal."""
    scan = ShardScan()
    try:
        for sample in iter_samples(shard, name):
            where = f"{name}:{sample['__key__']}"
            if "json" not in sample:
                scan.problem(where, "missing_json", "no .json member")
                continue
            try:
                record = GroundingRecord.from_json_bytes(sample["json"])
            except ValidationError as exc:
                first = exc.errors()[0]
                reason = "bad_json" if first["type"] == "json_invalid" else "schema_violation"
                scan.problem(where, reason, f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
                continue
            if record.image is not None and record.image.format is None:
                ext = next((e for e in sample if e in IMAGE_EXTS), None)
                record.image.format = EXT_TO_FORMAT.get(ext) if ext else None
            scan.counts.add_record(record, scan.image_pairs)
            if with_distributions:
                scan.distributions.add_record(record)
    except ShardError as exc:
        scan.problem(name, "corrupt_shard", str(exc))
    scan.distributions.flush()
    scan.image_pairs.flush()
    return scan


def _scan_task(args: tuple[str, str, bool]) -> ShardScan:
    shard, name, with_distributions = args
    return scan_shard(Path(shard), name, with_distributions)


def scan_shards(
    shards: list[tuple[Path, str]], with_distributions: bool = True, workers: int = 1, progress: bool = True
) -> ShardScan:
    """Scan shards (inline, or in `workers` processes) and merge the results in shard order."""
    from dataengine.runtime.progress import job_progress

    total = ShardScan()
    tasks = [(str(path), name, with_distributions) for path, name in shards]
    with job_progress("stats", total=len(tasks), enabled=progress) as bar:
        if workers <= 1:
            results = map(_scan_task, tasks)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            results = pool.map(_scan_task, tasks)
        try:
            for (_, name, _), scan in zip(tasks, results, strict=True):
                total.merge(scan)
                bar.advance(name)
        finally:
            if workers > 1:
                pool.shutdown(cancel_futures=True)
    total.counts.pairs_per_image = total.image_pairs.per_unique_image()
    return total


def counts_from_manifest(manifest: Path) -> Counts:
    """Counts from `manifest.parquet` (one row per item) without opening a tar."""
    import polars as pl

    frame = pl.scan_parquet(manifest)
    counts = Counts()
    by_task = frame.group_by("source", "split", "task").agg(
        pl.len().alias("items"), pl.col("n_pairs").sum().alias("pairs"), pl.col("n_targets").sum().alias("targets")
    )
    for row in by_task.collect().iter_rows(named=True):
        key = (row["source"], row["split"], row["task"])
        counts.items[key] += row["items"]
        counts.pairs[key] += row["pairs"]
        counts.targets_by_task[row["task"]] += row["targets"]
    for row in frame.group_by("source", "split").agg(pl.col("key").n_unique().alias("n")).collect().iter_rows():
        counts.samples[(row[0], row[1])] += row[2]
    text_only = frame.filter(pl.col("image_sha1").is_null()).select(pl.col("key").n_unique())
    counts.text_only_samples = int(text_only.collect().item())
    per_image = frame.filter(pl.col("image_sha1").is_not_null()).group_by("image_sha1").agg(pl.col("n_pairs").sum())
    for pairs, n in per_image.group_by("n_pairs").agg(pl.len()).collect().iter_rows():
        counts.pairs_per_image.counts[int(pairs)] += int(n)
    return counts


@dataclass
class DatasetStats:
    """Everything `dataengine stats` reports about one folder of shards."""

    path: str
    shards: int
    counts: Counts
    counts_from: str  # "manifest" | "shards"
    distributions: Distributions | None
    problems: Counter = field(default_factory=Counter)
    problem_examples: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        from dataengine.inspect.stats_report import stats_to_dict

        return stats_to_dict(self)


def compute_stats(
    path: str | Path,
    *,
    use_manifest: bool = True,
    distributions: bool = True,
    workers: int = 1,
    progress: bool = True,
) -> DatasetStats:
    """Stats of every grounding/v1 tar under `path` (a folder, searched recursively, or one tar).

    With `distributions=False` and a matching manifest, no tar is opened at all.
    """
    root = Path(path)
    shard_paths = list_shards(root)
    if not shard_paths:
        raise InputError(f"no .tar shards under {root}; expected a folder of grounding/v1 WebDataset tars")
    shards = [(p, str(p.relative_to(root)) if root.is_dir() else p.name) for p in shard_paths]
    warnings: list[str] = []
    manifest_counts = None
    if use_manifest:
        manifest, why = usable_manifest(root, [name for _, name in shards])
        warnings.extend([why] if why else [])
        manifest_counts = counts_from_manifest(manifest) if manifest is not None else None
    scan = None
    if distributions or manifest_counts is None:
        scan = scan_shards(shards, with_distributions=distributions, workers=workers, progress=progress)
    counts = manifest_counts or scan.counts
    if manifest_counts is not None and scan is not None:
        counts.images_by_format = scan.counts.images_by_format
        scanned, listed = scan.counts.totals(), manifest_counts.totals()
        if scanned != listed:
            diff = {k: (listed[k], scanned[k]) for k in listed if listed[k] != scanned[k]}
            warnings.append(f"{MANIFEST_NAME} disagrees with the shards (manifest, shards): {diff}")
    return DatasetStats(
        path=str(root),
        shards=len(shards),
        counts=counts,
        counts_from="manifest" if manifest_counts is not None else "shards",
        distributions=scan.distributions if scan is not None and distributions else None,
        problems=scan.problems if scan is not None else Counter(),
        problem_examples=scan.problem_examples if scan is not None else [],
        warnings=warnings,
    )
