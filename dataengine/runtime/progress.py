"""Rich progress bars for long jobs (tasks done, rate, ETA, job-specific text)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dataengine.runtime.logs import console_err


class _Bar:
    def __init__(self, progress: Progress | None, task_id) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, info: str = "", amount: int = 1) -> None:
        if self._progress is not None:
            self._progress.update(self._task_id, advance=amount, info=info)

    def update(self, info: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task_id, info=info)


@contextmanager
def job_progress(description: str, total: int, completed: int = 0, enabled: bool = True):
    """A progress bar on stderr; yields an object with `advance(info)` and `update(info)`."""
    if not enabled:
        yield _Bar(None, None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console_err,
        transient=False,
    )
    with progress:
        task_id = progress.add_task(description, total=total, completed=completed, info="")
        yield _Bar(progress, task_id)


class RunningTotals:
    """Sums of numbers over the growing list of results `run_tasks` gives a describer, updated with the new
    results only (summing the whole list at every finished task costs O(tasks^2): minutes at 25,000 tasks)."""

    def __init__(self, numbers: Callable[[dict], Mapping[str, float]]) -> None:
        self._numbers = numbers
        self._seen = 0
        self.totals: Counter = Counter()

    def update(self, results: Sequence[dict]) -> Counter:
        if len(results) < self._seen:  # another list: start again
            self._seen, self.totals = 0, Counter()
        for result in results[self._seen :]:
            self.totals.update(self._numbers(result))
        self._seen = len(results)
        return self.totals
