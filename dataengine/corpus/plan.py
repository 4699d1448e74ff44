"""Pass 2 of a build: from the scanned item rows, decide which items go into the corpus and where.

Order of rules, each counted per source: split filter, task filter, holdouts (by image SHA-1, then by COCO image
id), duplicate items (same image, task, query and answer: the copy in the earliest source, then lowest priority,
stays), then the quota (lowest priorities first, see `quotas`). The selected items are written, sorted by
(bucket, image group, source, key, item), to `plan.parquet`; each write task reads its bucket from it. All of it
runs on lazy Polars frames that stream from and to parquet, so the driver does not hold the records.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from dataengine.corpus.quotas import SourceDemand, allocate_quotas, bucket_count
from dataengine.corpus.recipe import Holdout, Recipe
from dataengine.errors import RecipeError

PLAN_FILE = "plan.parquet"
PLAN_ROW_GROUP = 50_000
SAMPLE_OVERHEAD_BYTES = 2 * 1024 + 400  # two tar headers, padding and the record's fixed JSON fields
ORDER = ["set_id", "priority", "key", "item_index", "shard_id", "offset"]


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


def _in(column: str, values: list | None) -> pl.Expr:
    return pl.lit(True) if values is None else pl.col(column).is_in(values)


def _held_images(recipe: Recipe, sets: list[RecordSet], scan: pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(group -> rule) and (coco_id -> rule) of every holdout; the first rule naming an image keeps it."""
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
        tagged = [f.with_columns(pl.lit(i).alias("_order")) for i, f in enumerate(frames)]
        merged = pl.concat(tagged).group_by(key).agg(pl.col("rule").sort_by("_order").first())
        return merged.collect().sort(key)

    return first_rule(by_sha1, "group", _SHA1), first_rule(by_coco, "coco_id", _COCO)


_SHA1 = {"group": pl.String, "rule": pl.String}
_COCO = {"coco_id": pl.Int64, "rule": pl.String}


def _read_list(h: Holdout, name: str, kind: type) -> list:
    value = getattr(h, name)
    if isinstance(value, list):
        return [kind(v) for v in value]
    lines = [ln.strip() for ln in Path(value).read_text(encoding="utf-8").splitlines()]
    try:
        return [kind(ln) for ln in lines if ln and not ln.startswith("#")]
    except ValueError as exc:
        raise RecipeError(f"holdouts {h.name!r}: {name} file {value} has a bad line ({exc})") from None


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


