"""`dataengine train RECIPE --out DIR` and `dataengine train eval CHECKPOINT`: the thin training module.

`train` is a group whose first argument is either a sub-command (`eval`, `run`) or a recipe path; a recipe path
is routed to `run`, so both `dataengine train RECIPE ...` and `dataengine train eval CKPT ...` work. torch is
imported only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.core import TyperGroup

from dataengine.cli.groups import reads_job_folders
from dataengine.runtime.logs import console


class _RecipeOrCommandGroup(TyperGroup):
    """Routes `train RECIPE ...` to `train run RECIPE ...` when RECIPE is not a sub-command name."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx) -> list[str]:
        return ["RECIPE --out DIR [OPTIONS]  |  eval CHECKPOINT [OPTIONS]"]


train_app = typer.Typer(
    cls=_RecipeOrCommandGroup,
    no_args_is_help=True,
    help="Train the dual-system VLA (two-stage ST4VLA recipe): `dataengine train RECIPE --out DIR`, "
    "`dataengine train eval CHECKPOINT`.",
)


def _print_metrics(metrics: dict) -> None:
    shown = {k: v for k, v in metrics.items() if k != "grounding_examples"}
    for key, value in shown.items():
        text = f"{value:.4f}" if isinstance(value, float) else json.dumps(value) if isinstance(value, dict) else value
        console.print(f"  {key}: {text}", highlight=False)


@train_app.command("run")
@reads_job_folders
def run(
    recipe: Path = typer.Argument(..., help="Training recipe YAML, e.g. recipes/train/demo.yaml."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints, logs, metrics (resumed if present)."),
    data: Path | None = typer.Option(None, "--data", help="Folder the recipe's data paths are relative to."),
    steps: int | None = typer.Option(None, "--steps", min=0, help="Steps of each stage (overrides the recipe)."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: the recipe's; auto)."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Data-loader workers (overrides the recipe)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the latest checkpoint in --out."),
    evaluate: bool = typer.Option(True, "--eval/--no-eval", help="Evaluate at the end (grounding, closed loop)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train a recipe: stage 1 spatial pre-training, stage 2 co-training with the action expert."""
    from dataengine.runtime.logs import setup_logging

    setup_logging(verbose)
    from dataengine.train import load_recipe, train

    overrides: dict = {}
    if steps is not None:
        overrides.update({"stage1.steps": steps, "stage2.steps": steps})
    if device is not None:
        overrides["device"] = device
    if workers is not None:
        overrides["data.num_workers"] = workers
    result = train(load_recipe(recipe, overrides), out, data_root=data, resume=resume, evaluate=evaluate)
    for stage, losses in result.losses.items():
        if losses:
            console.print(f"{stage}: {len(losses)} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}", highlight=False)
    if result.resumed_from is not None:
        console.print(f"resumed from step {result.resumed_from}")
    console.print(f"step {result.step} in {result.wall_s:.1f} s; checkpoint {result.checkpoint}", highlight=False)
    if result.metrics:
        console.print("evaluation:")
        _print_metrics(result.metrics)
    console.print(f"logs: {out / 'logs' / 'train.csv'}, {out / 'logs' / 'gradient_conflict.csv'}", highlight=False)
    console.print(f"evaluate again: dataengine train eval {out}", highlight=False)


@train_app.command("eval")
@reads_job_folders
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint folder, or a run folder (its latest checkpoint)."),
    grounding: Path | None = typer.Option(None, "--grounding", help="Held-out grounding shards to score."),
    sim: str | None = typer.Option(None, "--sim", help="Sim recipe for closed-loop evaluation."),
    episodes: int | None = typer.Option(None, "--episodes", min=0, help="Closed-loop episodes."),
    sim_split: str | None = typer.Option(
        None, "--sim-split", help="seen, unseen or all: object/container split of the layouts (default: recipe's)."
    ),
    samples: int | None = typer.Option(None, "--samples", min=0, help="Grounding items to score."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Grounding accuracy on held-out shards and closed-loop success in the simulator."""
    from dataengine.runtime.logs import setup_logging

    setup_logging(verbose)
    from dataengine.train import evaluate_checkpoint

    if sim is not None and episodes is None:
        episodes = 10
    metrics = evaluate_checkpoint(
        checkpoint,
        grounding=grounding,
        sim_recipe=sim,
        episodes=episodes,
        samples=samples,
        sim_split=sim_split,
        device=device,
    )
    console.print(f"checkpoint {metrics['checkpoint']} (step {metrics['step']}):", highlight=False)
    _print_metrics(metrics)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
