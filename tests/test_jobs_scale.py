"""What keeps `run_tasks` linear at 25,000 tasks (bench/orchestration.py measures it): one listing of the output
folders to clean unfinished tasks, one listing of the markers, and describers that see one growing list."""

from pathlib import Path

from dataengine.runtime.jobs import JobState, Task, run_tasks
from dataengine.runtime.progress import RunningTotals
from tests.jobs_tasks import write_one


def test_clean_unfinished_removes_the_output_files_of_those_tasks_only(tmp_path):
    gone = [
        "episodes-000001-000000.tar", "episodes-000001-000000.idx.json", "episodes-000001-000000.tar.tmp123",
        "episodes-000001.parquet", "episodes-00000-000000.tar",
    ]  # fmt: skip
    kept = [
        "episodes-000001.json", "episodes-0000010-000000.tar", "episodes-000002-000000.tar", "episodes-000001x",
        "manifest.parquet",
    ]  # fmt: skip
    state = JobState(tmp_path)
    state.parts_dir.mkdir(parents=True)
    for folder in (state.out_dir, state.parts_dir):
        for name in gone + kept:
            (folder / name).write_text("x")
    (state.out_dir / "episodes-000001-000001.tar").symlink_to(tmp_path / "manifest.parquet")  # never followed
    (state.out_dir / "episodes-000001-000002.tar").mkdir()  # folders are never removed
    assert state.clean_unfinished(["episodes-000001", "episodes-00000"]) == 2 * len(gone)
    assert sorted(p.name for p in state.parts_dir.iterdir()) == sorted(kept)
    assert sorted(p.name for p in state.out_dir.iterdir()) == sorted(
        [*kept, "_state", "episodes-000001-000001.tar", "episodes-000001-000002.tar"]
    )
    assert state.clean_outputs("episodes-000002") == 2


def test_resume_with_most_markers_present_reruns_only_the_rest(tmp_path):
    tasks = [Task(f"t-{i:05d}", {"i": i}) for i in range(300)]
    first = run_tasks(write_one, tasks, tmp_path, job_name="j", fingerprint="f", workers=0, show_progress=False)
    state = JobState(tmp_path)
    assert state.done_ids() == {t.task_id for t in tasks}
    for task in tasks[::10]:
        state.marker(task.task_id).unlink()
        (tmp_path / f"{task.task_id}-data.txt").write_text("half written by a killed run")
    seen: list[int] = []
    lists: set[int] = set()

    def describe(results: list[dict]) -> str:
        seen.append(len(results))
        lists.add(id(results))
        return ""

    again = run_tasks(
        write_one, tasks, tmp_path, job_name="j", fingerprint="f", workers=0, resume=True, describe=describe,
        show_progress=False,
    )  # fmt: skip
    assert again == first
    assert seen == list(range(271, 301)) and len(lists) == 1  # one list, growing by one per finished task
    assert (tmp_path / "t-00000-data.txt").read_text() == "payload=0\n"


def test_running_totals_only_add_the_new_results():
    calls: list[int] = []
    totals = RunningTotals(lambda r: (calls.append(r["n"]), {"n": r["n"]})[1])
    results: list[dict] = []
    for n in range(1, 6):
        results.append({"n": n})
        assert totals.update(results)["n"] == n * (n + 1) // 2
    assert calls == [1, 2, 3, 4, 5]
    assert totals.update([{"n": 7}])["n"] == 7  # another, shorter list starts again


def test_done_ids_of_a_fresh_folder_is_empty(tmp_path):
    assert JobState(Path(tmp_path) / "none").done_ids() == set()
