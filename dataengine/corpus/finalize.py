"""The last step of a build: merge the task outputs into `manifest.parquet`, `quarantine.jsonl`, `stats.json`,
`recipe.lock.yaml` and the dataset card `README.md`. Every file is written atomically from task results that
are stored with the completion markers, so a resumed build rewrites the same bytes."""

from __future__ import annotations

import glob
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from dataengine import __version__
from dataengine.corpus.card import render_card
from dataengine.corpus.plan import PlanSummary, RecordSet
from dataengine.runtime.atomic import atomic_write_text
from dataengine.runtime.jobs import STATE_DIR
from dataengine.shards.grounding import MANIFEST_NAME, merge_manifests

STATS_NAME = "stats.json"
LOCK_NAME = "recipe.lock.yaml"
CARD_NAME = "README.md"
QUARANTINE_NAME = "quarantine.jsonl"


def _nested(rows: list[list], first: int, second: int) -> dict:
    out: dict = defaultdict(lambda: defaultdict(lambda: {"items": 0, "pairs": 0}))
    for row in rows:
        cell = out[row[first]][row[second]]
        cell["items"] += row[3]
        cell["pairs"] += row[4]
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def build_stats(ctx, sets: list[RecordSet], summary: PlanSummary, results: list[dict]) -> dict:
    """Deterministic counts of the finished corpus (no timings: those go to `_state/timing.json`)."""
    recipe = ctx.loaded.recipe
    breakdown = [row for r in results for row in r["breakdown"]]
    licenses: dict[str, Counter] = defaultdict(Counter)
    scan_quarantine: Counter = Counter()
    for task, res in zip(ctx.scan_tasks, ctx.scan_results, strict=True):
        name = task.payload["set_name"]
        if any(s.name == name and s.role == "source" for s in sets):
            licenses[name].update(res["licenses"])
        scan_quarantine.update(res["quarantined"])
    write_quarantine: Counter = Counter()
    for r in results:
        write_quarantine.update(r["quarantined"])
    by_source: dict[str, dict] = {s.name: {"items": 0, "pairs": 0} for s in recipe.sources}
    by_task: dict[str, dict] = {}
    for src, _split, task, items, pairs in breakdown:
        by_source[src]["items"] += items
        by_source[src]["pairs"] += pairs
        cell = by_task.setdefault(task, {"items": 0, "pairs": 0})
        cell["items"] += items
        cell["pairs"] += pairs
    shard_files = [shard for r in results for shard in r["shards"]]
    pairs = sum(r["pairs"] for r in results)
    return {
        "recipe": recipe.name,
        "version": recipe.version,
        "family": recipe.family or recipe.name,
        "seed": recipe.seed,
        "recipe_sha256": ctx.loaded.sha256,
        "engine_version": __version__,
        "target_pairs": recipe.target_pairs,
        "output_split": recipe.output_split,
        "pairs": pairs,
        "items": sum(r["items"] for r in results),
        "samples": sum(r["samples"] for r in results),
        "shards": len(shard_files),
        "bytes": sum(s[2] for s in shard_files),
        "shortfall_pairs": max(0, (recipe.target_pairs or 0) - pairs),
        "by_source": by_source,
        "by_task": dict(sorted(by_task.items())),
        "by_source_split": _nested(breakdown, 0, 1),
        "by_source_task": _nested(breakdown, 0, 2),
        "quotas": summary.quotas,
        "selection": summary.sources,
        "holdouts": summary.holdouts,
        "dedup": {
            "duplicate_items_removed": sum(v["removed_duplicate_item"] for v in summary.sources.values()),
            "merged_samples": sum(r["merged_samples"] for r in results),
            "multi_source_samples": sum(r["multi_source_samples"] for r in results),
        },
        "resize": {
            "max_image_side": recipe.max_image_side,
            "resized_images": sum(r["resized_images"] for r in results),
            "items_dropped": sum(r["items_dropped_by_resize"] for r in results),
        },
        "quarantined": {"scan": dict(sorted(scan_quarantine.items())), "write": dict(sorted(write_quarantine.items()))},
        "licenses": {k: dict(sorted(v.items())) for k, v in sorted(licenses.items())},
        "shard_files": shard_files,
    }


def lock_data(ctx) -> dict:
    """The resolved recipe plus what exactly went in: recipe file hashes and input fingerprints."""
    import hashlib

    loaded = ctx.loaded
    return {
        "engine_version": __version__,
        "recipe_sha256": loaded.sha256,
        "recipe_files": [
            {"path": str(f), "sha256": hashlib.sha256(Path(f).read_bytes()).hexdigest()} for f in loaded.files
        ],
        "recipe": loaded.resolved,
        "inputs": dict(sorted(ctx.inputs.items())),
    }


def _merge_quarantine(ctx, results_tasks: list[str]) -> int:
    lines: list[str] = []
    for task in ctx.scan_tasks:
        path = ctx.state / "scan" / f"{task.task_id}.quarantine.jsonl"
        if path.exists():
            lines += [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln]
    for task_id in results_tasks:
        path = ctx.state / "parts" / f"{task_id}.quarantine.jsonl"
        if path.exists():
            lines += [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln]
    target = ctx.out / QUARANTINE_NAME
    if lines:
        atomic_write_text(target, "\n".join(lines) + "\n")
    else:
        target.unlink(missing_ok=True)
    return len(lines)


def finalize(ctx, sets: list[RecordSet], summary: PlanSummary, results: list[dict], command: str) -> dict:
    """Write manifest, quarantine, stats, lock and card into OUT; returns the stats."""
    recipe = ctx.loaded.recipe
    outputs = (MANIFEST_NAME, QUARANTINE_NAME, STATS_NAME, LOCK_NAME, CARD_NAME)
    for name in outputs:  # temporaries left by a finalization killed half-way (all tasks are done here)
        for stale in ctx.out.glob(f"{glob.escape(name)}.tmp*"):
            if re.fullmatch(r"\.tmp\d*", stale.name[len(name) :]) and stale.is_file():
                stale.unlink()
    task_ids = [f"{recipe.output_split}-{b:05d}" for b in range(summary.n_buckets)]
    merge_manifests([ctx.out / STATE_DIR / "parts" / f"{t}.parquet" for t in task_ids], ctx.out / MANIFEST_NAME)
    _merge_quarantine(ctx, task_ids)
    stats = build_stats(ctx, sets, summary, results)
    atomic_write_text(ctx.out / STATS_NAME, json.dumps(stats, indent=1, sort_keys=True) + "\n")
    lock = yaml.safe_dump(lock_data(ctx), sort_keys=True, allow_unicode=True, width=120)
    atomic_write_text(ctx.out / LOCK_NAME, lock)
    card = render_card(recipe, ctx.loaded.path.name, ctx.loaded.sha256, stats, command)
    atomic_write_text(ctx.out / CARD_NAME, card)
    return stats
