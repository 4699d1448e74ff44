"""Closed-loop evaluation of a policy in the simulator, through the `SimBackend` interface and the generator's own
success predicate.

Held-out task configurations: the sim recipe's layouts are drawn with seed + `seed_offset`, so no evaluation
layout is a training layout (`split="unseen"` also holds out the objects and containers). Each layout is
first solved by the scripted expert in physics only (the same search the generator runs), so every evaluated
scene is known to be feasible; then the scene is reset, a render look is drawn and the policy acts: every
`execute_steps` control steps it sees the frames of its cameras (JPEG round trip at the recipe's quality, like
training frames; none for a state policy), its state vector (built by `dataengine.train.observations` exactly as
in training; the `task` state takes its privileged features from the expert's plan of the layout, or, for a
policy with a `perceive` method (perceive once, then act), from what it perceives in the first frame of its
`camera`, with the camera's calibration and the table height) and the spatially
prompted instruction, predicts a chunk, and the first `execute_steps` actions are applied as joint targets (through
`dataengine.train.actions.ChunkExecutor`: IK of the tool targets, or measured joints + delta; gripper closed or
open). An episode succeeds as soon as the task family's success predicate holds;
it fails after `max_steps` control steps. Layouts come from the recipe without its `perturb` section.
"""

from __future__ import annotations

import io
import logging
import time
from collections import Counter

import numpy as np
import torch
from PIL import Image

from dataengine.train.action_data import prompt_for
from dataengine.train.actions import ChunkExecutor
from dataengine.train.collate import Collator, to_device
from dataengine.train.first_frame import observe_first_frame
from dataengine.train.normalization import Normalizer
from dataengine.train.observations import LiveState, neutral_yaw, task_context

log = logging.getLogger(__name__)

LIFT_M = 0.03  # the pick object counts as lifted when it rises this far above its start height


def success_interval(successes: int, trials: int, confidence: float = 0.95) -> list[float]:
    """Wilson score interval of a success rate, [low, high] (scipy's binomial test)."""
    if trials == 0:
        return [0.0, 1.0]
    from scipy.stats import binomtest

    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def failure_mode(episode: dict) -> str:
    """A failed episode's stage: never lifted the object, or lifted it and then failed (with the predicate's
    reason)."""
    if episode["outcome"] == "physics_unstable":
        return "physics_unstable"
    if not episode["lifted"]:
        return "never_lifted"
    return "lifted_then_" + episode["outcome"].removeprefix("timeout_")


def evaluate_in_sim(
    policy,
    encoder,
    normalizer: Normalizer,
    sim_recipe_path: str,
    *,
    episodes: int,
    device: torch.device,
    camera: str | None = None,
    cameras: list[str] | None = None,
    image_size: int = 224,
    spatial_prompt: str = "upstream",
    seed_offset: int = 1_000_000,
    split: str | None = None,
    max_steps: int = 200,
    execute_steps: int = 8,
    seed: int = 0,
) -> dict:
    from dataengine.sim.assets import load_catalog
    from dataengine.sim.backends import get_backend
    from dataengine.sim.families import get_family
    from dataengine.sim.recipe import load_recipe
    from dataengine.sim.render import draw_look
    from dataengine.sim.search import EpisodeNotFound, find_episode, look_seed

    sim = load_recipe(sim_recipe_path, split=split)
    sim = sim.model_copy(update={"seed": sim.seed + seed_offset, "perturb": None})
    if cameras is None:
        cameras = [camera or sim.render.cameras[0]]
    family = get_family(sim.task.family)
    catalog = load_catalog(sim.catalogs or None)
    backend = get_backend(sim.backend, catalog_dir=catalog.base_dir)
    results, reasons = [], Counter()
    was_training = policy.training
    policy.eval()
    t0 = time.perf_counter()
    try:
        for index in range(episodes):
            try:
                found = find_episode(sim, catalog, backend, index)
            except EpisodeNotFound:
                reasons["no_feasible_layout"] += 1
                continue
            layout = found.layout
            context = task_context(layout, found.plan.grasp_point_m, found.plan.place_point_m)
            backend.load(layout, control_hz=sim.control_hz, quality=sim.render.quality)
            backend.apply_look(draw_look(sim, layout, np.random.default_rng(look_seed(sim.seed, index))))
            backend.reset()
            instruction = family.instruction(layout, family.relation(layout, sim))
            perceived = None
            if hasattr(policy, "perceive"):  # perceive once, then act: the task constants from the first frame
                table_z = float(layout.table.top_center_m[2])
                frame = observe_first_frame(
                    backend, policy.camera, sim.render.jpeg_quality, table_z, instruction, policy.image_size
                )
                truth, context = context, policy.perceive(frame, neutral_yaw(layout))
                perceived = {
                    "grasp_error_m": round(float(np.linalg.norm(context.grasp_point - truth.grasp_point)), 4),
                    "place_error_m": round(float(np.linalg.norm(context.place_point - truth.place_point)), 4),
                }
            if hasattr(policy, "start_episode"):  # per-episode state (e.g. `RecordedActionsPolicy`)
                policy.start_episode(index)
            gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + index)
            live = LiveState(normalizer.state_kind, layout, context, backend.control_dt_s)
            episode = _rollout(
                policy, encoder, normalizer, backend, family, layout, prompt_for(instruction, spatial_prompt), gen,
                device, cameras, live, image_size, sim.render.jpeg_quality, max_steps, execute_steps,
            )  # fmt: skip
            reason = episode["outcome"]
            reasons[reason] += 1
            results.append({"episode": index, **episode, **({"perceived": perceived} if perceived else {})})
            log.info("sim episode %d: %s after %d steps", index, reason, episode["steps"])
    finally:
        policy.train(was_training)
        backend.close()
    n = len(results)
    successes = sum(r["success"] for r in results)
    modes = Counter(failure_mode(r) for r in results if not r["success"])
    return {
        "sim_recipe": str(sim_recipe_path),
        "sim_episodes": n,
        "sim_successes": successes,
        "sim_success_rate": successes / n if n else float("nan"),
        "sim_success_ci95": success_interval(successes, n),
        "sim_failure_modes": dict(sorted(modes.items())),
        "sim_lift_rate": sum(r["lifted"] for r in results) / n if n else float("nan"),
        "sim_mean_min_tool_to_pick_m": float(np.mean([r["min_tool_to_pick_m"] for r in results])) if n else None,
        "sim_outcomes": dict(sorted(reasons.items())),
        **_perception_summary(results),
        "sim_seed": sim.seed,
        "sim_split": sim.split,
        "sim_wall_s": round(time.perf_counter() - t0, 2),
    }


