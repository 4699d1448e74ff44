"""Presenting `DatasetStats`: a JSON-ready dict and Rich tables."""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from dataengine.inspect.distributions import summary
from dataengine.records.grounding import TASKS

if TYPE_CHECKING:
    from dataengine.inspect.stats import DatasetStats

TOP_LABELS = 20
# (name in Distributions.summaries(), row title in the table)
DISTRIBUTION_ROWS = [
    ("box_area_rel", "box area / image area"),
    ("box_aspect_w_over_h", "box aspect (w / h)"),
    ("box_centre_x_norm", "box centre x / W"),
    ("box_centre_y_norm", "box centre y / H"),
    ("boxes_per_item", "boxes per box item"),
    ("point_x_norm", "point x / W"),
    ("point_y_norm", "point y / H"),
    ("points_per_item", "points per point item"),
    ("points_per_trace", "points per trace"),
    ("trace_length_rel_diag", "trace length / image diagonal"),
    ("pairs_per_image", "pairs per unique image"),
    ("query_words", "words per query"),
    ("image_megapixels", "image megapixels"),
]


def task_order(tasks) -> list[str]:
    """Known tasks in their canonical order, then any others alphabetically."""
    return [t for t in TASKS if t in tasks] + sorted(t for t in tasks if t not in TASKS)


def _group(counter: Counter, index: int) -> Counter:
    out: Counter = Counter()
    for key, value in counter.items():
        out[key[index]] += value
    return out


def stats_to_dict(stats: DatasetStats) -> dict:
    """Everything in plain JSON types (sorted keys in every mapping)."""
    c = stats.counts
    tasks = task_order({k[2] for k in c.items})
    sources = sorted({k[0] for k in c.samples})
    by_source = {}
    for source in sources:
        by_source[source] = {
            "samples": sum(v for k, v in c.samples.items() if k[0] == source),
            "items": sum(v for k, v in c.items.items() if k[0] == source),
            "pairs": sum(v for k, v in c.pairs.items() if k[0] == source),
            "items_by_task": {
                t: n for t in tasks if (n := sum(v for k, v in c.items.items() if k[0] == source and k[2] == t))
            },
        }
    items_by_split, pairs_by_split = _group(c.items, 1), _group(c.pairs, 1)
    items_by_task, pairs_by_task = _group(c.items, 2), _group(c.pairs, 2)
    out = {
        "path": stats.path,
        "shards": stats.shards,
        "counts_from": stats.counts_from,
        **c.totals(),
        "image_samples": sum(c.samples.values()) - c.text_only_samples,
        "images_by_format": dict(sorted(c.images_by_format.items())),
        "by_source": by_source,
        "by_split": {
            split: {
                "samples": sum(v for k, v in c.samples.items() if k[1] == split),
                "items": items_by_split[split],
                "pairs": pairs_by_split[split],
            }
            for split in sorted(items_by_split)
        },
        "by_task": {
            t: {"items": items_by_task[t], "pairs": pairs_by_task[t], "targets": c.targets_by_task[t]} for t in tasks
        },
        "by_source_split": [
            {"source": s, "split": sp, "samples": n, "items": sum(v for k, v in c.items.items() if k[:2] == (s, sp))}
            for (s, sp), n in sorted(c.samples.items())
        ],
        "distributions": {},
        "top_labels": [],
        "problems": dict(sorted(stats.problems.items())),
        "problem_examples": stats.problem_examples,
        "warnings": stats.warnings,
    }
    dists = {"pairs_per_image": summary(c.pairs_per_image)}
    if stats.distributions is not None:
        dists.update(stats.distributions.summaries())
        out["top_labels"] = [[label, n] for label, n in stats.distributions.labels.most_common(TOP_LABELS)]
        out["unlabelled_items"] = stats.distributions.unlabelled_items
        out["labels_truncated"] = stats.distributions.labels_truncated
    out["distributions"] = dict(sorted(dists.items()))
    return out


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def print_stats(stats: DatasetStats, console: Console) -> None:
    """Overview, counts by source / split / task, distributions, top labels, problems."""
    data = stats_to_dict(stats)
    tasks = list(data["by_task"])

    shards = f"{data['shards']} shard{'s' if data['shards'] != 1 else ''}"
    overview = Table(title=f"{data['path']}  ({shards}, counts from {data['counts_from']})")
    for name in ("samples", "image samples", "text-only", "unique images", "items", "pairs"):
        overview.add_column(name, justify="right")
    overview.add_column("formats")
    overview.add_row(
        *(_fmt(data[k]) for k in ("samples", "image_samples", "text_only_samples", "unique_images", "items", "pairs")),
        ", ".join(f"{k} {v:,}" for k, v in data["images_by_format"].items()) or "-",
    )
    console.print(overview)

    table = Table(title="Items by source / split / task")
    for name in ("source", "split"):
        table.add_column(name, overflow="fold")
    for name in ("samples", *tasks, "pairs"):
        table.add_column(name, justify="right")
    c = stats.counts
    for source, split in sorted(c.samples):
        items = [c.items.get((source, split, t), 0) for t in tasks]
        pairs = sum(v for k, v in c.pairs.items() if k[:2] == (source, split))
        table.add_row(source, split, *(_fmt(v) for v in (c.samples[(source, split)], *items, pairs)))
    table.add_section()
    table.add_row(
        "total", "", *(_fmt(v) for v in (data["samples"], *(data["by_task"][t]["items"] for t in tasks), data["pairs"]))
    )
    console.print(table)

    dist = Table(title="Distributions (normalized to each image)")
    dist.add_column("quantity", overflow="fold")
    for name in ("n", "mean", "p5", "p25", "p50", "p75", "p95"):
        dist.add_column(name, justify="right")
    for name, title in DISTRIBUTION_ROWS:
        row = data["distributions"].get(name)
        if row and row["n"]:
            dist.add_row(title, *(_fmt(row[k]) for k in ("n", "mean", "p5", "p25", "p50", "p75", "p95")))
    console.print(dist)

    if data["top_labels"]:
        labelled = sum(n for _, n in stats.distributions.labels.items())
        labels = Table(title=f"Top labels ({len(stats.distributions.labels):,} distinct)")
        labels.add_column("label", overflow="fold")
        labels.add_column("items", justify="right")
        labels.add_column("share", justify="right")
        for label, n in data["top_labels"]:
            labels.add_row(label, _fmt(n), f"{100 * n / labelled:.1f}%")
        console.print(labels)

    for warning in data["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if data["problems"]:
        problems = ", ".join(f"{k} {v}" for k, v in data["problems"].items())
        console.print(f"[red]unreadable samples skipped:[/] {problems} (run `dataengine validate` for details)")
        for example in data["problem_examples"][:5]:
            console.print(f"  {example}", markup=False, highlight=False)
