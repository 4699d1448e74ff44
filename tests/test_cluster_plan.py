"""`dataengine sim plan` (a real calibration run, then budgets on clusters) and `build --dry-run` on a cluster."""

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dataengine.cli.app import app
from dataengine.corpus import build_corpus
from dataengine.errors import RecipeError
from dataengine.runtime.capacity import RAY_START_S, Cluster
from dataengine.sim.calibrate import SimCalibration, calibrate, cost_fingerprint
from dataengine.sim.cluster_plan import check_calibration, plan_generate
from dataengine.sim.recipe import load_recipe
from tests.fixtures.corpus_sources import build_corpus_sources, write_recipe

pytest.importorskip("mujoco")
DEMO = Path(__file__).resolve().parents[1] / "recipes/sim/pick_place_demo.yaml"


def _recipe(tmp_path: Path, name: str = "small.yaml", **render) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    data.update({"episodes_per_shard": 32, "render": {**data["render"], "width": 48, "height": 48, **render}})
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, SimCalibration]:
    tmp = tmp_path_factory.mktemp("calibration")
    path = _recipe(tmp)
    return path, calibrate(load_recipe(path), episodes=2)


def test_calibration_measures_a_real_run(calibrated, tmp_path):
    _, cal = calibrated
    assert cal.episodes == 2 and cal.backend == "mujoco" and cal.render
    assert 0 < cal.cpu_s_per_episode <= cal.cpu_s_max and cal.wall_s_per_episode > 0
    assert cal.attempts_per_episode >= 1 and cal.lost_episodes == 0
    assert 2_000 < cal.sample_bytes_per_episode < 5_000_000 and cal.shard_overhead_bytes > 0
    assert cal.marker_bytes_per_episode > 100 and cal.peak_rss_bytes > 50 << 20
    assert cal.machine["cpus"] >= 1 and cal.date
    cal.save(tmp_path / "cal.json")
    assert SimCalibration.load(tmp_path / "cal.json") == cal
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(RecipeError, match="not a dataengine/sim-calibration"):
        SimCalibration.load(tmp_path / "bad.json")


def test_a_calibration_only_plans_what_costs_the_same(calibrated, tmp_path):
    path, cal = calibrated
    recipe = load_recipe(path)
    check_calibration(cal, load_recipe(path, seed=99, episodes=244_000), True, "offline")  # seed and count: same
    with pytest.raises(RecipeError, match="another configuration"):
        check_calibration(cal, load_recipe(_recipe(tmp_path, width=96)), True, "offline")
    with pytest.raises(RecipeError, match="another configuration"):
        check_calibration(cal, recipe, False, "offline")
    with pytest.raises(RecipeError, match="openai"):
        calibrate(recipe, episodes=2, rewriter="openai")


def test_plan_of_244k_episodes_on_8_nodes(calibrated):
    path, cal = calibrated
    recipe = load_recipe(path)
    plan = plan_generate(recipe, 244_000, Cluster(nodes=8, cpus_per_node=64), cal)
    assert plan["tasks"] == math.ceil(244_000 / 32) == 7625
    phase = plan["estimate"]["phases"][0]
    assert phase["slots"] == 511 and phase["waves"] == math.ceil(7625 / 511)
    work_h = 7625 * (32 * cal.cpu_s_per_episode + cal.worker_start_s / 8) / 3600
    assert plan["estimate"]["core_hours"] == pytest.approx(work_h, rel=0.01)
    assert plan["estimate"]["wall_s"] > RAY_START_S + (phase["waves"] - 1) * phase["task_s"]
    lo, hi = plan["core_hours_range"]
    assert lo < plan["estimate"]["core_hours"] < hi
    assert plan["bytes"]["shards"] == pytest.approx(244_000 * cal.sample_bytes_per_episode, rel=0.01)
    timeout = plan["task_timeout_s"]  # 4x the longest chunk, whole minutes, at least 10 min
    assert plan["longest_task_s"] > phase["task_s"]
    assert timeout % 60 == 0 and timeout >= max(600, 4 * plan["longest_task_s"])
    assert plan["ray"]["job_command"].endswith(
        f"--episodes 244000 --out /shared/OUT --ray-address auto --task-timeout {timeout}"
    )
    assert "--num-cpus=63" in plan["ray"]["head_command"]
    assert plan["failures"]["expected_lost_episodes"] == 0


