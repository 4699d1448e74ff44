"""LeRobot exports of generated episodes, read back: v3.0 by LeRobot's own reader (interop venv, with data and video
files rolled over several times), both formats with pyarrow/pandas, the GR00T modality slices and the statistics as
the GR00T loader computes them. Frame counts, actions, episode boundaries and camera parameters are compared with
the episode shards they came from."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dataengine.export import lerobot_v30
from dataengine.export.lerobot import export_lerobot
from dataengine.export.lerobot_columns import FILL, PAUSE_FILTER_COLUMN, action_vector, slice_bounds, state_vector
from dataengine.export.lerobot_common import ExportOptions
from dataengine.export.lerobot_eef import base_pose
from dataengine.export.video import read_video_rgb
from dataengine.shards.episode import iter_episodes
from tests.simout_helpers import HEIGHT, REPO, WIDTH, lerobot_doctor, lerobot_python, simout_episodes

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


@pytest.fixture(scope="module")
def v30_rolled(episodes, tmp_path_factory):
    """v3.0 with files limited to 60 kB (a "MB" of 60 000 bytes): data and videos roll over every episode or two."""
    out = tmp_path_factory.mktemp("lerobot") / "v30_rolled"
    options = ExportOptions(data_files_size_in_mb=1, video_files_size_in_mb=1, chunks_size=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lerobot_v30, "MB", 60_000)
        export_lerobot(episodes[0], out, format="v3.0", options=options)
    return out


def _bounds(eps) -> list[tuple[int, int]]:
    starts = np.cumsum([0] + [e.num_steps for e in eps])
    return [(int(a), int(b)) for a, b in itertools.pairwise(starts)]


def _data_frame(root: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(root.glob("data/*/*.parquet"))], ignore_index=True)


def _data_table(root: Path):
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(p) for p in sorted(root.glob("data/*/*.parquet"))])


def _column(table, key: str) -> np.ndarray:
    return np.asarray(table.column(key).to_pylist(), dtype=np.float64)


def test_v30_read_back_by_lerobot(episodes, v30_rolled, tmp_path):
    python = lerobot_python()
    _, eps = episodes
    dump = tmp_path / "read.npz"
    proc = subprocess.run(
        [str(python), str(CHECK_SCRIPT), str(v30_rolled), str(dump), "--every", "9"],
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
    subtasks = pd.read_parquet(v30_rolled / "meta/subtasks.parquet")
    names = {int(i): str(text) for text, i in subtasks["subtask_index"].items()}
    phases = [p.name for e in eps for p in e.record.phases for _ in range(p.start, p.end)]
    assert [names[int(i)] for i in got["subtask_index"]] == phases
    for row, subtask in seen["subtasks_by_row"].items():  # readers that resolve meta/subtasks.parquet (lerobot)
        e = int(np.searchsorted(starts, int(row), side="right") - 1)
        t = int(row) - starts[e]
        assert subtask == next(p.name for p in eps[e].record.phases if p.start <= t < p.end)
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


def test_v30_data_and_videos_roll_over_together(episodes, v30_rolled):
    _, eps = episodes
    meta = pq.read_table(v30_rolled / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    info = json.loads((v30_rolled / "meta/info.json").read_text())
    slots = [(r["data/chunk_index"], r["data/file_index"]) for r in meta]
    assert len(set(slots)) >= 2, slots  # the limits made it roll over
    for row, ep in zip(meta, eps, strict=True):
        for cam in ("front", "wrist"):
            key = f"observation.images.{cam}"
            assert (row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"]) == (
                row["data/chunk_index"], row["data/file_index"])  # fmt: skip
        data = pd.read_parquet(v30_rolled / info["data_path"].format(
            chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]))  # fmt: skip
        assert (data["episode_index"] == row["episode_index"]).sum() == ep.num_steps
    for chunk, file in sorted(set(slots)):
        in_file = [r for r in meta if (r["data/chunk_index"], r["data/file_index"]) == (chunk, file)]
        path = v30_rolled / info["video_path"].format(video_key="observation.images.wrist", chunk_index=chunk,
                                                      file_index=file)  # fmt: skip
        assert len(read_video_rgb(path)) == sum(r["length"] for r in in_file)
        assert in_file[0]["videos/observation.images.wrist/from_timestamp"] == 0.0


def _check_common(root: Path, eps, view: dict[str, str]) -> None:
    """What both formats share: no NaN, stats of every feature, exact GR00T statistics, masks, subtasks, cameras,
    end-effector slices, per-dimension names."""
    info = json.loads((root / "meta/info.json").read_text())
    frame, table = _data_frame(root), _data_table(root)
    for key in table.column_names:
        assert np.isfinite(_column(table, key)).all(), key
    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats) == set(info["features"])
    assert stats["action"]["count"] == [sum(e.num_steps for e in eps)]
    actions = _column(table, "action")
    np.testing.assert_allclose(stats["action"]["q01"], np.quantile(actions, 0.01, axis=0), atol=1e-6)
    assert np.asarray(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert np.asarray(stats[f"annotation.{view['wrist']}.bbox2d_tight"]["max"]).shape == (2, 5)

    # stats_gr00t.json: the envelope starVLA keeps, with what its loader computes from the parquet files
    gr00t = json.loads((root / "meta/stats_gr00t.json").read_text())
    assert gr00t["__format_version"] == 2 and gr00t["__cache_config"] == {"mode": "abs"}
    for key in ("observation.state", "action", "timestamp", f"annotation.{view['front']}.grasp_point_2d"):
        data = np.vstack([np.asarray(x, dtype=np.float32) for x in frame[key]])
        expected = {"mean": np.mean(data, axis=0), "std": np.std(data, axis=0), "min": np.min(data, axis=0),
                    "max": np.max(data, axis=0), "q01": np.quantile(data, 0.01, axis=0),
                    "q99": np.quantile(data, 0.99, axis=0)}  # fmt: skip
        for name, value in expected.items():
            np.testing.assert_allclose(gr00t["statistics"][key][name], value, rtol=1e-6, atol=1e-6, err_msg=key)

    names = {k: info["features"][k]["names"] for k in ("observation.state", "action")}
    assert len(names["action"]) == 29 == len(set(names["action"])) and len(names["observation.state"]) == 15
    assert names["action"][7] == "gripper_close" and names["action"][16] == "eef_position.x"
    assert info["features"][PAUSE_FILTER_COLUMN]["names"] == ["x", "y", "z"]

    modality = json.loads((root / "meta/modality.json").read_text())
    assert modality["video"] == {"base_view": {"original_key": "observation.images.front"},
                                 "ego_view": {"original_key": "observation.images.wrist"}}  # fmt: skip
    for language in ("human.action.task_description", "human.task_description"):
        assert modality["annotation"][language] == {"original_key": "task_index"}
    assert not modality["action"]["eef_relative_position"]["absolute"] and modality["action"]["joints"]["absolute"]

    subtasks = pd.read_parquet(root / "meta/subtasks.parquet")
    names_by_index = {int(i): str(text) for text, i in subtasks["subtask_index"].items()}
    cameras = json.loads((root / "meta/cameras.json").read_text())
    assert cameras["cameras"]["wrist"]["moves"] and not cameras["cameras"]["front"]["moves"]
    assert "OpenCV" in cameras["conventions"]["camera_frame"]
    params = [json.loads(line) for line in (root / "meta/camera_params.jsonl").read_text().splitlines()]
    assert f"annotation.{view['front']}.T_cam_to_world" not in table.column_names  # static: in camera_params.jsonl

    start = 0
    for i, ep in enumerate(eps):
        rows = table.slice(start, ep.num_steps)
        start += ep.num_steps
        a = ep.arrays
        phase = [next(p.name for p in ep.record.phases if p.start <= t < p.end) for t in range(ep.num_steps)]
        assert [names_by_index[int(s)] for s in _column(rows, "subtask_index")] == phase
        for c, cam in enumerate(("front", "wrist")):
            v = view[cam]
            boxes = _column(rows, f"annotation.{v}.bbox2d_tight")
            valid = _column(rows, f"annotation.{v}.bbox2d_tight_valid").astype(bool)
            source = np.stack([a["pick_box_xyxy"][:, c], a["container_box_xyxy"][:, c]], axis=1)
            np.testing.assert_array_equal(valid, np.isfinite(source).all(-1))
            np.testing.assert_allclose(boxes[..., :4][valid], source[valid], atol=1e-4)
            assert (boxes[~valid] == FILL).all()
            trace = _column(rows, f"annotation.{v}.tcp_2d_trace")
            tvalid = _column(rows, f"annotation.{v}.tcp_2d_trace_valid").astype(bool)
            inside = (a["trace_2d"][:, c, :, 0] >= 0) & (a["trace_2d"][:, c, :, 0] <= WIDTH) & (
                a["trace_2d"][:, c, :, 1] >= 0) & (a["trace_2d"][:, c, :, 1] <= HEIGHT)  # fmt: skip
            np.testing.assert_array_equal(tvalid, inside)
            np.testing.assert_allclose(trace[tvalid], a["trace_2d"][:, c][tvalid], atol=1e-4)
            assert (trace[~tvalid] == FILL).all()
            cam_params = params[i]["cameras"][cam]
            np.testing.assert_allclose(cam_params["intrinsics_k"], a["cam_intrinsics"][c], atol=1e-6)
            np.testing.assert_allclose(cam_params["T_cam_to_world_cv"], a["cam_T_cam_to_world"][0, c], atol=1e-6)
        extr = _column(rows, f"annotation.{view['wrist']}.T_cam_to_world")
        np.testing.assert_allclose(extr, a["cam_T_cam_to_world"][:, 1], atol=1e-5)

        # end-effector slices: base frame, relative = target - measured
        state, action = _column(rows, "observation.state"), _column(rows, "action")
        sb, ab = slice_bounds_of(modality, "state"), slice_bounds_of(modality, "action")
        R, p = base_pose(ep.record.layout)
        np.testing.assert_allclose(state[:, sb["eef_position"]] @ R.T + p, a["ee_pose"][:, :3], atol=1e-5)
        np.testing.assert_allclose(action[:, ab["eef_position"]] @ R.T + p, a["action_tool_target"][:, :3], atol=1e-5)
        np.testing.assert_allclose(
            action[:, ab["eef_relative_position"]],
            action[:, ab["eef_position"]] - state[:, sb["eef_position"]],
            atol=1e-5,
        )
        # the column the GR00T-lineage pause-frame filter reads (InternVLA-M1 stops without it)
        np.testing.assert_array_equal(_column(rows, PAUSE_FILTER_COLUMN), action[:, ab["eef_relative_position"]])
        quats = action[:, ab["eef_quaternion"]]
        assert ((quats[1:] * quats[:-1]).sum(1) >= 0).all() and quats[0, 1] >= 0  # continuous, qx >= 0 first
        np.testing.assert_allclose(params[i]["T_base_to_world"][0][3], ep.record.layout.robot.base_pos_m[0])


def slice_bounds_of(modality: dict, group: str) -> dict[str, slice]:
    return {name: slice(v["start"], v["end"]) for name, v in modality[group].items()}


def test_v30_layout_columns_and_meta(episodes, v30):
    _, eps = episodes
    info = json.loads((v30 / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == len(eps)
    assert info["features"]["action"]["shape"] == [29]
    assert info["features"]["observation.images.wrist"]["info"]["video.codec"] == "h264"
    meta = pq.read_table(v30 / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    for row, ep in zip(meta, eps, strict=True):
        assert row["length"] == ep.num_steps and row["perturbed"] is False
        for c, cam in enumerate(ep.cameras):
            k = np.asarray(row[f"cameras/{cam}/intrinsics_k"]).reshape(3, 3)
            np.testing.assert_allclose(k, ep.arrays["cam_intrinsics"][c], atol=1e-6)
        assert row["videos/observation.images.front/to_timestamp"] - row[
            "videos/observation.images.front/from_timestamp"
        ] == pytest.approx(ep.num_steps / 10)
    video = read_video_rgb(v30 / "videos/observation.images.front/chunk-000/file-000.mp4")
    assert len(video) == sum(e.num_steps for e in eps)
    _check_common(v30, eps, {"front": "front", "wrist": "wrist"})


def test_v21_modality_slices_and_meta(episodes, v21):
    _, eps = episodes
    modality = json.loads((v21 / "meta/modality.json").read_text())
    assert modality["action"]["delta_joints"]["end"] - modality["action"]["delta_joints"]["start"] == 7
    assert modality["action"]["gripper_close"]["end"] - modality["action"]["gripper_close"]["start"] == 1
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
        cams = episodes_meta[i]["task_data"]["camera_data"]
        for c, alias in enumerate(("base_view", "ego_view")):
            np.testing.assert_allclose(cams[alias]["intrinsics_k"], ep.arrays["cam_intrinsics"][c], atol=1e-6)
        assert episodes_meta[i]["length"] == ep.num_steps
        assert episodes_meta[i]["task_data"]["frame_status"] == {p.name: p.start for p in ep.record.phases}
        for cam in ("front", "wrist"):
            path = v21 / info["video_path"].format(
                episode_chunk=0, video_key=f"observation.images.{cam}", episode_index=i
            )
            assert len(read_video_rgb(path)) == ep.num_steps
    assert slice_bounds([("a", ("x", "y")), ("b", ())]) == {"a": (0, 2), "b": (2, 3)}
    _check_common(v21, eps, {"front": "base_view", "wrist": "ego_view"})


# Every WARN lerobot-doctor may give on these exports, with the heading of its explanation in docs/sim_outputs.md.
DOCTOR_WARNINGS = [
    (r"action\[(7|15)\]: .*% of values at (maximum|minimum)", "binary gripper command"),
    (r"action\[(7|15)\]: stuck/static in", "binary gripper command"),
    (r"action\[(19|20|21|22)\]: .*% of values at (maximum|minimum)", "straight-down tool targets"),
    (r"action: 29 dimensions is unusually large", "several action spaces side by side"),
    (r"annotation\..*_valid(\[\d+\])?: (zero variance|.*extreme outlier|.*constant)", "constant or rare masks"),
    (r"episodes shorter than chunk_size=\d+", "short episodes"),
]


def test_lerobot_doctor_reports_no_failure_and_documented_warnings(v30, v21, tmp_path):
    import re

    doctor = lerobot_doctor()
    docs = (REPO / "docs/sim_outputs.md").read_text()
    for _, heading in DOCTOR_WARNINGS:
        assert f"**{heading}**" in docs, heading
    for root in (v30, v21):
        proc = subprocess.run(
            [str(doctor), "check", str(root), "--json"], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout)
        messages = [(c["name"], m) for c in report["checks"] for m in c["messages"]]
        assert not [m for m in messages if m[1]["severity"] == "FAIL"], messages
        unexplained = [
            (name, m["message"])
            for name, m in messages
            if m["severity"] == "WARN" and not any(re.search(p, m["message"]) for p, _ in DOCTOR_WARNINGS)
        ]
        assert not unexplained, unexplained


def test_export_is_deterministic_and_refuses_to_overwrite(episodes, tmp_path):
    src, _ = episodes
    a, b = tmp_path / "a" / "ds", tmp_path / "b" / "ds"
    export_lerobot(src, a, format="v3.0", limit=1)
    export_lerobot(src, b, format="v3.0", limit=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.name == "export_report.json":
            continue
        if rel.parts[0] == "trainer":  # names the folder the export lives in
            text = [(root / rel).read_text().replace(str(root.parent), "PARENT") for root in (a, b)]
            assert text[0] == text[1], rel
            continue
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    from dataengine.errors import InputError

    with pytest.raises(InputError, match="not empty"):
        export_lerobot(src, a, format="v2.1", limit=1)
    assert not Path(str(a) + ".partial").exists()


def test_unrendered_episodes_are_refused_cleanly(tmp_path):
    pytest.importorskip("mujoco")
    from dataengine.errors import InputError
    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe

    src = tmp_path / "states"
    generate(load_recipe(REPO / "recipes/sim/pick_place_demo.yaml", episodes=1), src, workers=0, render=False,
             rewriter="none", show_progress=False)  # fmt: skip
    with pytest.raises(InputError, match="no frames"):
        export_lerobot(src, tmp_path / "out", format="v3.0")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
