"""`dataengine sim preview RECIPE --out sheet.png`: a contact sheet of the scenes a recipe samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("mujoco")

from dataengine.cli.app import app

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes/sim/pick_place_demo.yaml"
runner = CliRunner()


def _recipe(tmp: Path, **changes) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    data["render"] = {**data["render"], "cameras": ["front", "wrist"], "width": 64, "height": 48}
    data.update(changes)
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_recipe_preview_is_a_sheet_of_different_scenes(tmp_path):
    variation = {"walls": {"prob": 0.5}, "light_count": [1, 3], "table_height_jitter_m": 0.05}
    recipe = _recipe(tmp_path, variation=variation)
    out = tmp_path / "sheet.png"
    result = runner.invoke(app, ["sim", "preview", str(recipe), "--out", str(out), "--n", "5"])
    assert result.exit_code == 0, result.output
    assert "5 scenes from front" in result.output
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert sheet.shape == (2 * 48, 3 * 64, 3)  # 3 columns x 2 rows of 64x48 tiles, the last one empty
    tiles = [sheet[r * 48 : (r + 1) * 48, c * 64 : (c + 1) * 64] for r in range(2) for c in range(3)][:5]
    assert all(t.mean() > 20 for t in tiles)  # rendered, lit scenes
    for i in range(5):
        for j in range(i + 1, 5):
            assert np.abs(tiles[i] - tiles[j]).mean() > 3, f"scenes {i} and {j} look the same"
    again = tmp_path / "again.png"
    assert runner.invoke(app, ["sim", "preview", str(recipe), "--out", str(again), "--n", "5"]).exit_code == 0
    assert again.read_bytes() == out.read_bytes()  # the same recipe samples the same scenes


def test_a_recipe_preview_refuses_a_video_name_and_an_unrendered_camera(tmp_path):
    recipe = _recipe(tmp_path)
    result = runner.invoke(app, ["sim", "preview", str(recipe), "--out", str(tmp_path / "x.gif")])
    assert result.exit_code != 0 and "image" in str(result.exception)
    result = runner.invoke(app, ["sim", "preview", str(recipe), "--out", str(tmp_path / "x.png"), "--cameras", "side"])
    assert result.exit_code != 0 and "'side' is not rendered" in str(result.exception)
    assert not (tmp_path / "x.png").exists()
