"""The closed-loop evaluation's execution path, checked apart from learning: the demonstrations' recorded actions,
played back through `evaluate_in_sim` (the generator's layouts and looks rebuilt from the recipe's seed, chunks
normalized and de-normalized with the training statistics, measured joints + delta, binary gripper targets, the
control rate and chunk execution of the evaluation) reproduce the demonstrations' success; played back on the
wrong layout they fail, so the check can fail."""

from __future__ import annotations

import pytest
import yaml

torch = pytest.importorskip("torch")

from dataengine.train.eval_sim import evaluate_in_sim  # noqa: E402
from dataengine.train.models.tiny_vlm import ByteChatEncoder  # noqa: E402
from dataengine.train.normalization import Normalizer, load_or_compute_stats  # noqa: E402
from dataengine.train.replay_policy import RecordedActionsPolicy, recorded_actions  # noqa: E402
from dataengine.train.shard_index import load_shard_set  # noqa: E402
from tests.fixtures.train_data import SIM_DEMO_RECIPE, make_episode_shards  # noqa: E402

SIZE = 48


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Two generated episodes, the sim recipe that made them (as a file) and their normalizer."""
    root = tmp_path_factory.mktemp("eval_sim")
    make_episode_shards(root / "sim", episodes=2, size=SIZE)
    raw = yaml.safe_load(SIM_DEMO_RECIPE.read_text())
    raw.update(episodes=2, episodes_per_shard=1)
    raw["render"].update(preset="fast", cameras=["front"], width=SIZE, height=SIZE)
    recipe = root / "sim_recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    stats, _ = load_or_compute_stats(load_shard_set(root / "sim"), root / "sim", root)
    return recipe, recorded_actions(root / "sim"), Normalizer(stats)


def replay(demos, episodes, execute_steps: int) -> dict:
    recipe, _, normalizer = demos
    policy = RecordedActionsPolicy(episodes, normalizer, chunk_size=16, execute_steps=execute_steps)
    return evaluate_in_sim(
        policy, ByteChatEncoder(SIZE, 224), normalizer, str(recipe), episodes=2, device=torch.device("cpu"),
        camera="front", image_size=SIZE, seed_offset=0, max_steps=150, execute_steps=execute_steps,
    )  # fmt: skip


@pytest.mark.parametrize("execute_steps", [8, 16])
def test_recorded_actions_replayed_through_the_evaluation_succeed(demos, execute_steps):
    metrics = replay(demos, demos[1], execute_steps)
    assert metrics["sim_episodes"] == 2
    assert metrics["sim_outcomes"] == {"success": 2}, metrics
    assert metrics["sim_lift_rate"] == 1.0


def test_recorded_actions_on_the_wrong_layout_fail(demos):
    swapped = {0: demos[1][1], 1: demos[1][0]}
    metrics = replay(demos, swapped, 8)
    assert metrics["sim_success_rate"] == 0.0, metrics
