"""`dataengine sim export-usd`: deterministic stages, and the validated stages hold the generated episodes' scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("pxr")
pytest.importorskip("mujoco")

from pxr import Usd

from dataengine.cli.app import app
from dataengine.errors import InputError
from dataengine.records.layout import Layout
from dataengine.sim.usd.export import INDEX_NAME
from dataengine.sim.usd.stage import layout_from_stage, object_path, scene_metadata
from tests.fixtures.episode_shards import build_episode_shards
from tests.fixtures.usd_scenes import RECIPE, sampled_layout, world_matrix, write_stub_franka

runner = CliRunner()


def _export(out, *args):
    result = runner.invoke(app, ["sim", "export-usd", str(RECIPE), "--out", str(out), *args])
    return result


def test_export_is_deterministic_and_every_stage_opens(tmp_path):
    from dataengine.sim.recipe import load_recipe

    stub = write_stub_franka(tmp_path / "franka_stub.usda", sampled_layout(load_recipe(RECIPE), 0))
    args = ["--episodes", "3", "--no-validate", "--robot-usd", stub]
    first, second = _export(tmp_path / "a", *args), _export(tmp_path / "b", *args)
    assert second.exit_code == 0, second.output
    assert first.exit_code == 0, first.output
    assert "wrote 3 sampled (not physics-validated) stages" in first.output
    index = json.loads((tmp_path / "a" / INDEX_NAME).read_text())
    assert [s["episode_index"] for s in index["stages"]] == [0, 1, 2] and index["robot_usd"] == stub
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len(names) == 4
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for entry in index["stages"]:
        stage = Usd.Stage.Open(str(tmp_path / "a" / entry["file"]))
        meta = scene_metadata(stage)
        assert meta["episode_key"] == entry["key"] and meta["validated"] is False
        assert [p.GetName() for p in stage.GetPrimAtPath("/World/Objects").GetChildren()] == entry["objects"]
        assert stage.GetPrimAtPath("/World/Robot/panda_link7").IsValid()  # the stand-in robot was loaded
    again = _export(tmp_path / "a", *args)
    assert isinstance(again.exception, InputError) and "--overwrite" in str(again.exception)


def test_validated_stages_hold_the_scenes_that_sim_generate_writes(tmp_path):
    from dataengine.shards import iter_samples, list_shards

    shards = build_episode_shards(tmp_path / "episodes", episodes=2, per_shard=2)
    generated = {}
    for shard in list_shards(shards):
        for sample in iter_samples(shard):
            record = json.loads(sample["episode.json"])
            generated[record["key"]] = Layout.model_validate(record["layout"])
    result = _export(tmp_path / "usd", "--episodes", "2", "--robot-usd", "/nowhere/franka.usd")
    assert result.exit_code == 0, result.output
    assert "wrote 2 physics-validated stages" in result.output
    for key, layout in sorted(generated.items()):
        stage = Usd.Stage.Open(str(tmp_path / "usd" / f"{key}.usda"), load=Usd.Stage.LoadNone)
        assert layout_from_stage(stage) == layout
        assert scene_metadata(stage)["validated"] is True
        for obj in layout.objects:
            transform = world_matrix(stage.GetPrimAtPath(object_path(obj.uid)))
            assert np.abs(transform[:3, 3] - obj.pose.pos_m).max() < 1e-12, (key, obj.uid)
