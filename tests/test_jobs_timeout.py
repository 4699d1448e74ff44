"""`run_tasks(task_timeout_s=...)` on local Ray: a hung task's worker is killed, what it left is cleaned and the task
runs again; a task that hangs every time fails the job after its retries and keeps the other tasks' markers.
About 20 s: one local Ray for both tests, each waits out one timeout, set far enough above a trivial task's time
(a worker's start-up on a busy machine included) not to fire on it."""

import time

import psutil
import pytest

from dataengine.runtime.jobs import JobFailedError, Task, run_tasks
from tests.jobs_tasks import hang

pytestmark = pytest.mark.ray
TIMEOUT_S = 10


def _noop() -> None:
    pass


def _tasks(n, **extra):
    return [Task(f"t{i:03d}", {"i": i, **extra}) for i in range(n)]


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.get([ray.remote(_noop).remote() for _ in range(4)])  # both workers started: the timeouts time tasks only
    try:
        yield ray
    finally:
        ray.shutdown()


def _hung_pids(out, task_id) -> list[int]:
    return [int(line) for line in (out / f"_hung_{task_id}").read_text().split()]


def _gone(pid: int, wait_s: float = 10.0) -> bool:
    """The process has exited (a zombie counts: its parent has not reaped it yet)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_a_hung_task_is_killed_cleaned_and_run_again(local_ray, tmp_path):
    t0 = time.monotonic()
    res = run_tasks(hang, _tasks(3, hang=[0]), tmp_path, job_name="j", fingerprint="f", workers=2, max_retries=2,
                    task_timeout_s=TIMEOUT_S, show_progress=False)  # fmt: skip
    assert [r["i"] for r in res] == [0, 1, 2]
    assert time.monotonic() - t0 < 120
    # the partial output of the hung run is gone; the rerun wrote the task's output
    assert sorted(p.name for p in tmp_path.glob("t*")) == ["t000-data.txt", "t001-data.txt", "t002-data.txt"]
    assert [_gone(pid) for pid in _hung_pids(tmp_path, "t000")] == [True]  # its worker was killed


def test_a_task_that_always_hangs_fails_the_job_after_its_retries(local_ray, tmp_path):
    tasks = _tasks(2, hang=[1], always=True)  # both start at once; t000 finishes long before t001's timeout
    with pytest.raises(JobFailedError, match=r"t001 ran over the task timeout \(10 s\) on attempt 1 of 1.*--resume"):
        run_tasks(hang, tasks, tmp_path, job_name="j", fingerprint="f", workers=2, max_retries=0,
                  task_timeout_s=TIMEOUT_S, show_progress=False)  # fmt: skip
    assert [_gone(pid) for pid in _hung_pids(tmp_path, "t001")] == [True]
    assert sorted(p.name for p in (tmp_path / "_state" / "done").iterdir()) == ["t000.json"]
    assert not list(tmp_path.glob("t001*"))  # its partial output cleaned
    res = run_tasks(hang, _tasks(2), tmp_path, job_name="j", fingerprint="f", workers=2, resume=True,
                    show_progress=False)  # fmt: skip
    assert [r["i"] for r in res] == [0, 1]
