"""A fixed list of tasks run on Ray with completion markers: the resume and retry machinery of every job.

State lives under `OUT/_state/`:
- `job.json`: job name, fingerprint of the configuration, the ordered task ids, the command that started it;
- `done/<task_id>.json`: the task's result, written atomically by the driver after the task returned;
- `lock`: held (flock) by the one process running the job; a second run on the folder is refused at once;
- `complete.json`: written by `mark_complete` after everything else (readers refuse a folder without it, see
  `runtime.completion`).
Task outputs are files in OUT named `<task_id>-NNNNNN.tar` / `.idx.json` (plus `<task_id>.parquet`,
`.manifest.parquet` or `.quarantine.jsonl` in OUT or `OUT/_state/parts/`), written under temporary names and
renamed by the task. A task without a marker has exactly those files cleaned and is run again, so a job killed at
any moment and resumed produces exactly the files of an uninterrupted run. `--resume` only continues a folder
that holds job state; a folder with other files and no state is refused, and no file outside the task output
names is ever removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataengine.errors import DataEngineError, JobLockedError, JobStateError
from dataengine.runtime.atomic import atomic_write_text
from dataengine.runtime.completion import COMPLETE_FILE, JOB_FILE, STATE_DIR
from dataengine.runtime.progress import job_progress

log = logging.getLogger(__name__)

LOCK_FILE = "lock"
_KILL_WAIT_S = 60.0  # how long a timed-out task's worker may take to die before its task is submitted again
TaskFn = Callable[["Task", Path], dict]
# The command line that started this process's jobs (set by the CLI), recorded in job.json for resume hints.
_command: str | None = None
_held_locks: dict[str, list[int]] = {}  # resolved folder -> [fd, depth]: the lock is re-entrant in one process


def set_command(command: str | None) -> None:
    """Record the command line of this process (the CLI calls this), so unfinished folders can name it."""
    global _command
    _command = command


_OUTPUT_SUFFIX = r"(?:-\d{6}\.(?:tar|idx\.json)|\.(?:parquet|manifest\.parquet|quarantine\.jsonl))(?:\.tmp\d*)?"
_OUTPUT_SUFFIX_RE = re.compile(_OUTPUT_SUFFIX)


def task_output_re(task_id: str) -> re.Pattern:
    """Names of the files a task writes (see the module docstring), finished or temporary."""
    return re.compile(rf"^{re.escape(task_id)}{_OUTPUT_SUFFIX}$")


def foreign_entries(out_dir: Path) -> list[str]:
    """Names in `out_dir` other than the job state folder."""
    return sorted(p.name for p in out_dir.iterdir() if p.name != STATE_DIR) if out_dir.is_dir() else []


@contextlib.contextmanager
def job_lock(out_dir: str | Path, job_name: str, resume: bool | None = None) -> Iterator[None]:
    """Hold `OUT/_state/lock` for the whole job: a second process gets JobLockedError naming the holder. The lock
    is released when the process dies (flock), so a killed run never leaves a stale lock; re-entrant in one
    process (a job function holds it around `run_tasks`, which takes it again). With `resume` given, a folder that
    holds other files and no job state is refused first (`JobState.check_owner`)."""
    out_dir = Path(out_dir)
    if resume is not None:
        JobState(out_dir).check_owner(resume)
    key = str(out_dir.resolve())
    if key in _held_locks:
        _held_locks[key][1] += 1
        try:
            yield
        finally:
            _held_locks[key][1] -= 1
        return
    state = out_dir / STATE_DIR
    created = not state.exists()
    state.mkdir(parents=True, exist_ok=True)
    path = state / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise JobLockedError(
            f"{out_dir} is in use by another run ({holder}); wait for it to finish or choose another output directory"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{job_name!r}, pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
    _held_locks[key] = [fd, 1]
    ok = False
    try:
        yield
        ok = True
    finally:
        del _held_locks[key]
        if not ok and created and [p.name for p in state.iterdir()] == [LOCK_FILE]:
            path.unlink()  # a refused job leaves nothing behind in a folder it did not own
            state.rmdir()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def mark_complete(out_dir: str | Path, summary: dict | None = None) -> None:
    """Write `_state/complete.json`: the job's last write. Readers refuse the folder until it is there."""
    state = Path(out_dir) / STATE_DIR
    info = json.loads((state / JOB_FILE).read_text(encoding="utf-8"))
    marker = {"job": info.get("job"), "fingerprint": info.get("fingerprint"), **(summary or {})}
    atomic_write_text(state / COMPLETE_FILE, json.dumps(marker, indent=1, sort_keys=True) + "\n")


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
        return self.state_dir / JOB_FILE

    def check_owner(self, resume: bool) -> None:
        """Refuse a folder that holds other files and no job state, with or without --resume (nothing of it may
        be deleted or overwritten)."""
        if self.job_file.exists():
            return
        foreign = foreign_entries(self.out_dir)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise JobStateError(
                f"{self.out_dir} is not empty ({shown}) and holds no job state"
                + (", so there is nothing to resume there (--resume continues only a job started in that folder)"
                   if resume else "")
                + "; choose an empty output directory"
            )  # fmt: skip

    def begin(self, job_name: str, fingerprint: str, task_ids: Sequence[str], resume: bool) -> None:
        """Record the job, or check that a resumed job is the same one. Call with the job lock held."""
        if len(set(task_ids)) != len(task_ids):
            raise JobStateError(f"{job_name}: task ids are not unique")
        self.check_owner(resume)
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
            self.done_dir.mkdir(parents=True, exist_ok=True)
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            info = {"job": job_name, "fingerprint": fingerprint, "tasks": list(task_ids), "command": _command}
            atomic_write_text(self.job_file, json.dumps(info, indent=1))
        (self.state_dir / COMPLETE_FILE).unlink(missing_ok=True)  # the folder is being written again
        self.done_dir.mkdir(parents=True, exist_ok=True)
        self.parts_dir.mkdir(parents=True, exist_ok=True)

    def record(self, job_name: str, task_ids: Sequence[str]) -> None:
        """Mark the folder as being written by a job that is not a `run_tasks` list (e.g. `rewrite --out`): its
        job file now, `mark_complete` at its end; readers refuse the folder in between."""
        info = {"job": job_name, "fingerprint": None, "tasks": list(task_ids), "command": _command}
        atomic_write_text(self.job_file, json.dumps(info, indent=1))
        (self.state_dir / COMPLETE_FILE).unlink(missing_ok=True)

    def marker(self, task_id: str) -> Path:
        return self.done_dir / f"{task_id}.json"

    def is_done(self, task_id: str) -> bool:
        return self.marker(task_id).exists()

    def result(self, task_id: str) -> dict:
        return json.loads(self.marker(task_id).read_text(encoding="utf-8"))

    def mark_done(self, task_id: str, result: dict) -> None:
        atomic_write_text(self.marker(task_id), json.dumps(result, sort_keys=True))

    def done_ids(self) -> set[str]:
        """Ids of the tasks with a marker: one listing of `done/`, not a file check per task."""
        if not self.done_dir.is_dir():
            return set()
        with os.scandir(self.done_dir) as entries:
            return {e.name[: -len(".json")] for e in entries if e.name.endswith(".json")}

    def clean_outputs(self, task_id: str) -> int:
        """Remove whatever an unfinished run of this task left behind: only files named as its outputs."""
        return self.clean_unfinished([task_id])

    def clean_unfinished(self, task_ids: Iterable[str]) -> int:
        """`clean_outputs` of many tasks with one listing of each folder (a resume of 1,000 of 25,000 tasks would
        otherwise list 50,000 files 1,000 times): regular files named `<task_id><output suffix>`, nothing else."""
        wanted = set(task_ids)
        removed = 0
        for folder in (self.out_dir, self.parts_dir):
            if not folder.is_dir() or not wanted:
                continue
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    cuts = (i for i, ch in enumerate(name) if ch in "-.")
                    owned = any(name[:i] in wanted and _OUTPUT_SUFFIX_RE.fullmatch(name, i) for i in cuts)
                    if owned and entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)
                        removed += 1
        return removed


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
    task_timeout_s: float | None = None,
) -> list[dict]:
    """Run `fn(task, out_dir)` for every task not yet done; return all results in task order.

    `workers=0` runs tasks inline in this process (debugging); otherwise tasks run as Ray tasks (at most
    `workers` at a time; a local Ray gets `workers` CPUs). Tasks whose worker dies are retried `max_retries`
    times (on another node when one is lost). A Python exception in a task stops the job with JobFailedError;
    finished tasks keep their markers so `--resume` continues after the cause is fixed.
    `task_timeout_s` (Ray only): a task still running that long after it was submitted is taken as hung (a
    deadlocked driver, a stuck filesystem): its worker is killed, what it left is cleaned, and it is submitted
    again, up to `max_retries` times; one more timeout fails the job.
    `describe(results_so_far)` returns extra text for the progress bar (e.g. pairs per second); it gets one list
    that grows by one result per call, so a describer can keep running totals (`progress.RunningTotals`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = JobState(out_dir)
    with job_lock(out_dir, job_name, resume):
        state.begin(job_name, fingerprint, [t.task_id for t in tasks], resume)
        return _run_pending(fn, tasks, state, job_name, workers, ray_address, max_retries, remote_options, describe,
                            show_progress, task_timeout_s)  # fmt: skip


def _run_pending(fn, tasks, state, job_name, workers, ray_address, max_retries, remote_options, describe,
                 show_progress, task_timeout_s=None) -> list[dict]:  # fmt: skip
    out_dir = state.out_dir
    done = state.done_ids()
    results: dict[str, dict] = {t.task_id: state.result(t.task_id) for t in tasks if t.task_id in done}
    todo = [t for t in tasks if t.task_id not in results]
    state.clean_unfinished(t.task_id for t in todo)
    if results:
        log.info("%s: %d of %d tasks already done", job_name, len(results), len(tasks))

    so_far = list(results.values())  # append-only: `describe` sees the same list grow (no copy per task)
    with job_progress(job_name, total=len(tasks), completed=len(results), enabled=show_progress) as progress:

        def finish(task: Task, result: dict) -> None:
            state.mark_done(task.task_id, result)
            results[task.task_id] = result
            so_far.append(result)
            progress.advance(describe(so_far) if describe else "")

        if todo and workers == 0:
            for task in todo:
                try:
                    finish(task, fn(task, out_dir))
                except DataEngineError:
                    raise
                except Exception as exc:
                    raise JobFailedError(f"{job_name}: task {task.task_id} failed: {exc!r}") from exc
        elif todo:
            _run_on_ray(fn, todo, state, finish, workers, ray_address, max_retries, remote_options or {}, job_name,
                        task_timeout_s)  # fmt: skip
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


def _run_on_ray(fn, todo, state, finish, workers, ray_address, max_retries, remote_options, job_name,
                task_timeout_s=None) -> None:  # fmt: skip
    from dataengine.runtime.ray_runtime import ray_session

    out_dir = state.out_dir
    with ray_session(ray_address, num_cpus=workers) as ray:
        options = {"num_cpus": 1, "max_retries": max_retries, **remote_options}
        check_placement(ray.cluster_resources(), options, job_name)
        remote = ray.remote(**options)(_run_task)
        limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        fn_ref = ray.put(fn)
        pending = deque(todo)
        in_flight: dict[Any, Task] = {}
        submitted: dict[Any, float] = {}
        timeouts: dict[str, int] = {}
        started = time.monotonic()
        while pending or in_flight:
            while pending and len(in_flight) < limit:
                task = pending.popleft()
                ref = remote.remote(fn_ref, task, str(out_dir))
                in_flight[ref], submitted[ref] = task, time.monotonic()
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=_time_left(submitted, task_timeout_s))
            if not ready:  # the oldest task ran over the timeout
                for task in _stop_overdue(ray, in_flight, submitted, task_timeout_s, state):
                    timeouts[task.task_id] = n = timeouts.get(task.task_id, 0) + 1
                    if n > max_retries:
                        _cancel_all(ray, in_flight)
                        raise JobFailedError(
                            f"{job_name}: task {task.task_id} ran over the task timeout ({task_timeout_s:g} s) on "
                            f"attempt {n} of {n}; find why it hangs (or raise the timeout) and rerun with --resume"
                        )
                    log.warning("%s: task %s ran over %g s: worker killed, task submitted again (%d of %d)",
                                job_name, task.task_id, task_timeout_s, n, max_retries)  # fmt: skip
                    pending.appendleft(task)
                continue
            ref = ready[0]
            task = in_flight.pop(ref)
            submitted.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:
                _cancel_all(ray, in_flight)
                cause = getattr(exc, "cause", None) or exc
                if isinstance(cause, DataEngineError):
                    raise cause from exc
                raise JobFailedError(
                    f"{job_name}: task {task.task_id} failed: {cause!r}; fix the cause and rerun with --resume"
                ) from exc
            finish(task, result)
        log.debug("%s: ray part took %.1fs", job_name, time.monotonic() - started)


def _time_left(submitted: dict, timeout_s: float | None) -> float | None:
    """Seconds until the oldest task in flight runs over `timeout_s` (None: no timeout)."""
    return None if timeout_s is None else max(0.0, min(submitted.values()) + timeout_s - time.monotonic())


def _cancel_all(ray, in_flight: dict) -> None:
    for ref in in_flight:
        ray.cancel(ref, force=True)


def _stop_overdue(ray, in_flight: dict, submitted: dict, timeout_s: float, state: JobState) -> list[Task]:
    """Kill the workers of the tasks submitted more than `timeout_s` ago, wait (a bounded time) for them to be
    gone, so that no stale attempt writes beside the next one, and clean what they left; returns those tasks."""
    now = time.monotonic()
    overdue = [ref for ref, t0 in submitted.items() if now - t0 >= timeout_s]
    for ref in overdue:
        ray.cancel(ref, force=True)
    ray.wait(overdue, num_returns=len(overdue), timeout=_KILL_WAIT_S)
    tasks = [in_flight.pop(ref) for ref in overdue]
    for ref in overdue:
        submitted.pop(ref)
    state.clean_unfinished(t.task_id for t in tasks)
    return tasks
