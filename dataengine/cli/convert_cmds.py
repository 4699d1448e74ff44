"""`dataengine convert SOURCE --input PATH --out DIR`: one public source -> grounding/v1 shards (docs/converters.md)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from dataengine.converters.files import DEFAULT_MAX_ANNOTATION_MB, DEFAULT_MAX_IMAGE_MB, InputLimits
from dataengine.converters.registry import CONVERTERS
from dataengine.runtime.logs import console

SOURCES = ", ".join(CONVERTERS)


def parse_options(pairs: list[str]) -> dict:
    """`NAME=VALUE` pairs -> {name: value}, values read as YAML scalars or lists (`3`, `true`, `[front, wrist]`)."""
    import yaml

    from dataengine.errors import InputError

    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"option {pair!r} is not NAME=VALUE")
        options[name.strip()] = yaml.safe_load(value) if value.strip() else None
    return options


def convert(
    source: str = typer.Argument(..., help=f"Source: {SOURCES}."),
    input_path: Path = typer.Option(..., "--input", help="The source's data root or file (layouts below)."),
    out: Path = typer.Option(..., "--out", help="Output folder (empty, or a conversion to --resume)."),
    images: Path | None = typer.Option(None, "--images", help="Image folder (refcoco*, robopoint, pixmo-points)."),
    split_by: str | None = typer.Option(
        None, "--split-by", help="RefCOCO split scheme: unc | umd | google (default: unc; umd for refcocog)."
    ),
    splits: str | None = typer.Option(None, "--splits", help="Comma-separated splits to keep, e.g. train,val."),
    limit: int | None = typer.Option(None, "--limit", help="First N images (grouped sources) or rows (others)."),
    workers: int | None = typer.Option(None, "--workers", help="Parallel Ray tasks (0: inline; default: CPUs)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address (default: local Ray)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted conversion in OUT."),
    keep_text_only: bool = typer.Option(
        False, "--keep-text-only", help="llava-onevision / robopoint: keep rows without an image (image: null)."
    ),
    follow_symlinks: bool = typer.Option(
        False,
        "--follow-symlinks",
        help="Read files that symlinks lead to outside --input / --images (default: refuse).",
    ),
    max_image_mb: float = typer.Option(
        DEFAULT_MAX_IMAGE_MB, "--max-image-mb", min=0, help="Quarantine image files larger than this."
    ),
    max_annotation_mb: float = typer.Option(
        DEFAULT_MAX_ANNOTATION_MB, "--max-annotation-mb", min=0, help="Refuse annotation files larger than this."
    ),
    option: list[str] = typer.Option(
        [], "--option", help="A source option NAME=VALUE (repeatable; each source's options are listed below)."
    ),
    verify_images: bool = typer.Option(
        False,
        "--verify-images",
        help="Decode each JPEG once to catch files cut short with their end marker put "
        "back (about 2 ms a COCO image; the default checks read headers only).",
    ),
) -> None:
    """Convert a public grounding source into grounding/v1 shards, a manifest, quarantine.jsonl and a report."""
    from dataengine.converters.report import report_table
    from dataengine.converters.runner import run_conversion
    from dataengine.runtime.logs import setup_logging

    setup_logging()
    started = time.monotonic()
    report = run_conversion(
        source,
        input_path,
        out,
        images_dir=images,
        split_by=split_by,
        splits=[s.strip() for s in splits.split(",") if s.strip()] if splits else None,
        limit=limit,
        workers=workers,
        ray_address=ray_address,
        resume=resume,
        keep_text_only=keep_text_only,
        source_options=parse_options(option),
        limits=InputLimits(follow_symlinks, max_image_mb, max_annotation_mb),
        verify_images=verify_images,
    )
    seconds = time.monotonic() - started
    console.print(report_table(report))
    console.print(
        f"[green]converted[/] {report['written_samples']:,} samples ({report['pairs']:,} pairs) in {seconds:.1f}s "
        f"into {out}\nreport: {out / 'convert_report.json'}  quarantine: {out / 'quarantine.jsonl'}  "
        f"check: dataengine validate {out}  look: dataengine show {out} --out sheet.png"
    )


def _layouts_epilog() -> str:
    from dataengine.converters.registry import layouts_epilog

    return layouts_epilog()


def register(app: typer.Typer) -> None:
    from dataengine.cli.groups import lazy_epilog

    app.command("convert", cls=lazy_epilog(_layouts_epilog))(convert)
