"""Command groups shared by several CLI modules (`dataengine sim ...`, `dataengine export ...`) and helpers the
command modules share."""

import functools
import inspect
from collections.abc import Callable

import typer
from typer.core import TyperCommand

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


def lazy_epilog(build: Callable[[], str]) -> type[TyperCommand]:
    """A command class whose `--help` epilog is `build()`, called only when the help is shown (so the CLI starts
    without importing the registries an epilog lists)."""

    class LazyEpilogCommand(TyperCommand):
        @property
        def epilog(self) -> str:
            return build()

        @epilog.setter
        def epilog(self, value: str | None) -> None:  # click sets it in __init__; the property wins
            pass

    return LazyEpilogCommand
