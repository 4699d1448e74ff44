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
    return recipe, root / "sim", stats


def recorded(demos, space: str):
    return recorded_actions(demos[1], space, 16), Normalizer(demos[2], action_space=space)


def replay(demos, space: str, execute_steps: int, swap: bool = False) -> dict:
    recipe = demos[0]
    episodes, normalizer = recorded(demos, space)
    if swap:
        episodes = {0: episodes[1], 1: episodes[0]}
    policy = RecordedActionsPolicy(episodes, normalizer, chunk_size=16, execute_steps=execute_steps)
    return evaluate_in_sim(
        policy, ByteChatEncoder(SIZE, 224), normalizer, str(recipe), episodes=2, device=torch.device("cpu"),
        camera="front", image_size=SIZE, seed_offset=0, max_steps=150, execute_steps=execute_steps,
    )  # fmt: skip


@pytest.mark.parametrize(
    "space,execute_steps",
    [("joint_delta", 8), ("joint_delta", 16), ("ee_relative", 8), ("ee_relative", 16), ("joint_relative", 8),
     ("joint_absolute", 8)],
)  # fmt: skip
def test_recorded_actions_replayed_through_the_evaluation_succeed(demos, space, execute_steps):
    metrics = replay(demos, space, execute_steps)
    assert metrics["sim_episodes"] == 2
    assert metrics["sim_outcomes"] == {"success": 2}, metrics
    assert metrics["sim_lift_rate"] == 1.0


@pytest.mark.parametrize("space", ["joint_delta", "ee_relative", "joint_relative"])
def test_recorded_actions_on_the_wrong_layout_fail(demos, space):
    metrics = replay(demos, space, 8, swap=True)
    assert metrics["sim_success_rate"] == 0.0, metrics
