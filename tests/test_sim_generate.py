"""End-to-end simulated generation: rendered episodes, labels, schema, replay, determinism, SIGKILL + resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("mujoco")
pytest.importorskip("mink")

from dataengine.records.episode import EpisodeRecord
from dataengine.shards import iter_samples, list_shards
from dataengine.shards.episode import MEMBERS, load_npz, unpack_jpeg
from dataengine.sim.card import CARD_NAME
from dataengine.sim.generate import MANIFEST_NAME, STATS_NAME, generate
from dataengine.sim.recipe import load_recipe
from dataengine.sim.replay import replay

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes/sim/pick_place_demo.yaml"
SCHEMA = REPO / "schemas/episode.v1.schema.json"


def _small_recipe(tmp: Path, **changes) -> Path:
    """The demo recipe at 96x96, one episode per shard (cheap, same code paths)."""
    data = yaml.safe_load(DEMO.read_text())
    data.update({"episodes": 3, "episodes_per_shard": 1, "render": {**data["render"], "width": 96, "height": 96}})
    data.update(changes)
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _samples(out: Path) -> list[dict]:
    return [s for shard in list_shards(out) for s in iter_samples(shard)]


def _output_bytes(out: Path) -> dict[str, bytes]:
    names = sorted(p.name for p in out.iterdir() if p.suffix == ".tar" or p.name.endswith(".idx.json"))
    return {n: (out / n).read_bytes() for n in [*names, MANIFEST_NAME, CARD_NAME]}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The shipped demo recipe (224x224, fast preset, two cameras), 4 episodes, offline rewriter, inline."""
    out = tmp_path_factory.mktemp("sim_demo")
    stats = generate(load_recipe(DEMO, episodes=4), out, workers=0, show_progress=False)
    return out, stats


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim_small")
    recipe_path = _small_recipe(tmp)
    out = tmp / "out"
    generate(load_recipe(recipe_path), out, workers=0, show_progress=False)
    return recipe_path, out


def test_every_episode_succeeds_with_a_fixed_member_set(demo_run):
    out, stats = demo_run
    samples = _samples(out)
    assert len(samples) == 4 == stats["episodes_written"]
    for sample in samples:
        assert sorted(k for k in sample if not k.startswith("__")) == sorted(MEMBERS)
        record = EpisodeRecord.from_json_bytes(sample["episode.json"])
        assert record.success and record.schema_ == "episode/v1"
        assert record.instructions.base and record.instructions.spatial and record.instructions.rewriter == "offline"
        assert [p.name for p in record.phases][:3] == ["approach", "descend", "close"]
        assert {c.name for c in record.cameras} == {"front", "wrist"}
        assert all(len(c.intrinsics_k) == 3 and len(c.T_cam_to_world_cv) == 4 for c in record.cameras)
        arrays = load_npz(sample["arrays.npz"])
        steps = record.num_steps
        assert arrays["action_joints"].shape == (steps, 7) and arrays["state_joints"].shape == (steps, 7)
        np.testing.assert_allclose(arrays["action_delta_joints"], arrays["action_joints"] - arrays["state_joints"])
        assert arrays["trace_3d"].shape == (steps, 11, 3) and arrays["trace_2d"].shape == (steps, 2, 11, 2)
        assert arrays["cam_T_cam_to_world"].shape == (steps, 2, 4, 4)
        assert set(np.unique(arrays["action_gripper_close"])) == {0.0, 1.0}
        frames = load_npz(sample["frames.npz"])
        for cam in ("front", "wrist"):
            assert frames[f"{cam}.offsets"].shape == (steps + 1,)
            jpeg = unpack_jpeg(frames, cam, steps - 1)
            assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    manifest = __import__("polars").read_parquet(out / MANIFEST_NAME)
    assert manifest.height == 4 and manifest["success"].all()


def test_records_validate_against_the_json_schema(demo_run):
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for sample in _samples(demo_run[0]):
        validator.validate(json.loads(sample["episode.json"]))


def test_pick_box_contains_projected_centre_when_visible(demo_run):
    visible_frames = 0
    for sample in _samples(demo_run[0]):
        arrays = load_npz(sample["arrays.npz"])
        box, centre, visible = arrays["pick_box_xyxy"], arrays["pick_center_2d"], arrays["pick_visible"]
        inside = (
            (centre[..., 0] >= box[..., 0])
            & (centre[..., 0] <= box[..., 2])
            & (centre[..., 1] >= box[..., 1])
            & (centre[..., 1] <= box[..., 3])
        )
        bad = np.argwhere(visible & ~inside)
        assert bad.size == 0, f"{sample['__key__']}: centre outside the box at (step, camera) {bad[:5].tolist()}"
        visible_frames += int(visible.sum())
        # the container box also comes from segmentation and is present in the first frame of the front view
        assert np.all(np.isfinite(arrays["container_box_xyxy"][0, 0]))
    assert visible_frames > 100


def test_replay_agrees(demo_run):
    result = replay(demo_run[0])
    assert result["episodes"] == 4
    assert result["agreement"] >= 0.95, result["disagreements"]


@pytest.mark.ray
def test_output_is_identical_with_two_workers(small_run, tmp_path):
    pytest.importorskip("ray")
    recipe_path, out = small_run
    out2 = tmp_path / "two_workers"
    generate(load_recipe(recipe_path), out2, workers=2, show_progress=False)
    assert _output_bytes(out2) == _output_bytes(out)


