"""Output folders: --resume never touches a folder that holds no job, a running job locks its folder, and a job
that did not finish is refused by every reader until it is finished."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dataengine.converters.refcoco as refcoco_module
from dataengine.fixtures.refcoco import build_refer
from tests.fixtures.converters import run_cli as _run_cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def refer(tmp_path_factory):
    return build_refer(tmp_path_factory.mktemp("refer"), n=12, seed=7)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """The CLI in this process; stderr with Rich's line wrapping undone."""
    code, out, err = _run_cli(args, capsys)
    return code, out, " ".join(err.split())


def _convert_args(refer, out: Path, *extra: str) -> list[str]:
    return ["convert", "refcoco", "--input", str(refer.input_path), "--images", str(refer.images_dir),
            "--out", str(out), "--workers", "0", *extra]  # fmt: skip


def _user_folder(path: Path, names: list[str]) -> dict[str, bytes]:
    path.mkdir(parents=True)
    files = {name: f"the user's own {name}\n".encode() for name in names}
    for name, data in files.items():
        (path / name).write_bytes(data)
    return files


def _contents(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_convert_resume_refuses_a_folder_that_holds_no_job(refer, tmp_path, capsys):
    out = tmp_path / "thesis"
    before = _user_folder(out, ["refcoco-00000-my-thesis.tex", "manifest.parquet", "quarantine.jsonl"])
    code, _, err = run_cli(_convert_args(refer, out, "--resume"), capsys)
    assert code == 2
    assert "no job state" in err and "nothing to resume" in err and "Traceback" not in err
    assert _contents(out) == before  # nothing deleted, nothing overwritten, no _state/ left behind


def test_sim_generate_resume_refuses_a_folder_that_holds_no_job(tmp_path, capsys):
    pytest.importorskip("mujoco")
    out = tmp_path / "backup"
    before = _user_folder(out, ["episodes-000000-mybackup.tar", "sim_stats.json", "manifest.parquet"])
    recipe = str(REPO / "recipes" / "sim" / "pick_place_demo.yaml")
    code, _, err = run_cli(["sim", "generate", recipe, "--out", str(out), "--resume", "--no-render",
                            "--workers", "0"], capsys)  # fmt: skip
    assert code == 2 and "no job state" in err
    assert _contents(out) == before


def _interrupted_conversion(refer, out: Path, capsys, monkeypatch) -> None:
    """A conversion that stops after 2 of 3 tasks (what kill -9 leaves: markers of the finished tasks only)."""
    monkeypatch.setattr(refcoco_module, "IMAGES_PER_PARTITION", 6)
    original_read = refcoco_module.RefCocoConverter.read

    def crashing_read(self, partition, stats):
        if partition["images"] and partition["images"][0]["image_id"] >= 100_006:
            raise RuntimeError("simulated crash")
        yield from original_read(self, partition, stats)

    monkeypatch.setattr(refcoco_module.RefCocoConverter, "read", crashing_read)
    code, _, err = run_cli(_convert_args(refer, out), capsys)
    assert code == 2 and "simulated crash" in err
    monkeypatch.setattr(refcoco_module.RefCocoConverter, "read", original_read)


def test_resume_in_a_job_folder_keeps_files_the_job_did_not_write(refer, tmp_path, capsys, monkeypatch):
    out = tmp_path / "conv"
    _interrupted_conversion(refer, out, capsys, monkeypatch)
    mine = {"refcoco-00002-my-thesis.tex": b"thesis", "refcoco-00002.notes": b"notes", "notes.tmp.txt": b"n"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    code, _, err = run_cli(_convert_args(refer, out, "--resume"), capsys)
    assert code == 0, err
    assert {name: (out / name).read_bytes() for name in mine} == mine
    assert (out / "_state" / "complete.json").is_file()


def test_unfinished_folder_is_refused_by_every_reader_until_resumed(refer, tmp_path, capsys, monkeypatch):
    out = tmp_path / "conv"
    _interrupted_conversion(refer, out, capsys, monkeypatch)
    assert list(out.glob("*.tar")) and not (out / "_state" / "complete.json").exists()
    readers = [
        ["validate", str(out)],
        ["stats", str(out)],
        ["show", str(out), "--out", str(tmp_path / "sheet.png")],
        ["export", "llava-json", str(out), "--out", str(tmp_path / "llava")],
    ]
    finish = f"finish it with: dataengine {' '.join(_convert_args(refer, out))} --resume"
    for args in readers:
        code, stdout, err = run_cli(args, capsys)
        assert code == 2, (args, stdout, err)
        message = err
        assert "unfinished 'convert refcoco' job (2 of 3 tasks done)" in message and finish in message, args
        assert "--allow-incomplete" in message and "Traceback" not in err
    assert not (tmp_path / "sheet.png").exists() and not (tmp_path / "llava").exists()
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f'name: r\nversion: "1"\nseed: 0\nsources:\n  - name: a\n    from: {{shards: {out}}}\n')
    code, _, err = run_cli(["build", str(recipe), "--out", str(tmp_path / "corpus"), "--workers", "0"], capsys)
    assert code == 2 and "unfinished 'convert refcoco' job" in err
    # Reading it anyway is possible, and said loudly.
    code, stdout, err = run_cli(["validate", str(out), "--allow-incomplete"], capsys)
    assert code == 0 and "INCOMPLETE" in err
    # Finishing the job makes it readable.
    code, _, err = run_cli(_convert_args(refer, out, "--resume"), capsys)
    assert code == 0, err
    assert run_cli(["validate", str(out)], capsys)[0] == 0


def test_train_refuses_an_unfinished_data_folder(refer, tmp_path, capsys, monkeypatch):
    from dataengine.runtime.completion import IncompleteJobError
    from dataengine.train.shard_index import load_shard_set

    out = tmp_path / "conv"
    _interrupted_conversion(refer, out, capsys, monkeypatch)
    with pytest.raises(IncompleteJobError, match="unfinished 'convert refcoco' job"):
        load_shard_set(out)


def test_a_second_run_on_a_folder_in_use_is_refused(refer, tmp_path, capsys):
    out = tmp_path / "conv"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dataengine.runtime.jobs import job_lock\n"
         f"with job_lock({str(out)!r}, 'convert refcoco'):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_cli(_convert_args(refer, out), capsys)
        assert code == 75
        assert "in use by another run ('convert refcoco', pid" in err
        assert "Traceback" not in err and "FileNotFoundError" not in err
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    code, _, err = run_cli(_convert_args(refer, out), capsys)  # the lock died with its process
    assert code == 0, err


def test_read_only_output_folder_is_one_line_and_exit_73(refer, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    with _read_only(out):
        code, _, err = run_cli(_convert_args(refer, out / "conv"), capsys)
    assert code == 73
    assert f"error: cannot write {out / 'conv'}: " in err and "Traceback" not in err, err


@contextlib.contextmanager
def _read_only(folder: Path):
    """A folder nobody can write to: mode 555, or the immutable attribute for root (who ignores modes)."""
    immutable = os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    if not immutable:
        folder.chmod(0o555)
    try:
        probe = folder / ".probe"
        try:
            probe.write_text("x")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("cannot make a read-only folder here (root without chattr)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_completion_marker_is_written_last_for_every_job(refer, tmp_path):
    from dataengine.converters import run_conversion

    out = tmp_path / "conv"
    run_conversion("refcoco", refer.input_path, out, images_dir=refer.images_dir, workers=0, show_progress=False)
    marker = out / "_state" / "complete.json"
    newest_other = max(p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p != marker)
    assert marker.stat().st_mtime_ns >= newest_other
    assert json.loads(marker.read_text())["job"] == "convert refcoco"


def test_kill_9_half_way_then_every_reader_refuses_until_resumed(tmp_path):
    """The finding itself, with a real SIGKILL: a simulator job killed after the first of its two chunks."""
    pytest.importorskip("mujoco")
    import signal

    out = tmp_path / "sim"
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"}
    generate = [sys.executable, "-m", "dataengine.cli.app", "sim", "generate",
                str(REPO / "recipes" / "sim" / "pick_place_demo.yaml"), "--out", str(out), "--no-render",
                "--workers", "0"]  # fmt: skip
    proc = subprocess.Popen(generate, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list((out / "_state" / "done").glob("*.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(out.glob("episodes-*.tar")) and not (out / "_state" / "complete.json").exists()
    readers = [
        ["export", "lerobot", str(out), "--out", str(tmp_path / "lerobot")],
        ["sim", "to-grounding", str(out), "--out", str(tmp_path / "grounding"), "--workers", "0"],
    ]
    for args in readers:
        result = subprocess.run([sys.executable, "-m", "dataengine.cli.app", *args], env=env, capture_output=True,
                                text=True, timeout=240)  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert "unfinished 'sim generate pick_place_demo' job (1 of 2 tasks done)" in result.stderr
        assert "--resume" in result.stderr and "Traceback" not in result.stderr
    finished = subprocess.run([*generate, "--resume"], env=env, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr
    assert (out / "_state" / "complete.json").is_file()
