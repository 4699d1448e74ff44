"""The conversion report: task results merged into `convert_report.json`, and its summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataengine import __version__
from dataengine.converters.base import Converter, ConvertOptions
from dataengine.runtime.atomic import atomic_output

REPORT_NAME = "convert_report.json"
REPORT_SCHEMA = "convert_report/v1"


def merge_quarantine(parts: list[Path], path: Path) -> Path:
    """Concatenate the per-task quarantine parts in task order (temporary name, then rename)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as out:
        for part in parts:
            if part.exists():
                out.write(part.read_bytes())
    return path


def _add(total: dict, part: dict) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value


def _merge_decisions(total: dict, part: dict) -> None:
    for name, entries in part.items():
        total.setdefault(name, {}).update(entries)


def build_report(converter: Converter, options: ConvertOptions, results: list[dict]) -> dict[str, Any]:
    """Totals over every task (read / written / quarantined by reason / skipped / counts / decisions / splits).
    Deterministic: no timings, no worker count, so reruns and resumed runs give the same file."""
    quarantined: dict[str, int] = {}
    skipped: dict[str, int] = {}
    counts: dict[str, int] = {}
    items_by_task: dict[str, int] = {}
    decisions: dict[str, Any] = {}
    per_split: dict[str, dict[str, int]] = {}
    shards: list[dict] = []
    for result in results:
        _add(quarantined, result["quarantined"])
        _add(skipped, result["skipped"])
        _add(counts, result["counts"])
        _add(items_by_task, result["items_by_task"])
        _merge_decisions(decisions, result["decisions"])
        for split, values in result["per_split"].items():
            _add(per_split.setdefault(split, {}), values)
        shards.extend(result["shards"])
    per_task = [
        {
            "task_id": r["task_id"],
            "read": r["read"],
            "samples": r["samples"],
            "pairs": r["pairs"],
            "quarantined": sum(r["quarantined"].values()),
        }
        for r in results
    ]
    return {
        "schema": REPORT_SCHEMA,
        "engine_version": __version__,
        "source": converter.name,
        "license": converter.license,
        "input": options.input_path,
        "options": {**options.to_dict(), "split_by": converter.split_by},  # the scheme used, default included
        "split_by": converter.split_by,
        "tasks": len(results),
        "read": sum(r["read"] for r in results),
        "written_samples": sum(r["samples"] for r in results),
        "written_items": sum(items_by_task.values()),
        "pairs": sum(r["pairs"] for r in results),
        "items_by_task": dict(sorted(items_by_task.items())),
        "quarantined": sum(quarantined.values()),
        "quarantined_by_reason": dict(sorted(quarantined.items())),
        "skipped_by_reason": dict(sorted(skipped.items())),
        "counts": dict(sorted(counts.items())),
        "decisions": decisions,
        "per_split": {k: dict(sorted(v.items())) for k, v in sorted(per_split.items())},
        "per_task": per_task,
        "shards": len(shards),
        "shard_bytes": sum(s["bytes"] for s in shards),
    }


def report_table(report: dict[str, Any]):
    """A Rich table summarizing a report (what the CLI prints)."""
    from rich.table import Table

    table = Table(title=f"convert {report['source']} ({report['tasks']} tasks, {report['shards']} shards)")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("records read", str(report["read"]))
    table.add_row("samples written", str(report["written_samples"]))
    table.add_row("items written", str(report["written_items"]))
    table.add_row("pairs", str(report["pairs"]))
    for task, n in report["items_by_task"].items():
        table.add_row(f"  items: {task}", str(n))
    for split, values in report["per_split"].items():
        table.add_row(f"  split {split}", f"{values.get('samples', 0)} samples / {values.get('pairs', 0)} pairs")
    table.add_row("quarantined", str(report["quarantined"]), style="yellow" if report["quarantined"] else None)
    for reason, n in report["quarantined_by_reason"].items():
        table.add_row(f"  {reason}", str(n), style="yellow")
    for reason, n in report["skipped_by_reason"].items():
        table.add_row(f"skipped: {reason}", str(n))
    for name, n in report["counts"].items():
        table.add_row(name, str(n))
    for name, entries in report["decisions"].items():
        for key, value in sorted(entries.items()):
            table.add_row(f"decision {name}", f"{key}: {value}")
    return table
