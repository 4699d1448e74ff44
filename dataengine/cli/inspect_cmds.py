"""`dataengine validate | stats | show`: look at any folder of grounding/v1 tars."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dataengine.cli.groups import reads_job_folders
from dataengine.errors import InputError
from dataengine.runtime.logs import console


def validate(
    path: Path = typer.Argument(..., help="Directory of grounding/v1 .tar shards (any writer) or one .tar."),
    decode: bool = typer.Option(False, "--decode", help="Also fully decode every image (slow)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON here."),
) -> None:
    """Check every sample against the grounding/v1 schema and its image header; exit 1 if anything is invalid."""
    from dataengine.inspect.validate import validate_path

    report = validate_path(path, decode=decode)
    data = report.to_dict()
    if json_out:
        json_out.write_text(json.dumps(data, indent=2), encoding="utf-8")
    console.print(
        f"shards {report.shards}  samples {report.samples}  valid {report.valid_samples}  pairs {report.pairs}  "
        f"items {dict(sorted(report.items_by_task.items()))}"
    )
    if report.ok:
        console.print("[green]valid[/]")
        return
    for reason, count in sorted(report.problems_by_reason.items()):
        console.print(f"[red]{reason}[/]: {count}")
    for problem in report.problems[:20]:
        console.print(f"  {problem}", markup=False, highlight=False)
    if len(report.problems) > 20:
        console.print(f"  ... {sum(report.problems_by_reason.values()) - 20} more (use --json for all)")
    raise typer.Exit(1)


def stats(
    path: Path = typer.Argument(..., help="Directory of grounding/v1 .tar shards (any writer) or one .tar."),
    plots: Path | None = typer.Option(None, "--plots", help="Write PNG charts into this directory."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the stats as JSON here."),
    counts_only: bool = typer.Option(
        False, "--counts-only", help="Skip distributions; with a manifest.parquet no tar is read at all."
    ),
    no_manifest: bool = typer.Option(False, "--no-manifest", help="Count from the tars even if a manifest exists."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes scanning shards in parallel."),
) -> None:
    """Counts by source / split / task, pairs, images, box sizes, target locations, trace lengths, top labels."""
    from dataengine.inspect.stats import compute_stats
    from dataengine.inspect.stats_report import print_stats

    result = compute_stats(path, use_manifest=not no_manifest, distributions=not counts_only, workers=workers)
    print_stats(result, console)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")
    if plots:
        from dataengine.inspect.plots import write_plots

        for chart in write_plots(result, plots):
            console.print(f"wrote {chart}")


def show(
    path: Path = typer.Argument(..., help="Directory of grounding/v1 .tar shards (any writer) or one .tar."),
    out: Path = typer.Option(Path("sheet.png"), "--out", help="PNG to write."),
    n: int = typer.Option(16, "--n", min=1, max=400, help="Number of samples to show."),
    source: str | None = typer.Option(None, "--source", help="Only samples from this source."),
    task: str | None = typer.Option(None, "--task", help="Only samples with items of this task (box, point, ...)."),
    seed: int = typer.Option(0, "--seed", help="Which samples: the same seed always picks the same ones."),
    cols: int | None = typer.Option(None, "--cols", min=1, help="Tiles per row (default: a square grid)."),
) -> None:
    """A contact sheet: images with their boxes, points and traces drawn over them, and their queries."""
    from dataengine.inspect.contact_sheet import render_sheet
    from dataengine.inspect.select import select_samples

    samples = select_samples(path, n, source=source, task=task, seed=seed)
    if not samples:
        raise InputError(f"no samples in {path} match --source {source!r} --task {task!r}")
    render_sheet(samples, out, cols=cols, task=task)
    console.print(
        f"wrote {out} ({len(samples)} samples: {', '.join(s.record.key for s in samples[:8])}"
        f"{' ...' if len(samples) > 8 else ''})",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("validate")(reads_job_folders(validate))
    app.command("stats")(reads_job_folders(stats))
    app.command("show")(reads_job_folders(show))
