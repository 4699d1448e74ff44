"""The job runner: completion markers, resume, retries on Ray."""

import pytest

from dataengine.errors import JobStateError
from dataengine.runtime.jobs import JobFailedError, Task, run_tasks
from tests.jobs_tasks import crash_once, fail_on, write_one


def _tasks(n, **extra):
    return [Task(f"t{i:03d}", {"i": i, **extra}) for i in range(n)]


def test_inline_run_and_resume_skip_done_tasks(tmp_path):
    res = run_tasks(write_one, _tasks(4), tmp_path, job_name="j", fingerprint="f", workers=0, show_progress=False)
    assert [r["i"] for r in res] == [0, 1, 2, 3]
    # A resumed run of a finished job does nothing and returns the stored results.
    again = run_tasks(
        write_one, _tasks(4), tmp_path, job_name="j", fingerprint="f", workers=0, resume=True, show_progress=False
    )
    assert again == res


def test_refuses_to_mix_jobs(tmp_path):
    run_tasks(write_one, _tasks(2), tmp_path, job_name="j", fingerprint="f", workers=0, show_progress=False)
    with pytest.raises(JobStateError, match="--resume"):
        run_tasks(write_one, _tasks(2), tmp_path, job_name="j", fingerprint="f", workers=0, show_progress=False)
    with pytest.raises(JobStateError, match="different configuration"):
        run_tasks(
            write_one, _tasks(2), tmp_path, job_name="j", fingerprint="g", workers=0, resume=True, show_progress=False
        )


def test_failure_keeps_finished_markers_and_resume_completes(tmp_path):
    with pytest.raises(JobFailedError, match="t002"):
        run_tasks(fail_on, _tasks(4, fail=2), tmp_path, job_name="j", fingerprint="f", workers=0, show_progress=False)
    assert sorted(p.name for p in (tmp_path / "_state" / "done").iterdir()) == ["t000.json", "t001.json"]
    # A leftover partial output of the failed task is cleaned before it is run again.
    (tmp_path / "t002-data.txt").write_text("partial")
    res = run_tasks(
        write_one,
        _tasks(4, fail=2),
        tmp_path,
        job_name="j",
        fingerprint="f",
        workers=0,
        resume=True,
        show_progress=False,
    )
    assert [r["i"] for r in res] == [0, 1, 2, 3]
    assert (tmp_path / "t002-data.txt").read_text() == "payload=2\n"


@pytest.mark.ray
def test_ray_retries_tasks_whose_worker_died(tmp_path):
    res = run_tasks(crash_once, _tasks(3), tmp_path, job_name="j", fingerprint="f", workers=2, show_progress=False)
    assert [r["i"] for r in res] == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.glob("t*-data.txt")) == ["t000-data.txt", "t001-data.txt", "t002-data.txt"]


def test_placement_check_refuses_resources_no_node_has():
    from dataengine.runtime.jobs import check_placement

    check_placement({"CPU": 2.0}, {"num_cpus": 1}, "j")
    with pytest.raises(JobStateError, match="rtx"):
        check_placement({"CPU": 2.0}, {"num_cpus": 1, "num_gpus": 1, "resources": {"rtx": 1}}, "j")
