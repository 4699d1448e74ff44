"""Faulty inputs get one clear line and the right exit code, never a traceback or a silent wrong result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataengine.converters import run_conversion
from dataengine.fixtures.pointing import build_robopoint
from dataengine.shards import GroundingShardWriter, ShardWriter
from tests.fixtures.converters import run_cli as _run_cli
from tests.helpers import make_image, make_record

REPO = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code, out, err = _run_cli(args, capsys)
    return code, out, " ".join(err.split())


def _shards(folder: Path, n: int = 3) -> Path:
    image = make_image(64, 48)
    with GroundingShardWriter(folder, "set", max_samples=100, max_bytes=1 << 30) as writer:
        for i in range(n):
            item = {"task": "box", "query": f"thing {i}", "boxes": [[1, 2, 30, 40]]}
            writer.write(make_record(f"k{i}", image, [item]), image)
    return folder


def test_quarantine_is_byte_identical_between_identical_runs(tmp_path):
    info = build_robopoint(tmp_path / "fx", n=0)
    (info.images_dir / "region_ref" / "scene_0003.png").write_bytes(b"not an image at all, just bytes")
    for out in ("a", "b"):
        run_conversion("robopoint", info.input_path, tmp_path / out, images_dir=info.images_dir, workers=0,
                       show_progress=False)  # fmt: skip
    first = (tmp_path / "a" / "quarantine.jsonl").read_bytes()
    assert first == (tmp_path / "b" / "quarantine.jsonl").read_bytes()
    assert b"unreadable_image" in first and b" at 0x" not in first


def test_deeply_nested_json_in_a_shard_is_a_problem_not_a_crash(tmp_path, capsys):
    folder = _shards(tmp_path / "shards")
    nested = b"[" * 100_000 + b"]" * 100_000
    with ShardWriter(folder, "deep") as raw:
        raw.write("deep0", {"json": nested})
    code, out, err = run_cli(["validate", str(folder)], capsys)
    assert code == 1 and "bad_json" in out and "Traceback" not in err and "RecursionError" not in err + out
    code, out, err = run_cli(["stats", str(folder), "--no-manifest"], capsys)
    assert code == 0 and "bad_json" in out + err and "RecursionError" not in err + out
    code, out, err = run_cli(["show", str(folder), "--out", str(tmp_path / "s.png")], capsys)
    assert code == 0 and "RecursionError" not in err + out


def test_show_on_a_truncated_tar_says_why(tmp_path, capsys):
    folder = _shards(tmp_path / "shards")
    tar = folder / "set-000000.tar"
    data = tar.read_bytes()
    tar.write_bytes(data[:600])  # inside the first sample
    (folder / "set-000000.idx.json").unlink()
    code, _, err = run_cli(["show", str(folder), "--out", str(tmp_path / "s.png")], capsys)
    assert code == 2
    assert "truncated" in err and "set-000000.tar" in err and "no samples match" not in err


def test_misspelled_split_in_a_recipe_is_refused(tmp_path, capsys):
    from tests.fixtures.corpus_sources import build_corpus_sources, write_recipe

    build_corpus_sources(tmp_path / "sources")
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "sources")
    text = recipe.read_text()
    assert "splits: [train]" in text
    recipe.write_text(text.replace("splits: [train]", "splits: [trian]", 1))
    code, _, err = run_cli(["build", str(recipe), "--out", str(tmp_path / "out"), "--workers", "0"], capsys)
    assert code == 2, err
    assert "'trian'" in err and "train" in err and "Traceback" not in err


def test_misspelled_fixture_option_is_refused(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        'name: r\nversion: "1"\nseed: 0\nsources:\n  - name: a\n'
        "    from: {fixture: refcoco, fixture_options: {nn: 2}, converter: refcoco}\n"
    )
    code, _, err = run_cli(["build", str(recipe), "--out", str(tmp_path / "out"), "--workers", "0"], capsys)
    assert code == 2
    assert "'nn'" in err and "fixture_options" in err and "TypeError" not in err and "Traceback" not in err


def test_gl_backend_is_chosen_without_a_display():
    pytest.importorskip("mujoco")
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    code = (
        "from dataengine.sim.backends.placement import check_backend_available\n"
        "check_backend_available('mujoco')\n"
        "import mujoco, os\n"
        "m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\"1\"/></worldbody></mujoco>')\n"
        "r = mujoco.Renderer(m, 16, 16); d = mujoco.MjData(m); r.update_scene(d); r.render()\n"
        "print(os.environ['MUJOCO_GL'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**env, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "egl"


def test_json_report_of_validate_is_written_even_for_a_missing_folder(tmp_path, capsys):
    code, _, err = run_cli(["validate", str(tmp_path / "nope")], capsys)
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    assert not json.dumps({}).startswith("x")
