"""Pass 2 of a build: from the scanned item rows, decide which items go into the corpus and where.

Order of rules, each counted per source: split filter, task filter, holdouts (by image SHA-1, then by COCO image
id), duplicate items (same image, task, query and answer: the copy in the earliest source, then lowest priority,
stays), then the quota (lowest priorities first, see `quotas`).

Flat memory: rows are first re-partitioned by image hash range into `P` partition files (one scan part in memory
at a time). An item's duplicates share its image, so dedup and per-image statistics are exact within a partition;
the quota cut-off only needs a histogram of priorities per source (65,536 bins) plus the few rows of each source's
boundary bin. The driver so holds one partition (about `ROWS_PER_PARTITION` rows) at a time, whatever the corpus
size. The selected rows of partition `p` are written to `selected-<p>.parquet` sorted by (image, source, key,
item); write tasks read the partitions that overlap their bucket (buckets are hash ranges too).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from dataengine.corpus.quotas import SourceDemand, allocate_quotas, bucket_count
from dataengine.corpus.recipe import Holdout, Recipe
from dataengine.corpus.scan import SCAN_SCHEMA
from dataengine.errors import RecipeError

ROWS_PER_PARTITION = 250_000
BIN_SHIFT = 48  # priority bins: the top 16 bits
N_BINS = 1 << (64 - BIN_SHIFT)
SAMPLE_OVERHEAD_BYTES = 2 * 1024 + 400  # two tar headers, padding and the record's fixed JSON fields
ORDER = ["priority", "key", "item_index", "shard_id", "offset"]  # a total order of a source's items
SAMPLE_ORDER = ["group", "set_id", "key", "item_index", "shard_id", "offset"]  # items inside output samples
_SHA1 = {"group": pl.String, "rule": pl.String}
_COCO = {"coco_id": pl.Int64, "rule": pl.String}
_ID = ["set_id", "shard_id", "offset", "item_index"]


@dataclass(frozen=True)
class RecordSet:
    """Records of one recipe source or holdout input, with the global ids of its shards."""

    set_id: int
    name: str
    role: str  # "source" | "holdout"
    shard_dir: str
    shards: list[str]
    first_shard_id: int


@dataclass
class PlanSummary:
    """What the plan decided; JSON-able and deterministic (it goes into stats.json)."""

    target_pairs: int | None
    n_buckets: int
    n_partitions: int
    samples: int
    items: int
    pairs: int
    est_bytes: int
    quotas: dict[str, int]
    sources: dict[str, dict] = field(default_factory=dict)  # per source: scanned, removed_*, available, selected
    holdouts: dict[str, dict] = field(default_factory=dict)  # per rule: images, coco_ids, items removed by match
    tasks: dict[str, dict] = field(default_factory=dict)  # per task: items, pairs selected
    shortfall_pairs: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def hash_range_part(column: str, n: int) -> pl.Expr:
    """The partition (or bucket) of a 40-hex group id: its first 32 bits scaled to [0, n)."""
    prefix = pl.col(column).str.slice(0, 8).str.to_integer(base=16).cast(pl.Int64)
    return ((prefix * n) // (1 << 32)).cast(pl.Int32)


def partitions_of_bucket(bucket: int, n_buckets: int, n_parts: int) -> range:
    """Partitions whose hash range overlaps the bucket's (both are ranges of the 32-bit group prefix)."""
    first = -(-bucket * (1 << 32) // n_buckets)  # smallest prefix in the bucket
    last = -(-(bucket + 1) * (1 << 32) // n_buckets) - 1
    return range(first * n_parts >> 32, (last * n_parts >> 32) + 1)


def _in(column: str, values: list | None) -> pl.Expr:
    return pl.lit(True) if values is None else pl.col(column).is_in(values)


def _read_list(h: Holdout, name: str, kind: type) -> list:
    value = getattr(h, name)
    if isinstance(value, list):
        return [kind(v) for v in value]
    lines = [ln.strip() for ln in Path(value).read_text(encoding="utf-8").splitlines()]
    try:
        return [kind(ln) for ln in lines if ln and not ln.startswith("#")]
    except ValueError as exc:
        raise RecipeError(f"holdouts {h.name!r}: {name} file {value} has a bad line ({exc})") from None


def held_images(recipe: Recipe, sets: list[RecordSet], scan: pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(group -> rule) and (coco_id -> rule) of every holdout (small: eval sets); the first rule naming an image
    keeps it."""
    by_sha1: list[pl.LazyFrame] = []
    by_coco: list[pl.LazyFrame] = []
    holdout_sets = {s.name: s.set_id for s in sets if s.role == "holdout"}
    source_sets = {s.name: s.set_id for s in sets if s.role == "source"}
    for h in recipe.holdouts:
        if h.sources is not None or h.from_ is not None:
            ids = [source_sets[n] for n in h.sources] if h.sources is not None else [holdout_sets[h.name]]
            rows = scan.filter(pl.col("set_id").is_in(ids) & pl.col("has_image") & _in("split", h.splits))
            if "image_sha1" in h.match:
                by_sha1.append(rows.select(pl.col("group"), pl.lit(h.name).alias("rule")))
            if "coco_image_id" in h.match:
                by_coco.append(rows.select(pl.col("coco_id"), pl.lit(h.name).alias("rule")).drop_nulls("coco_id"))
        elif h.coco_image_ids is not None:
            ids = _read_list(h, "coco_image_ids", int)
            by_coco.append(pl.LazyFrame({"coco_id": ids, "rule": [h.name] * len(ids)}, schema=_COCO))
        else:
            sha1s = [s.lower() for s in _read_list(h, "image_sha1s", str)]
            by_sha1.append(pl.LazyFrame({"group": sha1s, "rule": [h.name] * len(sha1s)}, schema=_SHA1))

    def first_rule(frames: list[pl.LazyFrame], key: str, schema: dict) -> pl.DataFrame:
        if not frames:
            return pl.DataFrame(schema=schema)
        tagged = [f.unique().with_columns(pl.lit(i).alias("_order")) for i, f in enumerate(frames)]
        merged = pl.concat(tagged).group_by(key).agg(pl.col("rule").sort_by("_order").first())
        return merged.collect(engine="streaming").sort(key)

    return first_rule(by_sha1, "group", _SHA1), first_rule(by_coco, "coco_id", _COCO)


def _reason(recipe: Recipe, sets: list[RecordSet]) -> pl.Expr:
    """Why an item is removed before dedup (null when it is kept)."""
    split_ok = pl.lit(True)
    task_ok = pl.lit(True)
    for s in sets:
        if s.role != "source":
            continue
        src = recipe.source(s.name)
        split_ok = pl.when(pl.col("set_id") == s.set_id).then(_in("split", src.splits)).otherwise(split_ok)
        task_ok = pl.when(pl.col("set_id") == s.set_id).then(_in("task", src.tasks)).otherwise(task_ok)
    return (
        pl.when(~split_ok)
        .then(pl.lit("split_filter"))
        .when(~task_ok)
        .then(pl.lit("task_filter"))
        .when(pl.col("rule_sha1").is_not_null())
        .then(pl.lit("holdout_image_sha1"))
        .when(pl.col("rule_coco").is_not_null())
        .then(pl.lit("holdout_coco_image_id"))
        .otherwise(pl.lit(None, pl.String))
    )


def _source_counts() -> dict:
    keys = ["scanned_items", "scanned_pairs", "removed_split_filter", "removed_task_filter"]
    keys += ["removed_holdout_image_sha1", "removed_holdout_coco_image_id", "removed_duplicate_item"]
    keys += ["available_items", "available_pairs", "selected_items", "selected_pairs"]
    return dict.fromkeys(keys, 0)


def _partition(scan_parts: list[Path], source_ids: list[int], n_parts: int, plan_dir: Path) -> list[Path]:
    """Rewrite the training sources' rows into `n_parts` files by image hash range, one scan part at a time."""
    paths = [plan_dir / f"partition-{p:05d}.parquet" for p in range(n_parts)]
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for part in scan_parts:
            frame = pl.read_parquet(part).filter(pl.col("set_id").is_in(source_ids))
            if frame.is_empty():
                continue
            frame = frame.with_columns(hash_range_part("group", n_parts).alias("_part"))
            for (p,), sub in frame.partition_by("_part", as_dict=True, maintain_order=True).items():
                table = sub.drop("_part").to_arrow()
                if p not in writers:
                    writers[p] = pq.ParquetWriter(paths[p], table.schema)
                writers[p].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()
    for p, path in enumerate(paths):
        if p not in writers:
            pl.DataFrame(schema=SCAN_SCHEMA).write_parquet(path)
    return paths


def make_plan(recipe: Recipe, sets: list[RecordSet], scan_parts: list[Path], plan_dir: Path) -> PlanSummary:
    """Compute the selection and write `plan_dir/selected-*.parquet` and `summary.json`; returns the summary."""
    plan_dir.mkdir(parents=True, exist_ok=True)
    held_sha1, held_coco = held_images(recipe, sets, pl.scan_parquet([str(p) for p in scan_parts]))
    source_ids = [s.set_id for s in sets if s.role == "source"]
    names = {s.set_id: s.name for s in sets}
    total_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in scan_parts)
    n_parts = max(1, math.ceil(total_rows / ROWS_PER_PARTITION))
    partitions = _partition(scan_parts, source_ids, n_parts, plan_dir)

    sources = {s.name: _source_counts() for s in sets if s.role == "source"}
    holdouts = {h.name: {"items_by_image_sha1": 0, "items_by_coco_image_id": 0} for h in recipe.holdouts}
    hist = np.zeros((max(names) + 1, N_BINS), dtype=np.int64)
    reason = _reason(recipe, sets)
    candidates = []
    for p, path in enumerate(partitions):  # pass A: filters, holdouts, dedup, priority histogram
        rows = (
            pl.read_parquet(path)
            .join(held_sha1.rename({"rule": "rule_sha1"}), on="group", how="left")
            .join(held_coco.rename({"rule": "rule_coco"}), on="coco_id", how="left")
            .with_columns(reason.alias("reason"), pl.coalesce("rule_sha1", "rule_coco").alias("rule"))
        )
        removed = rows.group_by("set_id", "reason", "rule").agg(pl.len().alias("items"), pl.col("n_pairs").sum())
        for r in removed.iter_rows(named=True):
            counts = sources[names[r["set_id"]]]
            counts["scanned_items"] += r["items"]
            counts["scanned_pairs"] += r["n_pairs"]
            if r["reason"] is not None:
                counts[f"removed_{r['reason']}"] += r["items"]
                if r["reason"].startswith("holdout"):
                    suffix = "image_sha1" if r["reason"] == "holdout_image_sha1" else "coco_image_id"
                    holdouts[r["rule"]][f"items_by_{suffix}"] += r["items"]
        kept = (
            rows.filter(pl.col("reason").is_null())
            .drop("reason", "rule", "rule_sha1", "rule_coco")
            .sort("item_hash", "set_id", *ORDER)
            .with_columns(pl.col("item_hash").is_first_distinct().alias("first"))
        )
        for r in kept.filter(~pl.col("first")).group_by("set_id").len().iter_rows():
            sources[names[r[0]]]["removed_duplicate_item"] += r[1]
        kept = kept.filter(pl.col("first")).drop("first")
        kept = kept.with_columns((pl.col("priority") // (1 << BIN_SHIFT)).cast(pl.Int32).alias("bin"))
        by_bin = kept.group_by("set_id", "bin").agg(pl.col("n_pairs").sum(), pl.len().alias("items"))
        for set_id, bin_, pairs, items in by_bin.iter_rows():
            hist[set_id, bin_] += pairs
            sources[names[set_id]]["available_items"] += items
            sources[names[set_id]]["available_pairs"] += pairs
        candidates.append(plan_dir / f"candidates-{p:05d}.parquet")
        kept.write_parquet(candidates[-1])
        path.unlink()
    for h in holdouts:
        holdouts[h]["images"] = held_sha1.filter(pl.col("rule") == h).height
        holdouts[h]["coco_image_ids"] = held_coco.filter(pl.col("rule") == h).height

    demands = [
        SourceDemand(s.name, sources[s.name]["available_pairs"], s.effective_weight, s.pairs) for s in recipe.sources
    ]
    quotas = allocate_quotas(recipe.target_pairs, demands)
    cutoff_bins, boundary = _cutoffs(sets, quotas, hist, candidates)

    samples = est_bytes = 0
    by_task: dict[str, list[int]] = {}
    for p, path in enumerate(candidates):  # pass B: the quota cut, per-image statistics, sorted output
        rows = pl.read_parquet(path)
        chosen = rows.join(boundary, on=_ID, how="left").with_columns(
            (
                (pl.col("bin") < pl.col("set_id").replace_strict(cutoff_bins, return_dtype=pl.Int32))
                | pl.col("_boundary").fill_null(False)
            ).alias("_take")
        )
        selected = chosen.filter("_take").drop("_take", "_boundary", "bin").sort(*SAMPLE_ORDER)
        per_group = selected.group_by("group").agg(pl.col("image_bytes").max(), pl.col("item_bytes").sum())
        samples += per_group.height
        est_bytes += int(per_group["image_bytes"].sum() + per_group["item_bytes"].sum())
        est_bytes += SAMPLE_OVERHEAD_BYTES * per_group.height
        for set_id, items, pairs in selected.group_by("set_id").agg(pl.len(), pl.col("n_pairs").sum()).iter_rows():
            sources[names[set_id]]["selected_items"] += items
            sources[names[set_id]]["selected_pairs"] += pairs
        for task, items, pairs in selected.group_by("task").agg(pl.len(), pl.col("n_pairs").sum()).iter_rows():
            cell = by_task.setdefault(task, [0, 0])
            cell[0] += items
            cell[1] += pairs
        selected.write_parquet(plan_dir / f"selected-{p:05d}.parquet")
        path.unlink()

    shard_cfg = recipe.shards
    n_buckets = bucket_count(samples, est_bytes, shard_cfg.max_samples, shard_cfg.max_bytes, shard_cfg.min_shards)
    pairs = sum(v["selected_pairs"] for v in sources.values())
    summary = PlanSummary(
        target_pairs=recipe.target_pairs,
        n_buckets=n_buckets,
        n_partitions=n_parts,
        samples=samples,
        items=sum(v["selected_items"] for v in sources.values()),
        pairs=pairs,
        est_bytes=est_bytes,
        quotas=quotas,
        sources=sources,
        holdouts=holdouts,
        tasks={t: {"items": v[0], "pairs": v[1]} for t, v in sorted(by_task.items())},
        shortfall_pairs=max(0, (recipe.target_pairs or 0) - pairs),
    )
    (plan_dir / "summary.json").write_text(json.dumps(summary.to_dict(), sort_keys=True, indent=1), encoding="utf-8")
    return summary


def _cutoffs(
    sets: list[RecordSet], quotas: dict[str, int], hist: np.ndarray, candidates: list[Path]
) -> tuple[dict[int, int], pl.DataFrame]:
    """Per source, the priority bin below which every item is taken, and the taken rows of the bin the quota
    ends in (its items in priority order, while the running pair count fits the quota)."""
    cutoff_bins: dict[int, int] = {}
    boundary_bins: dict[int, tuple[int, int, int]] = {}  # set_id -> (bin, pairs before it, quota)
    for s in sets:
        if s.role != "source":
            continue
        cumulative = np.cumsum(hist[s.set_id])
        quota = quotas[s.name]
        if cumulative[-1] <= quota:
            cutoff_bins[s.set_id] = N_BINS  # everything
            continue
        bin_ = int(np.searchsorted(cumulative, quota, side="right"))  # first bin whose running total exceeds
        cutoff_bins[s.set_id] = bin_
        boundary_bins[s.set_id] = (bin_, int(cumulative[bin_ - 1]) if bin_ else 0, quota)
    schema = {"set_id": pl.Int16, "shard_id": pl.Int32, "offset": pl.Int64, "item_index": pl.Int32}
    if not boundary_bins:
        return cutoff_bins, pl.DataFrame(schema=schema).with_columns(pl.lit(True).alias("_boundary"))
    wanted = pl.lit(False)
    for set_id, (bin_, _, _) in boundary_bins.items():
        wanted = wanted | ((pl.col("set_id") == set_id) & (pl.col("bin") == bin_))
    rows = pl.scan_parquet([str(p) for p in candidates]).filter(wanted).collect(engine="streaming")
    taken = []
    for set_id, (_, before, quota) in sorted(boundary_bins.items()):
        in_bin = rows.filter(pl.col("set_id") == set_id).sort(*ORDER)
        running = before + in_bin["n_pairs"].cast(pl.Int64).cum_sum()
        taken.append(in_bin.filter(running <= quota).select(_ID))
    frame = pl.concat(taken) if taken else pl.DataFrame(schema=schema)
    return cutoff_bins, frame.with_columns(pl.lit(True).alias("_boundary"))


def read_bucket(plan_dir: Path, bucket: int, n_buckets: int, n_parts: int) -> pl.DataFrame:
    """The plan rows of one bucket, sorted by (image, source, key, item): from the partitions overlapping it."""
    frames = [
        pl.read_parquet(plan_dir / f"selected-{p:05d}.parquet").filter(hash_range_part("group", n_buckets) == bucket)
        for p in partitions_of_bucket(bucket, n_buckets, n_parts)
    ]
    return pl.concat(frames)
