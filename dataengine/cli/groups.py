"""Command groups shared by several CLI modules (`dataengine sim ...`, `dataengine export ...`)."""

import functools
import inspect
from collections.abc import Callable

import typer

sim_app = typer.Typer(no_args_is_help=True, help="Simulated pick-and-place demonstrations (MuJoCo by default).")
export_app = typer.Typer(no_args_is_help=True, help="Export shards to formats other tools read.")


def reads_job_folders(command: Callable) -> Callable:
    """Give a command that reads job output folders the `--allow-incomplete` option: without it a folder whose job
    has not finished is refused (`runtime.completion`); with it the folder is read with a loud warning."""
    from dataengine.runtime.completion import incomplete_allowed

    option = typer.Option(
        False,
        "--allow-incomplete",
        help="Read a folder whose job has not finished (partial data; a warning says so). Default: refuse it.",
    )

    @functools.wraps(command)
    def wrapper(*args, allow_incomplete: bool = False, **kwargs):
        with incomplete_allowed(allow_incomplete):
            return command(*args, **kwargs)

    signature = inspect.signature(command)
    extra = inspect.Parameter("allow_incomplete", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=bool)
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), extra])
    return wrapper
