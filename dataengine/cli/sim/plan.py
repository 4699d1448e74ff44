"""`dataengine sim plan`: core-hours, wall time, disk, retries and Ray settings of a `sim generate` run."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dataengine.cli import cluster_opts as opts
from dataengine.runtime.logs import console


def plan(
    recipe: Path = typer.Argument(..., help="Simulation recipe YAML, e.g. recipes/sim/pick_place.yaml."),
    episodes: int = typer.Option(..., "--episodes", min=1, help="Episodes the run is to generate."),
    nodes: int | None = opts.NODES,
    cpus_per_node: int | None = opts.CPUS_PER_NODE,
    gpus_per_node: int = opts.GPUS_PER_NODE,
    core_speed: float = opts.CORE_SPEED,
    preemptions: float = opts.PREEMPTIONS,
    calibration: Path | None = typer.Option(
        None, "--calibration", help="Per-episode costs measured before (e.g. on an RTX node); default: measure now."
    ),
    calibration_episodes: int = typer.Option(6, "--calibration-episodes", min=2, help="Episodes to measure."),
    save_calibration: Path | None = typer.Option(None, "--save-calibration", help="Write the measured costs here."),
    out: str = typer.Option("/shared/OUT", "--out", help="Output folder of the run (for the printed commands)."),
    no_render: bool = typer.Option(False, "--no-render", help="Plan a physics-only run."),
    rewriter: str | None = typer.Option(None, "--rewriter", help="Instruction rewriter (default: the recipe's)."),
    backend: str | None = typer.Option(None, "--backend", help="Simulator backend (default: the recipe's)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the plan as JSON here."),
) -> None:
    """Measure what an episode costs (a few episodes, inline) and print the budget of a run on a cluster."""
    from dataengine.runtime.logs import setup_logging
    from dataengine.sim.cluster_plan import load_or_calibrate, plan_generate, plan_text
    from dataengine.sim.recipe import load_recipe

    setup_logging()
    spec = load_recipe(recipe, backend=backend)
    rewriter = rewriter or spec.rewriter
    cluster = opts.make_cluster(nodes, cpus_per_node, gpus_per_node, core_speed, preemptions)
    if calibration is None:
        console.print(f"calibrating: {calibration_episodes} episodes of {spec.name}, inline on this machine ...")
    cal = load_or_calibrate(spec, calibration, calibration_episodes, not no_render, rewriter)
    if save_calibration is not None:
        cal.save(save_calibration)
    result = plan_generate(spec, episodes, cluster, cal, out=out, recipe_path=str(recipe))
    for line in plan_text(result):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    from dataengine.cli.groups import sim_app

    sim_app.command("plan")(plan)
