"""LeRobot exports of generated episodes, read back: v3.0 by LeRobot's own reader (interop venv), v2.1 with pyarrow
and the GR00T modality slices. Frame counts, actions, episode boundaries and camera parameters are compared with
the episode shards they came from."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dataengine.export.lerobot import export_lerobot
from dataengine.export.lerobot_columns import action_vector, slice_bounds, state_vector
from dataengine.export.video import read_video_rgb
from dataengine.sim.episode_reader import iter_episodes
from tests.simout_helpers import HEIGHT, REPO, WIDTH, lerobot_python, simout_episodes

CHECK_SCRIPT = REPO / "tests/interop/lerobot_read_check.py"
MAX_MEAN_ABS_ERR = 6.0  # per frame, 0..255 scale: h264 crf 18 against the stored JPEGs


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    out = simout_episodes(tmp_path_factory)
    return out, list(iter_episodes(out))


@pytest.fixture(scope="module")
def v30(episodes, tmp_path_factory):
    out = tmp_path_factory.mktemp("lerobot") / "v30"
    export_lerobot(episodes[0], out, format="v3.0")
    return out


@pytest.fixture(scope="module")
def v21(episodes, tmp_path_factory):
    out = tmp_path_factory.mktemp("lerobot") / "v21"
    export_lerobot(episodes[0], out, format="v2.1")
    return out


def _bounds(eps) -> list[tuple[int, int]]:
    starts = np.cumsum([0] + [e.num_steps for e in eps])
    return [(int(a), int(b)) for a, b in itertools.pairwise(starts)]


def test_v30_read_back_by_lerobot(episodes, v30, tmp_path):
    python = lerobot_python()
    _, eps = episodes
    dump = tmp_path / "read.npz"
    proc = subprocess.run(
        [str(python), str(CHECK_SCRIPT), str(v30), str(dump), "--every", "9"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["fps"] == 10 and seen["num_episodes"] == len(eps)
    assert seen["num_frames"] == sum(e.num_steps for e in eps)
    assert [(e["from"], e["to"]) for e in seen["episodes"]] == _bounds(eps)
    assert [e["episode_key"] for e in seen["episodes"]] == [e.key for e in eps]
    assert [seen["tasks_by_episode"][str(i)] for i in range(len(eps))] == [e.record.instructions.base for e in eps]
    assert seen["features"]["observation.images.front"]["shape"] == [HEIGHT, WIDTH, 3]
    got = np.load(dump)
    np.testing.assert_array_equal(got["actions"], np.concatenate([action_vector(e) for e in eps]))
    np.testing.assert_array_equal(got["states"], np.concatenate([state_vector(e) for e in eps]))
    np.testing.assert_array_equal(got["frame_index"], np.concatenate([np.arange(e.num_steps) for e in eps]))
    starts = np.array([a for a, _ in _bounds(eps)])
    for cam in ("front", "wrist"):
        decoded = got[f"frames__observation.images.{cam}"]
        assert decoded.shape[1:] == (HEIGHT, WIDTH, 3)
        aligned, shifted = [], []
        for row, frame in zip(got["frame_rows"], decoded, strict=True):
            e = int(np.searchsorted(starts, row, side="right") - 1)
            t = int(row - starts[e])
            err = np.abs(frame.astype(np.int16) - eps[e].rgb(cam, t).astype(np.int16)).mean()
            assert err < MAX_MEAN_ABS_ERR, (cam, row, err)
            aligned.append(err)
            other = t + 1 if t + 1 < eps[e].num_steps else t - 1
            shifted.append(np.abs(frame.astype(np.int16) - eps[e].rgb(cam, other).astype(np.int16)).mean())
        assert np.mean(aligned) < np.mean(shifted)  # each decoded frame is the right one, not a neighbour


def test_v30_layout_and_camera_parameters(episodes, v30):
    _, eps = episodes
    info = json.loads((v30 / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == len(eps)
    assert info["features"]["action"]["shape"] == [16] and len(info["features"]["action"]["names"]) == 16
    assert info["features"]["observation.images.wrist"]["info"]["video.codec"] == "h264"
    meta = pq.read_table(v30 / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    for row, ep in zip(meta, eps, strict=True):
        assert row["length"] == ep.num_steps
        for c, cam in enumerate(ep.cameras):
            k = np.asarray(row[f"cameras/{cam}/intrinsics_k"]).reshape(3, 3)
            np.testing.assert_allclose(k, ep.arrays["cam_intrinsics"][c], atol=1e-6)
            t0 = np.asarray(row[f"cameras/{cam}/T_cam_to_world_first"]).reshape(4, 4)
            np.testing.assert_allclose(t0, ep.arrays["cam_T_cam_to_world"][0, c], atol=1e-6)
        assert row["videos/observation.images.front/to_timestamp"] - row[
            "videos/observation.images.front/from_timestamp"
        ] == pytest.approx(ep.num_steps / 10)
    data = pq.read_table(v30 / "data/chunk-000/file-000.parquet")
    extr = np.asarray(data.column("annotation.wrist.T_cam_to_world").to_pylist(), np.float32)
    np.testing.assert_allclose(extr, np.concatenate([e.arrays["cam_T_cam_to_world"][:, 1] for e in eps]), atol=1e-5)
    stats = json.loads((v30 / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert stats["action"]["count"] == [sum(e.num_steps for e in eps)]
    video = read_video_rgb(v30 / "videos/observation.images.front/chunk-000/file-000.mp4")
    assert len(video) == sum(e.num_steps for e in eps)


def test_v21_modality_slices_and_camera_parameters(episodes, v21):
    _, eps = episodes
    modality = json.loads((v21 / "meta/modality.json").read_text())
    assert modality["action"]["delta_joints"]["end"] - modality["action"]["delta_joints"]["start"] == 7
    assert modality["action"]["gripper_close"]["end"] - modality["action"]["gripper_close"]["start"] == 1
    assert modality["video"]["base_view"]["original_key"] == "observation.images.front"
    assert modality["video"]["ego_view"]["original_key"] == "observation.images.wrist"
    assert modality["annotation"]["human.action.task_description"]["original_key"] == "task_index"
    info = json.loads((v21 / "meta/info.json").read_text())
    assert info["codebase_version"] == "v2.1" and info["total_videos"] == 2 * len(eps)
    tasks = {r["task_index"]: r["task"] for r in map(json.loads, (v21 / "meta/tasks.jsonl").read_text().splitlines())}
    episodes_meta = [json.loads(line) for line in (v21 / "meta/episodes.jsonl").read_text().splitlines()]
    for i, ep in enumerate(eps):
        table = pq.read_table(v21 / info["data_path"].format(episode_chunk=0, episode_index=i))
        assert table.num_rows == ep.num_steps
        for group, column in (("action", "action"), ("state", "observation.state")):
            values = np.asarray(table.column(modality[group]["joints"]["original_key"]).to_pylist())
            assert modality[group]["joints"]["original_key"] == column
            sl = {k: values[:, v["start"] : v["end"]] for k, v in modality[group].items()}
            if group == "action":
                np.testing.assert_allclose(sl["delta_joints"], ep.arrays["action_delta_joints"], atol=1e-6)
                np.testing.assert_array_equal(sl["gripper_close"][:, 0], ep.arrays["action_gripper_close"])
                np.testing.assert_allclose(sl["joints"], ep.arrays["action_joints"], atol=1e-6)
            else:
                np.testing.assert_allclose(sl["joints"], ep.arrays["state_joints"], atol=1e-6)
        assert tasks[table.column("task_index")[0].as_py()] == ep.record.instructions.base
        trace = np.asarray(table.column("annotation.base_view.tcp_2d_trace").to_pylist(), np.float32)
        np.testing.assert_array_equal(trace, ep.arrays["trace_2d"][:, 0])
        boxes = np.asarray(table.column("annotation.ego_view.bbox2d_tight").to_pylist(), np.float32)
        np.testing.assert_array_equal(boxes[:, 0, 1:5], ep.arrays["pick_box_xyxy"][:, 1])
        cams = episodes_meta[i]["task_data"]["camera_data"]
        for c, alias in enumerate(("base_view", "ego_view")):
            np.testing.assert_allclose(cams[alias]["intrinsics_k"], ep.arrays["cam_intrinsics"][c], atol=1e-6)
            np.testing.assert_allclose(
                cams[alias]["T_cam_to_world_cv"], ep.arrays["cam_T_cam_to_world"][0, c], atol=1e-6
            )
        assert episodes_meta[i]["length"] == ep.num_steps
        assert episodes_meta[i]["task_data"]["frame_status"] == {p.name: p.start for p in ep.record.phases}
        for cam in ("front", "wrist"):
            path = v21 / info["video_path"].format(
                episode_chunk=0, video_key=f"observation.images.{cam}", episode_index=i
            )
            assert len(read_video_rgb(path)) == ep.num_steps
    gr00t = json.loads((v21 / "meta/stats_gr00t.json").read_text())
    assert set(gr00t["action"]) == {"mean", "std", "min", "max", "q01", "q99"} and len(gr00t["action"]["max"]) == 16
    assert slice_bounds([("a", 7), ("b", 1)]) == {"a": (0, 7), "b": (7, 8)}


def test_export_is_deterministic_and_refuses_to_overwrite(episodes, tmp_path):
    src, _ = episodes
    a, b = tmp_path / "a", tmp_path / "b"
    export_lerobot(src, a, format="v3.0", limit=1)
    export_lerobot(src, b, format="v3.0", limit=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.name != "export_report.json":
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    from dataengine.errors import InputError

    with pytest.raises(InputError, match="not empty"):
        export_lerobot(src, a, format="v2.1", limit=1)
    assert not Path(str(a) + ".partial").exists()


def test_unrendered_episodes_are_refused_cleanly(tmp_path):
    pytest.importorskip("mujoco")
    from dataengine.errors import InputError
    from dataengine.sim.generate import generate
    from dataengine.sim.spec import load_recipe

    src = tmp_path / "states"
    generate(load_recipe(REPO / "recipes/sim/pick_place_demo.yaml", episodes=1), src, workers=0, render=False,
             rewriter="none", show_progress=False)  # fmt: skip
    with pytest.raises(InputError, match="no frames"):
        export_lerobot(src, tmp_path / "out", format="v3.0")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
