"""Whether a job folder is finished: the read side of the job state that `runtime.jobs` writes.

A job folder holds `_state/job.json` from its first moment and `_state/complete.json` only once everything it
writes is in place (the marker is written last). Readers (validate, stats, show, the exports, build, train, the
simulator tools) call `require_complete` through `shards.list_shards`: a folder whose job is unfinished is refused
with the command that finishes it, unless reading incomplete folders was asked for explicitly
(`--allow-incomplete`), which is then said loudly. Folders without job state (tars from other tools) are read as
they are. Standard library only: readers need neither Ray nor Rich.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dataengine.errors import JobStateError

log = logging.getLogger(__name__)

STATE_DIR = "_state"
JOB_FILE = "job.json"
COMPLETE_FILE = "complete.json"
BUILD_FILE = "build.json"
ALLOW_FLAG = "--allow-incomplete"

_allow_incomplete = False
_warned: set[str] = set()


class IncompleteJobError(JobStateError):
    """A folder holds a job that has not finished: its files are not the whole dataset."""


@dataclass(frozen=True)
class UnfinishedJob:
    folder: Path
    job: str
    done: int
    total: int
    command: str | None

    def describe(self) -> str:
        return f"{self.folder} holds an unfinished {self.job!r} job ({self.done} of {self.total} tasks done)"

    def finish_hint(self) -> str:
        if self.command:
            return f"finish it with: {resume_command(self.command)}"
        return "finish it by rerunning the command that started it with --resume"


def resume_command(command: str) -> str:
    """The command line that finishes an interrupted job started by `command`."""
    words = command.split()
    if "--resume" in words or (len(words) > 1 and words[1] in ("demo", "rewrite")):  # these resume on a rerun
        return command
    return command + " --resume"


def unfinished_job(folder: Path) -> UnfinishedJob | None:
    """The unfinished job of one folder, or None (no job state, or a finished job)."""
    state = folder / STATE_DIR
    started_files = [state / JOB_FILE, state / BUILD_FILE]  # a corpus build records itself before its first job
    if (state / COMPLETE_FILE).is_file() or not any(f.is_file() for f in started_files):
        return None
    info = _read_json(state / JOB_FILE)
    started = info or _read_json(state / BUILD_FILE)
    done_dir = state / "done"
    done = sum(1 for _ in done_dir.glob("*.json")) if done_dir.is_dir() else 0
    name = str(info.get("job") or ("build" if started else "unknown"))
    return UnfinishedJob(folder, name, done, len(info.get("tasks", [])), started.get("command"))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def unfinished_jobs(path: str | Path) -> list[UnfinishedJob]:
    """Unfinished jobs of `path` (a folder or a file inside one) and of the job folders below it; state folders
    below `path` (conversion caches, scans) belong to their job and are not searched."""
    path = Path(path)
    root = path if path.is_dir() else path.parent
    found = [job for job in [unfinished_job(root)] if job is not None]
    if path.is_dir():
        for dirpath, dirnames, _ in os.walk(path):
            if dirpath != str(path) and STATE_DIR in dirnames:
                job = unfinished_job(Path(dirpath))
                if job is not None:
                    found.append(job)
            dirnames[:] = sorted(d for d in dirnames if d != STATE_DIR)
    return found


def require_complete(path: str | Path, allow_incomplete: bool | None = None) -> None:
    """Refuse a folder holding an unfinished job (IncompleteJobError naming the command that finishes it); with
    `allow_incomplete` (or inside `incomplete_allowed()`), warn loudly instead."""
    allowed = _allow_incomplete if allow_incomplete is None else allow_incomplete
    for job in unfinished_jobs(path):
        if not allowed:
            raise IncompleteJobError(
                f"{job.describe()}: its files are not the whole dataset; {job.finish_hint()} "
                f"(or pass {ALLOW_FLAG} to read what is there anyway)"
            )
        if str(job.folder) not in _warned:
            _warned.add(str(job.folder))
            log.warning("READING AN INCOMPLETE FOLDER (%s): %s; every count and output is partial", ALLOW_FLAG,
                        job.describe())  # fmt: skip


@contextmanager
def incomplete_allowed(allow: bool = True) -> Iterator[None]:
    """Within this block, readers read unfinished job folders (with a warning) instead of refusing them."""
    global _allow_incomplete
    before, _allow_incomplete = _allow_incomplete, allow
    try:
        yield
    finally:
        _allow_incomplete = before
