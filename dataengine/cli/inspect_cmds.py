"""`dataengine validate | stats | show`: look at any folder of grounding/v1 tars."""

from __future__ import annotations

import json
from pathlib import Path

import typer

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


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
