"""The root Typer app. Command modules are listed once here; each exposes `register(app)`."""

from __future__ import annotations

import importlib
import sys

import typer

from dataengine.cli.groups import export_app, sim_app
from dataengine.errors import DataEngineError

app = typer.Typer(
    name="dataengine",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Spatial grounding data engine: convert grounding datasets, build corpora, "
    "generate simulated demos and train a VLA.",
)

# Each module registers its commands; add a new command group by adding its module here.
COMMAND_MODULES: list[str] = [
    "dataengine.cli.inspect_cmds",
    "dataengine.cli.export_cmds",
    "dataengine.cli.build_cmds",
    "dataengine.cli.convert_cmds",
    "dataengine.cli.fixtures_cmds",
    "dataengine.cli.sim_cmds",
    "dataengine.cli.rewrite_cmds",
    "dataengine.cli.train_cmds",
    "dataengine.cli.lerobot_cmds",
    "dataengine.cli.sim_outputs_cmds",
    "dataengine.cli.usd_cmds",
    "dataengine.cli.demo",
]


def _register_all() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)
    app.add_typer(sim_app, name="sim")
    app.add_typer(export_app, name="export")


_register_all()


def main() -> None:
    """Console-script entry: run the app, turning engine errors into a message and an exit code."""
    from dataengine.runtime.logs import console_err

    try:
        app()
    except DataEngineError as exc:
        console_err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