def make_plan(recipe: Recipe, sets: list[RecordSet], scan_parts: list[Path], plan_dir: Path) -> PlanSummary:
    """Compute the selection and write `plan_dir/plan.parquet`; returns the summary."""
    plan_dir.mkdir(parents=True, exist_ok=True)
    scan = pl.scan_parquet([str(p) for p in scan_parts])
    held_sha1, held_coco = _held_images(recipe, sets, scan)
    source_ids = [s.set_id for s in sets if s.role == "source"]
    names = {s.set_id: s.name for s in sets}

    flagged = (
        scan.filter(pl.col("set_id").is_in(source_ids))
        .join(held_sha1.lazy().rename({"rule": "rule_sha1"}), on="group", how="left")
        .join(held_coco.lazy().rename({"rule": "rule_coco"}), on="coco_id", how="left")
        .with_columns(_reason(recipe, sets).alias("reason"))
        .with_columns(pl.coalesce("rule_sha1", "rule_coco").alias("rule"))
    )
    removed = (
        flagged.group_by("set_id", "reason", "rule")
        .agg(pl.len().alias("items"), pl.col("n_pairs").sum().alias("pairs"))
        .collect()
        .sort("set_id", "reason", "rule", nulls_last=True)
    )
    candidates_path = plan_dir / "candidates.parquet"
    (
        flagged.filter(pl.col("reason").is_null())
        .drop("reason", "rule", "rule_sha1", "rule_coco")
        .sort("item_hash", *ORDER)
        .with_columns(pl.col("item_hash").is_first_distinct().not_().alias("duplicate"))
        .sink_parquet(candidates_path, row_group_size=PLAN_ROW_GROUP)
    )
    candidates = pl.scan_parquet(candidates_path)
    per_set = (
        candidates.group_by("set_id", "duplicate")
        .agg(pl.len().alias("items"), pl.col("n_pairs").sum().alias("pairs"))
        .collect()
        .sort("set_id", "duplicate")
    )
    sources = {s.name: _source_counts() for s in sets if s.role == "source"}
    holdouts = {h.name: {"items_by_image_sha1": 0, "items_by_coco_image_id": 0} for h in recipe.holdouts}
    for row in removed.iter_rows(named=True):
        counts = sources[names[row["set_id"]]]
        counts["scanned_items"] += row["items"]
        counts["scanned_pairs"] += row["pairs"]
        if row["reason"] is not None:
            counts[f"removed_{row['reason']}"] += row["items"]
            if row["rule"] is not None and row["reason"].startswith("holdout"):
                suffix = "image_sha1" if row["reason"] == "holdout_image_sha1" else "coco_image_id"
                holdouts[row["rule"]][f"items_by_{suffix}"] += row["items"]
    for row in per_set.iter_rows(named=True):
        counts = sources[names[row["set_id"]]]
        if row["duplicate"]:
            counts["removed_duplicate_item"] += row["items"]
        else:
            counts["available_items"] += row["items"]
            counts["available_pairs"] += row["pairs"]
    for h in holdouts:
        holdouts[h]["images"] = held_sha1.filter(pl.col("rule") == h).height
        holdouts[h]["coco_image_ids"] = held_coco.filter(pl.col("rule") == h).height

    demands = [
        SourceDemand(s.name, sources[s.name]["available_pairs"], s.effective_weight, s.pairs) for s in recipe.sources
    ]
    quotas = allocate_quotas(recipe.target_pairs, demands)
    quota_frame = pl.DataFrame(
        {"set_id": [s.set_id for s in sets if s.role == "source"], "quota": [quotas[names[i]] for i in source_ids]},
        schema={"set_id": pl.Int16, "quota": pl.Int64},
    )
    selected_path = plan_dir / "selected.parquet"
    (
        candidates.filter(~pl.col("duplicate"))
        .drop("duplicate")
        .sort(*ORDER)
        .with_columns(pl.col("n_pairs").cast(pl.Int64).cum_sum().over("set_id").alias("cum_pairs"))
        .join(quota_frame.lazy(), on="set_id", how="left")
        .filter(pl.col("cum_pairs") <= pl.col("quota"))
        .drop("cum_pairs", "quota")
        .sink_parquet(selected_path, row_group_size=PLAN_ROW_GROUP)
    )
    selected = pl.scan_parquet(selected_path)
    totals = (
        selected.group_by("group")
        .agg(pl.col("image_bytes").max(), pl.col("item_bytes").sum(), pl.len().alias("items"))
        .select(
            pl.len().alias("samples"),
            (pl.col("image_bytes") + pl.col("item_bytes") + SAMPLE_OVERHEAD_BYTES).sum().alias("est_bytes"),
        )
        .collect()
        .row(0, named=True)
    )
    by_source = selected.group_by("set_id").agg(pl.len().alias("items"), pl.col("n_pairs").sum()).collect()
    for row in by_source.iter_rows(named=True):
        sources[names[row["set_id"]]].update(selected_items=row["items"], selected_pairs=row["n_pairs"])
    by_task = selected.group_by("task").agg(pl.len().alias("items"), pl.col("n_pairs").sum()).collect().sort("task")
    tasks = {r["task"]: {"items": r["items"], "pairs": r["n_pairs"]} for r in by_task.iter_rows(named=True)}
    samples, est_bytes = int(totals["samples"] or 0), int(totals["est_bytes"] or 0)
    shard_cfg = recipe.shards
    n_buckets = bucket_count(samples, est_bytes, shard_cfg.max_samples, shard_cfg.max_bytes, shard_cfg.min_shards)
    (
        selected.with_columns(
            ((pl.col("group").str.slice(0, 8).str.to_integer(base=16).cast(pl.Int64) * n_buckets) // (1 << 32))
            .cast(pl.Int32)
            .alias("bucket")
        )
        .sort("bucket", "group", "set_id", "key", "item_index", "shard_id", "offset")
        .sink_parquet(plan_dir / PLAN_FILE, row_group_size=PLAN_ROW_GROUP, statistics=True)
    )
    candidates_path.unlink()
    selected_path.unlink()
    pairs = sum(v["selected_pairs"] for v in sources.values())
    summary = PlanSummary(
        target_pairs=recipe.target_pairs,
        n_buckets=n_buckets,
        samples=samples,
        items=sum(v["selected_items"] for v in sources.values()),
        pairs=pairs,
        est_bytes=est_bytes,
        quotas=quotas,
        sources=sources,
        holdouts=holdouts,
        tasks=tasks,
        shortfall_pairs=max(0, (recipe.target_pairs or 0) - pairs),
    )
    (plan_dir / "summary.json").write_text(json.dumps(summary.to_dict(), sort_keys=True, indent=1), encoding="utf-8")
    return summary


def _source_counts() -> dict:
    keys = ["scanned_items", "scanned_pairs", "removed_split_filter", "removed_task_filter"]
    keys += ["removed_holdout_image_sha1", "removed_holdout_coco_image_id", "removed_duplicate_item"]
    keys += ["available_items", "available_pairs", "selected_items", "selected_pairs"]
    return dict.fromkeys(keys, 0)


def read_bucket(plan_dir: Path, bucket: int) -> pl.DataFrame:
    """The plan rows of one bucket (row groups of other buckets are skipped by their statistics)."""
    return pl.scan_parquet(plan_dir / PLAN_FILE).filter(pl.col("bucket") == bucket).collect()