def test_isaac_plan_runs_one_task_per_rtx_gpu_from_a_calibration_measured_there(calibrated, tmp_path):
    path, cal = calibrated
    isaac = load_recipe(path, backend="isaac")
    with pytest.raises(RecipeError, match="another configuration"):
        check_calibration(cal, isaac, True, "offline")  # a MuJoCo calibration says nothing about Isaac Sim
    rtx = SimCalibration(**{**cal.__dict__, "backend": "isaac", "wall_s_per_episode": 2.0})
    rtx.cost_fingerprint = cost_fingerprint(isaac, True, "offline")
    check_calibration(rtx, isaac, True, "offline")
    with pytest.raises(RecipeError, match="--gpus-per-node"):
        plan_generate(isaac, 244_000, Cluster(nodes=4, cpus_per_node=32), rtx)
    plan = plan_generate(isaac, 244_000, Cluster(nodes=4, cpus_per_node=32, gpus_per_node=8), rtx)
    phase = plan["estimate"]["phases"][0]
    assert phase["slots"] == 32 and phase["task_s"] == pytest.approx(32 * 2.0 + cal.worker_start_s / 8, rel=1e-3)
    assert plan["estimate"]["gpu_hours"] == pytest.approx(7625 * phase["task_s"] / 3600, rel=0.01)
    assert "--resources='{\"rtx\": 8}'" in plan["ray"]["worker_command"]


def test_sim_plan_cli_with_a_calibration_file(calibrated, tmp_path):
    path, cal = calibrated
    cal.save(tmp_path / "cal.json")
    result = CliRunner().invoke(
        app,
        ["sim", "plan", str(path), "--episodes", "244000", "--nodes", "8", "--cpus-per-node", "64",
         "--calibration", str(tmp_path / "cal.json"), "--preemptions-per-node-hour", "0.05",
         "--json", str(tmp_path / "plan.json")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "244,000 episodes in 7,625 tasks of 32" in result.output
    assert "core-hours" in result.output and "ray start --head" in result.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["failures"]["expected_retried_tasks"] > 0
    assert f"--ray-address auto --task-timeout {plan['task_timeout_s']}" in result.output
    bad = CliRunner().invoke(app, ["sim", "plan", str(_recipe(tmp_path, width=64)), "--episodes", "10",
                                   "--calibration", str(tmp_path / "cal.json")])  # fmt: skip
    assert isinstance(bad.exception, RecipeError) and "another configuration" in str(bad.exception)


def test_build_dry_run_on_a_cluster_measures_scan_plan_and_write(tmp_path):
    build_corpus_sources(tmp_path / "sources")
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "sources")
    cluster = Cluster(nodes=8, cpus_per_node=64)
    plan = build_corpus(recipe, tmp_path / "dry", dry_run=True, workers=0, cluster=cluster)
    assert not (tmp_path / "dry").exists()
    b = plan["budget"]
    assert b["measured"]["scan_cpu_s"] > 0 and b["measured"]["scan_samples"] == 89
    assert b["measured"]["write_slice"]["samples"] > 0 and b["measured"]["write_cpu_s_per_sample"] > 0
    phases = {p["name"]: p for p in b["estimate"]["phases"]}
    assert phases["scan"]["tasks"] == 11 and phases["write"]["tasks"] == plan["n_buckets"]
    assert b["bytes"]["output"] == plan["est_bytes"] and b["bytes"]["scan_parts"] > 0
    assert b["ray"]["job_command"].endswith("--ray-address auto")
    result = CliRunner().invoke(
        app, ["build", str(recipe), "--out", str(tmp_path / "dry"), "--dry-run", "--workers", "0", "--nodes", "8",
              "--cpus-per-node", "64"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "on 8 nodes x 64 CPUs" in result.output and "write:" in result.output
