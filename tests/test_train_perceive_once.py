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


def test_task_state_rebuilt_around_constants_matches_the_observation():
    """Joint tuning rebuilds the task state around predicted constants exactly as `observations` builds it."""
    from dataengine.train.joint_tuning import states_with_constants
    from dataengine.train.observations import TaskContext, state_vectors

    rng = np.random.default_rng(0)
    joints, grip, vel = rng.normal(size=(5, 7)), rng.uniform(size=5), rng.normal(size=(5, 7))
    pose = np.concatenate([rng.normal(size=(5, 3)), np.tile([1.0, 0, 0, 0], (5, 1))], axis=1)
    truth, predicted = TaskContext(rng.normal(size=12), 0.3), rng.normal(size=12)
    raw = state_vectors("task", joints, grip, vel, pose, truth)
    expected = state_vectors("task", joints, grip, vel, pose, TaskContext(predicted, 0.3))
    rebuilt = states_with_constants(torch.as_tensor(raw)[None], torch.as_tensor(predicted)[None])[0]
    np.testing.assert_allclose(rebuilt.numpy(), expected, atol=1e-12)


def test_gradient_decay_scales_only_the_backward_pass():
    from dataengine.train.first_frame import table_points_from_pixels
    from dataengine.train.joint_tuning import scaled_gradient

    K = torch.tensor([[[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]], dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64)[None].clone()
    T[0, :3, :3] = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])  # looking straight down
    T[0, 2, 3] = 1.0
    grads = []
    for decay in (1.0, 0.5):
        px = torch.tensor([[[40.0, 20.0]]], dtype=torch.float64, requires_grad=True)
        xy = scaled_gradient(table_points_from_pixels(px, torch.tensor([0.0], dtype=torch.float64), K, T), decay)
        xy.sum().backward()
        grads.append(px.grad.clone())
        np.testing.assert_allclose(xy.detach().numpy()[0, 0], [0.08, 0.12], atol=1e-12)  # same forward value
    np.testing.assert_allclose(grads[1].numpy(), 0.5 * grads[0].numpy(), atol=1e-12)
    assert torch.all(grads[0] != 0)


def test_joint_tuning_trains_both_networks_and_the_checkpoint_keeps_them(tmp_path):
    """`perception.joint`: the demos' first frames feed the network, the action loss reaches it, and the final
    checkpoint holds the tuned state policy and network (the run's pre-trained network is kept beside them)."""
    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe as load_sim
    from dataengine.train.evaluate import load_policy
    from dataengine.train.loop import JOINT_FILE, Trainer

    raw = yaml.safe_load(SIM_DEMO_RECIPE.read_text())
    raw.update(episodes=2, episodes_per_shard=2)
    raw["render"].update(cameras=["front"], width=64, height=64)
    (tmp_path / "sim.yaml").write_text(yaml.safe_dump(raw))
    generate(load_sim(tmp_path / "sim.yaml"), tmp_path / "sim", workers=0, show_progress=False)
    overrides = {
        "data.episodes": str(tmp_path / "sim"), "stage2.steps": 10, "stage2.warmup_steps": 2, "checkpoint_every": 10,
        "perception.frames": 8, "perception.per_scene": 4, "perception.steps": 2, "perception.batch": 4,
        "perception.image_size": 64, "perception.crop_rows": [16, 56],
        "perception.joint": {"steps": 3, "episode_batch": 2, "steps_per_episode": 4, "grounding_batch": 4},
    }  # fmt: skip
    trainer = Trainer(load_recipe(REPO / "recipes/train/vision_perceive_once.yaml", overrides), tmp_path / "run",
                      None, "cpu")  # fmt: skip
    before = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    result = trainer.run(resume=False)
    normalizer = trainer.data.normalizer
    x = np.random.default_rng(1).normal(size=(3, 37))
    scale, offset = normalizer.state_affine()
    np.testing.assert_allclose(x * scale + offset, normalizer.state(x), atol=1e-5)
    saved = torch.load(tmp_path / "run" / JOINT_FILE, weights_only=True)
    assert saved["summary"]["demos"] == 2 and len(saved["history"]) >= 2
    assert {"action", "grounding", "point_px"} <= set(saved["history"][-1])
    pretrained = torch.load(tmp_path / "run" / "perception.pt", weights_only=True)["state_dict"]
    tuned = saved["perception"]
    assert any(not torch.equal(pretrained[k], tuned[k]) for k in tuned if tuned[k].is_floating_point())
    policy, *_ = load_policy(result.checkpoint, "cpu")
    for k, v in policy.state_policy.state_dict().items():
        torch.testing.assert_close(v, saved["state_policy"][k])
    for k, v in policy.perceiver.net.state_dict().items():
        torch.testing.assert_close(v, tuned[k])
    assert any(not torch.equal(before[k], saved["state_policy"][k]) for k in before)
