"""A real `dataengine build` process killed with SIGKILL mid-job, then `--resume`: byte-identical output."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.corpus_sources import build_corpus_sources, write_recipe

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Sources, a recipe with many small tasks, and an uninterrupted reference build (moved aside)."""
    root = tmp_path_factory.mktemp("resume")
    sources = build_corpus_sources(root / "sources")
    del sources
    recipe = write_recipe(root / "recipe.yaml", root / "sources", max_samples=4, min_shards=24)
    work = root / "work"
    work.mkdir()
    _run_build(recipe, work).wait(timeout=300)
    reference = _digests(work / "out")
    shutil.move(work / "out", root / "reference")
    return recipe, work, reference


def _run_build(recipe: Path, cwd: Path, *extra: str) -> subprocess.Popen:
    # The same relative command every time, so the dataset card (which records it) is comparable byte for byte.
    cmd = [sys.executable, "-m", "dataengine.cli.app", "build", str(recipe), "--out", "out", "--workers", "0"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([*cmd, *extra], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _digests(out: Path) -> dict[str, str]:
    """Every output file except the job state, with its SHA-1."""
    return {
        p.relative_to(out).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "_state" not in p.relative_to(out).parts
    }


def _kill_when(proc: subprocess.Popen, markers: Path, count: int, timeout: float = 120) -> int:
    """SIGKILL the build as soon as `count` completion markers exist in `markers`; returns how many there were."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = len(list(markers.glob("*.json"))) if markers.is_dir() else 0
        if done >= count:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return done
        if proc.poll() is not None:
            pytest.fail(f"build ended before the kill point: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.001)
    proc.kill()
    pytest.fail("build did not reach the kill point")


@pytest.mark.parametrize(
    ("phase", "markers", "count"),
    [("scan", "_state/scan/_state/done", 4), ("write", "_state/done", 9)],
)
def test_kill_9_then_resume_is_byte_identical(setup, phase, markers, count):
    recipe, work, reference = setup
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    proc = _run_build(recipe, work)
    done = _kill_when(proc, out / markers, count)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "stats.json").exists()  # killed mid-job, not after it
    total = 11 if phase == "scan" else 24
    assert done < total
    resumed = _run_build(recipe, work, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()[-2000:]
    assert _digests(out) == reference
    assert not list(out.glob("*.tmp*"))
