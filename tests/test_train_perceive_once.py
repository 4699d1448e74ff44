"""Perceive once, then act (rung 2b, docs/training.md): first-frame targets are the expert's own task constants,
the table-plane back-projection inverts the camera projection, and a `vision_perceive_once` recipe trains through
the engine's loop (state policy + first-frame network), reloads from its checkpoint, and runs in the closed-loop
evaluator, which feeds it the first frame and reports its perception errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

from dataengine.train import load_recipe  # noqa: E402
from dataengine.train.first_frame import (  # noqa: E402
    back_project_to_table,
    constants_to_targets,
    project_table_points,
    render_first_frames,
    targets_to_constants,
)
from tests.fixtures.train_data import REPO, SIM_DEMO_RECIPE  # noqa: E402


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    """Two physics-only episodes of the demo recipe (front camera at 96 px) and their recipe file."""
    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe as load_sim

    root = tmp_path_factory.mktemp("perceive_once")
    raw = yaml.safe_load(SIM_DEMO_RECIPE.read_text())
    raw.update(episodes=2, episodes_per_shard=2)
    raw["render"].update(cameras=["front"], width=96, height=96)
    sim_recipe = root / "sim.yaml"
    sim_recipe.write_text(yaml.safe_dump(raw))
    generate(load_sim(sim_recipe), root / "sim", workers=0, render=False, show_progress=False)
    return root / "sim"


def test_first_frame_targets_round_trip(sim_dir):
    frames = render_first_frames(sim_dir / "recipe.resolved.json", 6, image_size=64, per_scene=3)
    assert frames["image"].shape == (6, 64, 64, 3) and frames["image"].dtype == np.uint8
    assert len(set(frames["instruction"])) >= 1
    for c, K, T, z in zip(frames["constants"], frames["K"], frames["T_cam_to_world"], frames["table_z"], strict=True):
        xy, scalars, yaw = constants_to_targets(c, z)
        np.testing.assert_allclose(targets_to_constants(xy, scalars, yaw, z), c, atol=1e-12)
        pixels = project_table_points(xy, z, K, T)
        assert np.all((pixels > 0) & (pixels < 64)), pixels  # both points are in view
        np.testing.assert_allclose(back_project_to_table(pixels, z, K, T), xy, atol=1e-9)
    # the re-placed scenes differ from the sampled one
    assert not np.allclose(frames["constants"][0], frames["constants"][1])


def test_first_frame_constants_are_the_experts(sim_dir):
    """The targets computed from a layout equal the task constants the evaluator builds from the expert's plan."""
    from dataengine.sim.assets import load_catalog
    from dataengine.sim.backends import get_backend
    from dataengine.sim.recipe import load_recipe as load_sim
    from dataengine.sim.search import find_episode
    from dataengine.train.first_frame import layout_constants
    from dataengine.train.observations import task_context

    sim = load_sim(sim_dir / "recipe.resolved.json")
    catalog = load_catalog(sim.catalogs or None)
    backend = get_backend(sim.backend, catalog_dir=catalog.base_dir)
    try:
        found = find_episode(sim, catalog, backend, 0)
    finally:
        backend.close()
    expected = task_context(found.layout, found.plan.grasp_point_m, found.plan.place_point_m).constants
    np.testing.assert_allclose(layout_constants(found.layout, sim), expected, atol=1e-12)


def test_perceive_once_trains_reloads_and_runs_closed_loop(sim_dir, tmp_path):
    from dataengine.train.eval_sim import evaluate_in_sim
    from dataengine.train.evaluate import load_policy
    from dataengine.train.loop import Trainer
    from dataengine.train.perception import PerceiveOncePolicy

    recipe = load_recipe(
        REPO / "recipes/train/vision_perceive_once.yaml",
        {
            "data.episodes": str(sim_dir), "stage2.steps": 20, "stage2.warmup_steps": 2, "checkpoint_every": 20,
            "perception.frames": 8, "perception.per_scene": 4, "perception.steps": 3, "perception.batch": 4,
            "perception.image_size": 64, "perception.crop_rows": [16, 56],
        },
    )  # fmt: skip
    trainer = Trainer(recipe, tmp_path / "run", None, "cpu")
    result = trainer.run(resume=False)
    assert isinstance(trainer.policy, PerceiveOncePolicy)
    metrics = evaluate_in_sim(
        trainer.policy, trainer.encoder, trainer.data.normalizer, str(sim_dir / "recipe.resolved.json"), episodes=1,
        device=trainer.device, cameras=[], seed_offset=0, max_steps=8, execute_steps=8,
    )  # fmt: skip
    assert metrics["sim_episodes"] == 1
    assert metrics["sim_perceived_grasp_error_m_median"] >= 0
    policy, *_ = load_policy(result.checkpoint, "cpu")
    assert isinstance(policy, PerceiveOncePolicy) and policy.image_size == 64
    frame, text = np.zeros((1, 64, 64, 3), np.uint8), ["Put the red cube in the bowl."]
    reloaded, trained = policy.perceiver.predict(frame, text), trainer.policy.perceiver.predict(frame, text)
    for a, b in zip(reloaded, trained, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_perception_needs_the_task_state():
    with pytest.raises(Exception, match="perception"):
        load_recipe(REPO / "recipes/train/vision_policy.yaml", {"perception": {"frames": 4}})
