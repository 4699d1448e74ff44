"""`dataengine sim export-usd`: the scenes of a simulation recipe as USD stages for Isaac Sim (usd-core only)."""

from __future__ import annotations

from pathlib import Path

import typer

from dataengine.runtime.logs import console


def export_usd(
    recipe: Path = typer.Argument(..., help="Simulation recipe YAML, e.g. recipes/sim/pick_place_demo.yaml."),
    out: Path = typer.Option(..., "--out", help="Output folder: <episode key>.usda per layout and stages.json."),
    episodes: int | None = typer.Option(None, "--episodes", min=1, help="Export episodes 0..N-1 (default: recipe's)."),
    seed: int | None = typer.Option(None, "--seed", help="Override the recipe's seed."),
    validate: bool = typer.Option(
        True,
        "--validate/--no-validate",
        help="Run the MuJoCo physics search as `sim generate` does (the exact generated scenes); "
        "--no-validate takes the first layout the sampler accepts (no physics, no MuJoCo needed).",
    ),
    robot_usd: str | None = typer.Option(
        None,
        "--robot-usd",
        help="Franka USD to reference (default: $DATAENGINE_FRANKA_USD, else Isaac Sim 5.1's "
        "Isaac/Robots/FrankaRobotics/FrankaPanda/franka.usd on NVIDIA's asset server).",
    ),
    reference: bool = typer.Option(
        False, "--reference", help="Add the robot as a reference instead of a payload (payloads load lazily)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace stages already exported in OUT."),
) -> None:
    """Write one deterministic .usda stage per episode layout: table, objects and container with physics,
    materials, lights, cameras with intrinsics, and the Franka robot asset."""
    from dataengine.runtime.logs import setup_logging
    from dataengine.sim.recipe import load_recipe
    from dataengine.sim.usd.export import INDEX_NAME, export_recipe_usd

    setup_logging()
    spec = load_recipe(recipe, seed=seed)
    report = export_recipe_usd(
        spec,
        out,
        episodes=episodes,
        validate=validate,
        robot_usd=robot_usd,
        robot_arc="reference" if reference else "payload",
        overwrite=overwrite,
    )
    kind = "physics-validated" if validate else "sampled (not physics-validated)"
    console.print(f"wrote {len(report.stages)} {kind} stages -> {out}  (index: {out / INDEX_NAME})", highlight=False)
    console.print(f"robot asset: {report.robot_usd}", highlight=False, markup=False)
    if report.failures:
        console.print("failed attempts: " + ", ".join(f"{k} {v}" for k, v in report.failures.items()))
    if report.lost:
        console.print(f"[yellow]{len(report.lost)} episodes found no valid layout: {report.lost}[/]")


def register(app: typer.Typer) -> None:
    from dataengine.cli.groups import sim_app

    sim_app.command("export-usd")(export_usd)
