"""The state policy learns demonstrations: trained through the engine's own loop on a handful of generated
episodes, it succeeds closed loop on their layouts (the evaluator rebuilds them from the recipe's seed). A
regression in the recorded actions, the state features, the chunking or the normalization breaks this test; the
same policy with its training cut short does not succeed, so the test can fail. Also: `dataengine sim probe` end
to end, and the state vectors built from a recorded episode equal the ones built live from the simulator."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

from dataengine.errors import InputError  # noqa: E402
from dataengine.train import load_recipe  # noqa: E402
from dataengine.train.eval_sim import evaluate_in_sim  # noqa: E402
from dataengine.train.loop import Trainer  # noqa: E402
from tests.fixtures.train_data import REPO, SIM_DEMO_RECIPE  # noqa: E402

EPISODES = 3


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    """Three physics-only episodes (no rendering: the state policy reads no frame) and their recipe file."""
    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe as load_sim

    root = tmp_path_factory.mktemp("state_policy")
    raw = yaml.safe_load(SIM_DEMO_RECIPE.read_text())
    raw.update(episodes=EPISODES, episodes_per_shard=EPISODES)
    sim_recipe = root / "sim.yaml"
    sim_recipe.write_text(yaml.safe_dump(raw))
    generate(load_sim(sim_recipe), root / "sim", workers=0, render=False, show_progress=False)
    return root / "sim", sim_recipe


def train_and_evaluate(episodes, tmp_path, steps: int) -> dict:
    shards, sim_recipe = episodes
    recipe = load_recipe(
        REPO / "recipes/train/state_policy.yaml",
        {"data.episodes": str(shards), "stage2.steps": steps, "stage2.warmup_steps": 10, "checkpoint_every": steps},
    )
    trainer = Trainer(recipe, tmp_path / f"run{steps}", None, "cpu")
    trainer.run(resume=False)
    return evaluate_in_sim(
        trainer.policy, trainer.encoder, trainer.data.normalizer, str(sim_recipe), episodes=EPISODES,
        device=trainer.device, cameras=[], seed_offset=0, max_steps=150, execute_steps=8,
    )  # fmt: skip


def test_state_policy_reproduces_its_demonstrations_closed_loop(episodes, tmp_path):
    metrics = train_and_evaluate(episodes, tmp_path, steps=600)
    assert metrics["sim_episodes"] == EPISODES
    assert metrics["sim_successes"] >= 1, metrics
    low, high = metrics["sim_success_ci95"]
    assert 0 <= low <= metrics["sim_success_rate"] <= high <= 1


def test_state_policy_untrained_fails(episodes, tmp_path):
    metrics = train_and_evaluate(episodes, tmp_path, steps=1)
    assert metrics["sim_successes"] == 0, metrics
    assert sum(metrics["sim_failure_modes"].values()) == EPISODES


def test_recorded_and_live_states_agree(episodes):
    """The state of step t built from the shard equals the one built live while the simulator replays the
    episode's actions (as the evaluator reads it: after stepping)."""
    from dataengine.records.episode import EpisodeRecord
    from dataengine.shards import iter_samples, list_shards
    from dataengine.shards.episode import load_npz
    from dataengine.sim.backends import get_backend
    from dataengine.sim.backends.base import SimState
    from dataengine.train.observations import STATE_KINDS, LiveState, context_from_record, episode_states

    sample = next(iter_samples(list_shards(episodes[0])[0]))
    record = EpisodeRecord.from_json_bytes(sample["episode.json"])
    arrays = load_npz(sample["arrays.npz"])
    backend = get_backend("mujoco")
    try:
        backend.load(record.layout, control_hz=record.control_hz)
        for kind in STATE_KINDS:
            recorded = episode_states(kind, record, arrays)
            live = LiveState(kind, record.layout, context_from_record(record), backend.control_dt_s)
            q = arrays
            backend.set_state(SimState(q["qpos"][0], q["qvel"][0], np.zeros(0), q["ctrl"][0], q["time_s"][0]))
            for t in range(record.num_steps):
                np.testing.assert_allclose(live.observe(backend.robot()), recorded[t], atol=1e-6, err_msg=kind)
                backend.set_joint_targets(q["action_joints"][t], float(q["action_gripper_opening"][t]))
                backend.step(1)
    finally:
        backend.close()


def test_probe_command_reports_success_with_interval(episodes, tmp_path):
    from typer.testing import CliRunner

    from dataengine.cli.app import app

    shards = episodes[0]
    report = tmp_path / "probe.json"
    args = ["sim", "probe", str(shards), "--episodes", str(EPISODES), "--eval-episodes", "2", "--steps", "400"]
    args += ["--json", str(report), "--min-success", "1.0"]
    result = CliRunner().invoke(app, args, env={**os.environ, "COLUMNS": "200"})
    data = json.loads(report.read_text())
    below = data["success_rate"] < 1.0
    assert result.exit_code == (1 if below else 0), result.output  # the threshold decides the exit code
    assert ("below --min-success" in result.output) == below and "95% CI" in result.output
    assert data["episodes"] == 2 and data["train_episodes"] == EPISODES and len(data["success_ci95"]) == 2
    missing = CliRunner().invoke(app, ["sim", "probe", str(tmp_path)], env={**os.environ, "COLUMNS": "200"})
    assert isinstance(missing.exception, InputError) and "recipe.resolved.json" in str(missing.exception)
