"""`dataengine fixtures SOURCE --out DIR`: write a small dataset in a source's exact upstream layout."""

from __future__ import annotations

from pathlib import Path

import typer

from dataengine.runtime.logs import console


def fixtures(
    source: str = typer.Argument(..., help="A converter source name (refcoco, roborefit, ...) or refcoco-synthetic."),
    out: Path = typer.Option(..., "--out", help="Folder to write the fixture into."),
    n: int | None = typer.Option(None, "--n", help="Number of random extra images/rows (default: the builder's)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same bytes)."),
) -> None:
    """Write a small fixture dataset (hand-made awkward cases plus N random ones) and print how to convert it."""
    from dataengine.fixtures import build_fixture

    options = {"seed": seed} if n is None else {"seed": seed, "n": n}
    info = build_fixture(source, out, **options)
    console.print(f"[green]wrote[/] {source} fixture: input {info.input_path}")
    if info.images_dir:
        console.print(f"  images: {info.images_dir}")
    for note in info.notes:
        console.print(f"  {note}")
    console.print(
        f"convert it: {info.convert_command(str(out / 'converted'))}", markup=False, highlight=False, soft_wrap=True
    )


def register(app: typer.Typer) -> None:
    app.command("fixtures")(fixtures)
