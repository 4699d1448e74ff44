"""The README's main command, `dataengine demo`, end to end in a fresh process (small sizes), and its resume."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from dataengine.shards import MANIFEST_NAME

REPO = Path(__file__).resolve().parents[1]


def _demo(out: Path) -> str:
    cmd = [sys.executable, str(REPO / "cli.py"), "demo", "--out", str(out), "--episodes", "2", "--train-steps", "2"]
    cmd += ["--workers", "1"]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "COLUMNS": "200"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.tar"))
        if "_state" not in p.parts
    }


def test_demo_runs_end_to_end_and_a_rerun_changes_nothing(tmp_path):
    out = tmp_path / "demo_out"
    text = _demo(out)
    assert "dataengine demo: done" in text
    assert "2 validated, rendered episodes" in text
    assert "the state policy trained on these 2 episodes picks and places" in text  # the probe's line
    probe = json.loads((out / "probe" / "report.json").read_text())
    assert probe["episodes"] == 2 and probe["train_episodes"] == 2 and len(probe["success_ci95"]) == 2
    sim_tars, corpus_tars = _digests(out / "sim"), _digests(out / "corpus")
    assert sim_tars and corpus_tars
    sim_card = (out / "sim" / "README.md").read_bytes()  # the set's dataset card
    assert b"**2 episodes**" in sim_card
    manifest = pl.read_parquet(out / "corpus" / MANIFEST_NAME)
    assert manifest.height > 0 and set(manifest["source"]) >= {"refcoco", "sim_frames"}
    assert list((out / "train").rglob("*.pt")), "the training run wrote no checkpoint"
    again = _demo(out)  # resumes: every step finds its work done
    assert "dataengine demo: done" in again
    assert _digests(out / "sim") == sim_tars and _digests(out / "corpus") == corpus_tars
    assert (out / "sim" / "README.md").read_bytes() == sim_card