def _perception_summary(results: list[dict]) -> dict:
    """Median errors of a perceive-once policy's first-frame estimates against the expert's plan (if any)."""
    rows = [r["perceived"] for r in results if "perceived" in r]
    if not rows:
        return {}
    return {
        "sim_perceived_grasp_error_m_median": round(float(np.median([r["grasp_error_m"] for r in rows])), 4),
        "sim_perceived_place_error_m_median": round(float(np.median([r["place_error_m"] for r in rows])), 4),
    }


def _frame(backend, camera: str, encoder, image_size: int, jpeg_quality: int) -> np.ndarray:
    """A camera's frame as training sees it: JPEG round trip, bilinear resize, the encoder's preparation."""
    from dataengine.sim.render import encode_jpeg

    image = Image.open(io.BytesIO(encode_jpeg(backend.render(camera).rgb, jpeg_quality))).convert("RGB")
    return encoder.prepare_image(image.resize((image_size, image_size), Image.BILINEAR))


def _rollout(
    policy, encoder, normalizer, backend, family, layout, prompt, gen, device, cameras, live, image_size,
    jpeg_quality, max_steps, execute_steps,
) -> dict:  # fmt: skip
    """One closed-loop episode from the backend's current (reset) state. Also tracks progress short of success:
    the closest the tool came to the pick object and whether the object was lifted."""
    collate = Collator(encoder)
    closed_m, open_m = normalizer.gripper_targets_m()
    pick = layout.pick.uid
    start_z = float(backend.object_pose(pick)[0][2])
    steps, outcome, failure = 0, None, "not_started"
    min_dist, lifted = float("inf"), False
    state = live.observe(backend.robot())
    while steps < max_steps and outcome is None:
        item = {
            "prompt": prompt,
            "state": normalizer.state(state),
            "actions": np.zeros((policy.space.chunk_size, policy.space.action_dim), np.float32),
        }
        images = [_frame(backend, c, encoder, image_size, jpeg_quality) for c in cameras]
        if images:
            item["image"] = images[0] if len(images) == 1 else np.stack(images)
        chunk = policy.predict_actions(to_device(collate([item]), device), gen)[0].float().cpu().numpy()
        motion, close = normalizer.unnormalize_actions(chunk)
        n = min(execute_steps, max_steps - steps)
        executor = ChunkExecutor(normalizer.action_space, backend, layout, motion[:n], close[:n])
        for k in range(n):
            if k:
                state = live.observe(backend.robot())
            backend.set_joint_targets(executor.joint_targets(k), closed_m if close[k] else open_m)
            backend.step(1)
            steps += 1
            if not np.all(np.isfinite(backend.get_state().qpos)):
                outcome = "physics_unstable"
                break
            pos = backend.object_pose(pick)[0]
            min_dist = min(min_dist, float(np.linalg.norm(backend.robot().tool_pos_m - pos)))
            lifted = lifted or float(pos[2]) - start_z > LIFT_M
            failure = family.success(backend, layout)
            if failure is None:
                outcome = "success"
                break
        state = live.observe(backend.robot())
    return {
        "success": outcome == "success",
        "outcome": outcome or f"timeout_{failure}",
        "steps": steps,
        "min_tool_to_pick_m": round(min_dist, 4),
        "lifted": lifted,
    }
