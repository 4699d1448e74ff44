"""Command groups shared by several CLI modules (`dataengine sim ...`, `dataengine export ...`)."""

import typer

sim_app = typer.Typer(no_args_is_help=True, help="Simulated pick-and-place demonstrations (MuJoCo by default).")
export_app = typer.Typer(no_args_is_help=True, help="Export shards to formats other tools read.")
