"""A fixed list of tasks run on Ray with completion markers: the resume and retry machinery of every job.

State lives under `OUT/_state/`:
- `job.json`: job name, fingerprint of the configuration, the ordered task ids;
- `done/<task_id>.json`: the task's result, written atomically by the driver after the task returned.
Task outputs are files in OUT named `<task_id>-*` or `<task_id>.*` (plus `OUT/_state/parts/<task_id>.*`), written
under temporary names and renamed by the task. A task without a marker is cleaned and run again, so a job killed
at any moment and resumed produces exactly the files of an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataengine.errors import DataEngineError, JobStateError
from dataengine.runtime.progress import job_progress

log = logging.getLogger(__name__)

STATE_DIR = "_state"
TaskFn = Callable[["Task", Path], dict]


@dataclass(frozen=True)
class Task:
    """One unit of work: a filename-safe id (prefix of every output file it writes) and a JSON-able payload."""

    task_id: str
    payload: dict = field(default_factory=dict)


class JobFailedError(DataEngineError):
    """A task failed after its retries; finished tasks keep their markers, so `--resume` continues."""


class JobState:
    """Completion markers of one job in `OUT/_state/`."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.state_dir = self.out_dir / STATE_DIR
        self.done_dir = self.state_dir / "done"
        self.parts_dir = self.state_dir / "parts"

    @property
    def job_file(self) -> Path:
        return self.state_dir / "job.json"

    def begin(self, job_name: str, fingerprint: str, task_ids: Sequence[str], resume: bool) -> None:
        """Record the job, or check that a resumed job is the same one."""
        if len(set(task_ids)) != len(task_ids):
            raise JobStateError(f"{job_name}: task ids are not unique")
        if self.job_file.exists():
            existing = json.loads(self.job_file.read_text(encoding="utf-8"))
            same = existing.get("fingerprint") == fingerprint and existing.get("tasks") == list(task_ids)
            if not resume:
                raise JobStateError(
                    f"{self.out_dir} already holds a {existing.get('job')!r} job; pass --resume to continue it "
                    "or choose an empty output directory"
                )
            if not same:
                raise JobStateError(
                    f"{self.out_dir} holds a job with a different configuration (fingerprint "
                    f"{existing.get('fingerprint')!r} != {fingerprint!r}); resume needs the same inputs and options"
                )
        else:
            if resume:
                log.info("nothing to resume in %s; starting a new job", self.out_dir)
            elif self.out_dir.exists() and any(p.name != STATE_DIR for p in self.out_dir.iterdir()):
                raise JobStateError(
                    f"{self.out_dir} is not empty and holds no job state; choose an empty output directory"
                )
            self.done_dir.mkdir(parents=True, exist_ok=True)
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(
                self.job_file,
                json.dumps({"job": job_name, "fingerprint": fingerprint, "tasks": list(task_ids)}, indent=1),
            )
        self.done_dir.mkdir(parents=True, exist_ok=True)
        self.parts_dir.mkdir(parents=True, exist_ok=True)

    def marker(self, task_id: str) -> Path:
        return self.done_dir / f"{task_id}.json"

    def is_done(self, task_id: str) -> bool:
        return self.marker(task_id).exists()

    def result(self, task_id: str) -> dict:
        return json.loads(self.marker(task_id).read_text(encoding="utf-8"))

    def mark_done(self, task_id: str, result: dict) -> None:
        atomic_write_text(self.marker(task_id), json.dumps(result, sort_keys=True))

    def clean_outputs(self, task_id: str) -> int:
        """Remove whatever an unfinished run of this task left behind."""
        removed = 0
        for folder in (self.out_dir, self.parts_dir):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.is_file() and (path.name.startswith(task_id + "-") or path.name.startswith(task_id + ".")):
                    path.unlink()
                    removed += 1
        return removed


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _run_task(fn: TaskFn, task: Task, out_dir: str) -> dict:
    return fn(task, Path(out_dir))