def test_sigkill_then_resume_gives_the_uninterrupted_result(small_run, tmp_path):
    recipe_path, reference = small_run
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dataengine.cli.app", "sim", "generate", str(recipe_path), "--out", str(out)]
    proc = subprocess.Popen([*cmd, "--workers", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_marker = out / "_state" / "done" / "episodes-000000.json"
    deadline = time.monotonic() + 240
    while not first_marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "generation finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = list((out / "_state" / "done").glob("*.json"))
    assert 1 <= len(done) < 3
    generate(load_recipe(recipe_path), out, workers=0, resume=True, show_progress=False)
    assert _output_bytes(out) == _output_bytes(reference)
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_no_render_writes_states_and_empty_frames(tmp_path):
    recipe_path = _small_recipe(tmp_path, episodes=1)
    out = tmp_path / "norender"
    generate(load_recipe(recipe_path), out, workers=0, render=False, rewriter="none", show_progress=False)
    (sample,) = _samples(out)
    record = EpisodeRecord.from_json_bytes(sample["episode.json"])
    assert not record.render.rendered and record.instructions.attr == record.instructions.base
    frames = load_npz(sample["frames.npz"])
    assert frames["front.offsets"].tolist() == [0]
    assert "pick_box_xyxy" not in load_npz(sample["arrays.npz"])


def test_hugging_face_datasets_loads_episode_shards(demo_run):
    datasets = pytest.importorskip("datasets")
    files = [str(p) for p in list_shards(demo_run[0])]
    ds = datasets.load_dataset("webdataset", data_files={"train": files}, split="train")
    assert ds.num_rows == 4
    row = ds[0]
    assert row["episode.json"]["schema"] == "episode/v1"
    assert len(row["arrays.npz"]["action_joints"]) == row["episode.json"]["num_steps"]
    # the folder alone: the card's front matter (`configs`) names the shards, as the Hub reads it
    by_card = datasets.load_dataset(str(demo_run[0]), split="train")
    assert by_card.num_rows == 4 and by_card[0]["__key__"] == row["__key__"]


def test_the_dataset_card_summarises_the_set(demo_run):
    out, _ = demo_run
    text = (out / CARD_NAME).read_text(encoding="utf-8")
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["task_categories"] == ["robotics"] and meta["size_categories"] == ["n<1K"]
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": "episodes-*.tar"}]
    recipe = load_recipe(DEMO, episodes=4)
    assert "**4 episodes**" in body and f"`{recipe.fingerprint()}`" in body
    scene = json.loads((out / STATS_NAME).read_text())["scene"]
    assert f"**{scene['objects_distinct']} distinct objects** in **{scene['categories_distinct']} categories**" in body
    for axis in scene["axes"]:  # every randomization axis has its table or histogram
        assert f"### `{axis}`" in body
    assert "█" in body and "min " in body  # numeric axes as text bars
    for word in ("cpu_physics_s", "cpu_render_s", "wall_s"):  # nothing that differs between runs: no timings,
        assert word not in body
    assert not re.search(r"\d{4}-\d{2}-\d{2}", body)  # no dates


def test_depth_and_segmentation_members_agree_with_the_labels(tmp_path):
    from dataengine.geometry import mask_bbox_xyxy

    recipe_path = _small_recipe(tmp_path, episodes=1)
    data = yaml.safe_load(recipe_path.read_text())
    data["render"].update({"width": 64, "height": 64, "depth": True, "segmentation": True})
    recipe_path.write_text(yaml.safe_dump(data))
    out = tmp_path / "depthseg"
    generate(load_recipe(recipe_path), out, workers=0, rewriter="none", show_progress=False)
    (sample,) = _samples(out)
    record = EpisodeRecord.from_json_bytes(sample["episode.json"])
    frames, arrays = load_npz(sample["frames.npz"]), load_npz(sample["arrays.npz"])
    steps = record.num_steps
    pick_index = [o.uid for o in record.layout.objects].index(record.task.pick_uid)
    for c, cam in enumerate(("front", "wrist")):
        assert frames[f"{cam}.depth_mm"].shape == (steps, 64, 64) and frames[f"{cam}.depth_mm"].dtype == np.uint16
        seg = frames[f"{cam}.segmentation"]
        assert seg.shape == (steps, 64, 64)
        for t in range(0, steps, 7):
            box = mask_bbox_xyxy(seg[t] == pick_index)
            if box is None:
                assert np.all(np.isnan(arrays["pick_box_xyxy"][t, c]))
            else:
                np.testing.assert_allclose(arrays["pick_box_xyxy"][t, c], box)


def test_too_dark_looks_are_redrawn(tmp_path):
    recipe_path = _small_recipe(tmp_path, episodes=1)
    data = yaml.safe_load(recipe_path.read_text())
    data["render"].update({"width": 48, "height": 48, "min_mean_intensity": 255, "max_redraws": 2})
    recipe_path.write_text(yaml.safe_dump(data))
    out = tmp_path / "dark"
    generate(load_recipe(recipe_path), out, workers=0, rewriter="none", show_progress=False)
    (sample,) = _samples(out)
    record = EpisodeRecord.from_json_bytes(sample["episode.json"])
    assert record.render.redraws == 2 and record.render.mean_intensity < 255


def test_occlusion_is_a_ratio_and_low_before_the_robot_arrives(demo_run):
    for sample in _samples(demo_run[0]):
        arrays = load_npz(sample["arrays.npz"])
        occlusion = arrays["pick_occlusion"]
        finite = occlusion[np.isfinite(occlusion)]
        assert finite.size and finite.min() >= 0 and finite.max() <= 1
        assert occlusion[0, 0] < 0.35  # front camera, first frame: the arm is still far from the object
