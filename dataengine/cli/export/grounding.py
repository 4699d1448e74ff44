"""`dataengine export llava-json | hf`: grounding shards -> LLaVA / Qwen-VL fine-tuning JSONL plus images, or a
Hugging Face dataset folder (parquet + card)."""

from __future__ import annotations

from pathlib import Path

import typer

from dataengine.errors import InputError
from dataengine.runtime.logs import console


def parse_style_options(pairs: list[str]) -> dict[str, int]:
    """["max_pixels=50176", ...] -> {"max_pixels": 50176} (every style option is an integer)."""
    options: dict[str, int] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--style-option expects NAME=VALUE, got {pair!r}")
        try:
            options[name.strip()] = int(value)
        except ValueError:
            raise InputError(f"--style-option {name.strip()} needs an integer value, got {value!r}") from None
    return options


def llava_json(
    path: Path = typer.Argument(..., help="Directory of grounding/v1 .tar shards (or one .tar)."),
    out: Path = typer.Option(..., "--out", help="Output folder: annotations.jsonl, images/, export.json."),
    style: str = typer.Option(
        "qwen2.5-vl",
        "--style",
        help="Answer style (the styles and their options are listed below).",
    ),
    style_option: list[str] = typer.Option(
        [], "--style-option", help="Style option NAME=VALUE, repeatable (e.g. max_pixels=50176, decimals=4)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the question-template choice."),
    templates: Path | None = typer.Option(
        None,
        "--templates",
        help="JSON/YAML file mapping box/point/trace to lists of templates, each with {query}; default: built-in.",
    ),
    hint: bool = typer.Option(True, "--hint/--no-hint", help="Append the style's answer-format sentence."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing export in OUT."),
) -> None:
    """Write OUT/annotations.jsonl + OUT/images/ in the layout InternVLA-M1's VLM loader reads."""
    from dataengine.export.llava_json import ANNOTATIONS_NAME, export_llava_json

    report = export_llava_json(
        path,
        out,
        style=style,
        style_options=parse_style_options(style_option),
        seed=seed,
        templates=templates,
        hint=hint,
        overwrite=overwrite,
    )
    by_task = ", ".join(f"{task} {n}" for task, n in sorted(report.conversations_by_task.items())) or "none"
    console.print(
        f"wrote {report.conversations} conversations ({by_task}) from {report.records} records in "
        f"{report.shards} shards; {report.images} images ({report.images_deduplicated} references deduplicated)"
    )
    for reason, count in sorted(report.skipped.items()):
        console.print(f"  skipped {reason}: {count}")
    console.print(f"-> {out / ANNOTATIONS_NAME}  (look: head -n 3 {out / ANNOTATIONS_NAME})", highlight=False)


def hf(
    path: Path = typer.Argument(..., help="Directory of grounding/v1 .tar shards (or one .tar)."),
    out: Path = typer.Option(..., "--out", help="Output folder: data/<split>-*.parquet and README.md."),
    push_to_hub: str | None = typer.Option(
        None, "--push-to-hub", help="Also upload the folder to this Hub dataset repo (owner/name) with huggingface_hub."
    ),
    private: bool = typer.Option(False, "--private", help="Create the Hub repo as private (with --push-to-hub)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing export in OUT."),
) -> None:
    """Write a Hugging Face dataset folder (parquet shards with embedded images, splits as splits, a dataset card)
    that `datasets.load_dataset(OUT)` loads with every field."""
    from dataengine.export.hf_dataset import export_hf
    from dataengine.export.hf_dataset import push_to_hub as push

    report = export_hf(path, out, overwrite=overwrite)
    splits = ", ".join(f"{s} {n:,}" for s, n in sorted(report.rows_by_split.items()))
    console.print(f"wrote {sum(report.rows_by_split.values()):,} rows ({splits}) in {len(report.files)} files")
    console.print(f"-> {out}  (load: datasets.load_dataset({str(out)!r}))", highlight=False)
    if push_to_hub:
        console.print(f"pushed: {push(out, push_to_hub, private=private)}", highlight=False)


def _styles_epilog() -> str:
    from dataengine.formats.registry import STYLE_NAMES, style_options

    styles = [f"{name} ({', '.join(style_options(name)) or 'no options'})" for name in STYLE_NAMES]
    return "Answer styles (--style, with their --style-option names): " + "; ".join(styles) + "."


def register(app: typer.Typer) -> None:
    from dataengine.cli.groups import export_app, lazy_epilog, reads_job_folders

    export_app.command("llava-json", cls=lazy_epilog(_styles_epilog))(reads_job_folders(llava_json))
    export_app.command("hf")(reads_job_folders(hf))