def run_tasks(
    fn: TaskFn,
    tasks: Sequence[Task],
    out_dir: str | Path,
    *,
    job_name: str,
    fingerprint: str,
    workers: int | None = None,
    ray_address: str | None = None,
    resume: bool = False,
    max_retries: int = 3,
    remote_options: dict[str, Any] | None = None,
    describe: Callable[[list[dict]], str] | None = None,
    show_progress: bool = True,
) -> list[dict]:
    """Run `fn(task, out_dir)` for every task not yet done; return all results in task order.

    `workers=0` runs tasks inline in this process (debugging); otherwise tasks run as Ray tasks (at most
    `workers` at a time; a local Ray gets `workers` CPUs). Tasks whose worker dies are retried `max_retries`
    times (on another node when one is lost). A Python exception in a task stops the job with JobFailedError;
    finished tasks keep their markers so `--resume` continues after the cause is fixed.
    `describe(results_so_far)` returns extra text for the progress bar (e.g. pairs per second).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = JobState(out_dir)
    state.begin(job_name, fingerprint, [t.task_id for t in tasks], resume)
    results: dict[str, dict] = {t.task_id: state.result(t.task_id) for t in tasks if state.is_done(t.task_id)}
    todo = [t for t in tasks if t.task_id not in results]
    for task in todo:
        state.clean_outputs(task.task_id)
    if results:
        log.info("%s: %d of %d tasks already done", job_name, len(results), len(tasks))

    with job_progress(job_name, total=len(tasks), completed=len(results), enabled=show_progress) as progress:

        def finish(task: Task, result: dict) -> None:
            state.mark_done(task.task_id, result)
            results[task.task_id] = result
            progress.advance(describe(list(results.values())) if describe else "")

        if todo and workers == 0:
            for task in todo:
                try:
                    finish(task, fn(task, out_dir))
                except DataEngineError:
                    raise
                except Exception as exc:
                    raise JobFailedError(f"{job_name}: task {task.task_id} failed: {exc!r}") from exc
        elif todo:
            _run_on_ray(fn, todo, out_dir, finish, workers, ray_address, max_retries, remote_options or {}, job_name)
    return [results[t.task_id] for t in tasks]


def check_placement(cluster_resources: dict, options: dict, job_name: str) -> None:
    """Refuse at once a job whose tasks no node can run (Ray would otherwise wait for resources forever)."""
    wanted = {"CPU": options.get("num_cpus", 1), "GPU": options.get("num_gpus", 0), **options.get("resources", {})}
    missing = {name: amount for name, amount in wanted.items() if amount and cluster_resources.get(name, 0) < amount}
    if missing:
        hint = ", ".join(f'"{k}": {v}' for k, v in missing.items() if k not in ("CPU", "GPU"))
        raise JobStateError(
            f"{job_name}: no Ray node offers {missing} (cluster has "
            f"{ {k: v for k, v in cluster_resources.items() if not k.startswith('node:')} })"
            + (f"; start suitable nodes with: ray start --address=HEAD:6379 --resources='{{{hint}}}'" if hint else "")
        )


def _run_on_ray(fn, todo, out_dir, finish, workers, ray_address, max_retries, remote_options, job_name) -> None:
    from dataengine.runtime.ray_runtime import ray_session

    with ray_session(ray_address, num_cpus=workers) as ray:
        options = {"num_cpus": 1, "max_retries": max_retries, **remote_options}
        check_placement(ray.cluster_resources(), options, job_name)
        remote = ray.remote(**options)(_run_task)
        limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        fn_ref = ray.put(fn)
        pending = list(todo)
        in_flight: dict[Any, Task] = {}
        started = time.monotonic()
        while pending or in_flight:
            while pending and len(in_flight) < limit:
                task = pending.pop(0)
                in_flight[remote.remote(fn_ref, task, str(out_dir))] = task
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            ref = ready[0]
            task = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:
                for other in in_flight:
                    ray.cancel(other, force=True)
                cause = getattr(exc, "cause", None) or exc
                if isinstance(cause, DataEngineError):
                    raise cause from exc
                raise JobFailedError(
                    f"{job_name}: task {task.task_id} failed: {cause!r}; fix the cause and rerun with --resume"
                ) from exc
            finish(task, result)
        log.debug("%s: ray part took %.1fs", job_name, time.monotonic() - started)
