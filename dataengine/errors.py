"""One root exception type for the package; the CLI turns these into clear messages and exit codes."""

from __future__ import annotations


class DataEngineError(Exception):
    """Root of every error the engine raises on purpose (bad input, bad config, missing extra)."""

    exit_code = 2


class InputError(DataEngineError):
    """The input itself is unusable (missing root, wrong layout, unreadable file)."""


class RecordError(DataEngineError):
    """A record does not satisfy its schema."""


class RecipeError(DataEngineError):
    """A recipe or task spec is invalid (unknown key, missing input, bad value)."""


class ShardError(DataEngineError):
    """A shard is corrupt, truncated or not a WebDataset tar."""


class UnsafePickleError(InputError):
    """A pickle tried to build something other than plain containers and scalars."""


class JobStateError(DataEngineError):
    """An output directory holds a different or unfinished job, or files that are not a job's."""


class JobLockedError(JobStateError):
    """Another run is writing to the same output directory right now."""

    exit_code = 75  # EX_TEMPFAIL: try again when the other run has finished


class OutputError(DataEngineError):
    """The output cannot be written (a read-only or full file system, missing permissions)."""

    exit_code = 73  # EX_CANTCREAT


class MissingDependencyError(DataEngineError):
    """An optional dependency is not installed; the message names the install command."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'dataengine[{extra}]'"
        )
        self.package = package
        self.extra = extra


def require(module: str, extra: str, purpose: str):
    """Import an optional module or raise MissingDependencyError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
