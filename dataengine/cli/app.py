"""The root Typer app. Command modules are listed once here; each exposes `register(app)`."""

from __future__ import annotations

import errno
import importlib
import shlex
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

# One module per top-level command, one package per command group (`sim`, `export`); each registers its
# commands. Add a new one here (a new command of a group goes into its package).
COMMAND_MODULES: list[str] = [
    "dataengine.cli.inspect_cmds",
    "dataengine.cli.export",
    "dataengine.cli.build_cmds",
    "dataengine.cli.convert_cmds",
    "dataengine.cli.fixtures_cmds",
    "dataengine.cli.sim",
    "dataengine.cli.rewrite_cmds",
    "dataengine.cli.train_cmds",
    "dataengine.cli.demo",
]


def _register_all() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)
    app.add_typer(sim_app, name="sim")
    app.add_typer(export_app, name="export")


_register_all()


def main() -> None:
    """Console-script entry: run the app, turning engine errors and file-system errors into one message and an
    exit code (2 refused input or options, 73 output not writable, 74 other I/O error, 75 folder in use)."""
    from dataengine.runtime.jobs import set_command
    from dataengine.runtime.logs import console_err

    set_command(shlex.join(["dataengine", *sys.argv[1:]]))
    try:
        app()
    except DataEngineError as exc:
        console_err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        console_err.print(f"[bold red]error:[/] {describe_os_error(exc)}", highlight=False, markup=True)
        sys.exit(73 if exc.errno in _CANNOT_WRITE else 74)
    finally:
        set_command(None)


_CANNOT_WRITE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def describe_os_error(exc: OSError) -> str:
    """One line for a file-system error: what failed, on which path."""
    where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "") if exc.filename else "a file"
    verb = "cannot write" if exc.errno in _CANNOT_WRITE else "cannot access"
    return f"{verb} {where}: {exc.strerror or exc}"


if __name__ == "__main__":
    main()
