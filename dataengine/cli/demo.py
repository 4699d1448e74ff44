"""`dataengine demo --out DIR`: simulated demos, a grounding corpus and a short training run, on CPU defaults."""

from __future__ import annotations

from pathlib import Path

import typer

from dataengine.runtime.logs import console


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Output folder (rerun the command to resume)."),
    episodes: int | None = typer.Option(None, "--episodes", min=1, help="Simulated episodes (default: recipe's)."),
    train_steps: int | None = typer.Option(None, "--train-steps", min=1, help="Steps per training stage."),
    no_train: bool = typer.Option(False, "--no-train", help="Stop after the corpus."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Local Ray workers (default: all cores)."),
    recipes: Path | None = typer.Option(None, "--recipes", help="recipes/ folder (default: the checkout's)."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda for the training run."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the engine end to end on embedded defaults (MuJoCo on CPU, offline rewriter, no downloads)."""
    from dataengine.demo import run_demo
    from dataengine.runtime.logs import setup_logging

    setup_logging(verbose)
    result = run_demo(
        out,
        episodes=episodes,
        train_steps=train_steps,
        train=not no_train,
        workers=workers,
        recipes_dir=recipes,
        device=device,
    )
    _print_summary(result)


def _print_summary(result) -> None:
    out = result.out
    sim, corpus, train = (result.steps.get(k, {}) for k in ("sim", "corpus", "train"))
    console.rule("[bold]dataengine demo: done")
    assets = result.steps.get("assets")
    if assets:
        console.print(
            f"[bold]{out / 'assets'}[/]: {assets.get('imported', '?')} of robosuite's textured objects imported "
            f"({assets.get('from_cache', 0)} from the cache) in {result.seconds.get('assets')} s; the episodes pick "
            "and place them",
            highlight=False,
        )
    console.print(
        f"[bold]{out / 'sim'}[/]: {sim.get('episodes_written', '?')} validated, rendered episodes "
        f"({sim.get('attempts', '?')} attempts) in {result.seconds.get('sim')} s",
        highlight=False,
    )
    console.print(
        f"[bold]{out / 'corpus'}[/]: {corpus.get('samples', '?')} samples, {corpus.get('pairs', '?')} pairs "
        f"in {result.seconds.get('corpus')} s",
        highlight=False,
    )
    probe = result.steps.get("probe")
    if probe:
        low, high = probe["success_ci95"]
        console.print(
            f"[bold]{out / 'probe'}[/]: the state policy trained on these {probe['train_episodes']} episodes "
            f"picks and places {probe['successes']}/{probe['episodes']} of their layouts closed loop "
            f"(95% CI {low:.0%}-{high:.0%}) in {result.seconds.get('probe')} s",
            highlight=False,
        )
    if train:
        losses = ", ".join(f"{stage} {a} -> {b}" for stage, (a, b) in train.get("losses", {}).items())
        console.print(
            f"[bold]{out / 'train'}[/]: {train.get('steps')} steps ({losses}) in {result.seconds.get('train')} s",
            highlight=False,
        )
        for name, value in sorted(train.get("metrics", {}).items()):
            console.print(f"    {name}: {value}", highlight=False)
        console.print(
            "    (a loop check, not a model: minutes on 16 fixture images teach the answer format, not where things "
            "are; docs/training.md has the ladder to a policy that picks and places from camera frames)",
            highlight=False,
        )
    console.print("\nLook at it:")
    for line in (
        f"dataengine show {out / 'corpus'} --n 16 --out {out / 'sheet.png'}",
        f"dataengine stats {out / 'corpus'} --plots {out / 'plots'}",
        f"dataengine validate {out / 'corpus'}",
        f"dataengine sim preview {out / 'sim'} --episode <KEY from {out / 'sim' / 'manifest.parquet'}> "
        f"--out {out / 'episode.gif'} --labels",
        f"dataengine export llava-json {out / 'corpus'} --out {out / 'llava'} --style qwen2.5-vl",
        f"dataengine export lerobot {out / 'sim'} --out {out / 'lerobot'}",
        f"dataengine train eval {out / 'train'}",
        f"dataengine sim probe {out / 'sim'} --eval-episodes 20   # the probe on new layouts",
    ):
        console.print(f"  {line}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
