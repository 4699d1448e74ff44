"""Evaluations of a trained policy: grounding accuracy on held-out grounding shards and closed-loop success in the
simulator. Used at the end of `train` and by `dataengine train eval CHECKPOINT`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import yaml

from dataengine.errors import InputError
from dataengine.train.checkpoint import RECIPE_FILE, STATS_FILE, load_model_weights, read_state, resolve_checkpoint
from dataengine.train.data import grounding_units
from dataengine.train.eval_grounding import evaluate_grounding
from dataengine.train.grounding_data import apply_holdout
from dataengine.train.loop import resolve_device
from dataengine.train.models.policy import action_space, build_policy
from dataengine.train.normalization import Normalizer
from dataengine.train.recipe import TrainRecipe
from dataengine.train.shard_index import ShardEntry, load_shard_set

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"


def run_evaluations(
    policy,
    encoder,
    recipe: TrainRecipe,
    device: torch.device,
    *,
    grounding_entries: list[ShardEntry] | None,
    normalizer: Normalizer | None,
    sim_recipe: str | None,
    sim_episodes: int,
    grounding_samples: int | None = None,
    sim_split: str | None = None,
) -> dict:
    e = recipe.eval
    metrics: dict = {}
    n = e.grounding_samples if grounding_samples is None else grounding_samples
    if grounding_entries and n > 0:
        metrics.update(
            evaluate_grounding(
                policy,
                encoder,
                grounding_entries,
                grounding_units(recipe, encoder, with_targets=True),
                device,
                max_samples=n,
                max_new_tokens=e.max_new_tokens,
                point_radius=e.point_radius,
                trace_tolerance=e.trace_tolerance,
                constrained=e.constrained_decoding,
            )
        )
    if sim_recipe and sim_episodes > 0:
        if normalizer is None:
            raise InputError("closed-loop evaluation needs a policy trained on actions (stage 2)")
        from dataengine.train.eval_sim import evaluate_in_sim

        d = recipe.data
        metrics.update(
            evaluate_in_sim(
                policy,
                encoder,
                normalizer,
                sim_recipe,
                episodes=sim_episodes,
                device=device,
                camera=d.camera,
                cameras=d.policy_cameras(),
                image_size=d.image_size,
                spatial_prompt=d.spatial_prompt,
                seed_offset=e.sim_seed_offset,
                split=sim_split or e.sim_split,
                max_steps=e.sim_max_steps,
                execute_steps=e.execute_steps,
                seed=recipe.seed,
            )
        )
    return metrics


def _write_metrics(path: Path, metrics: dict) -> None:
    path.write_text(json.dumps(metrics, indent=1, sort_keys=True, default=str), encoding="utf-8")


def evaluate_trainer(trainer, result) -> dict:
    """The end-of-training evaluation configured in the recipe; written to OUT/metrics.json."""
    r = trainer.recipe
    sim_recipe = r.eval.sim_recipe
    if sim_recipe and not Path(sim_recipe).is_absolute() and r.recipe_dir:
        candidate = Path(r.recipe_dir) / sim_recipe
        sim_recipe = str(candidate) if candidate.exists() else sim_recipe
    metrics = run_evaluations(
        trainer.policy, trainer.encoder, r, trainer.device,
        grounding_entries=trainer.data.eval_grounding, normalizer=trainer.data.normalizer,
        sim_recipe=sim_recipe if r.stage2.steps > 0 else None, sim_episodes=r.eval.sim_episodes,
    )  # fmt: skip
    metrics.update(step=result.step, checkpoint=str(result.checkpoint) if result.checkpoint else None)
    _write_metrics(trainer.run_dir / METRICS_FILE, metrics)
    return metrics


def load_policy(checkpoint: str | Path, device: str | None = None):
    """(policy, encoder, recipe, normalizer, checkpoint dir, device) rebuilt from a checkpoint alone."""
    ckpt = resolve_checkpoint(checkpoint)
    recipe = TrainRecipe.model_validate(yaml.safe_load((ckpt / RECIPE_FILE).read_text(encoding="utf-8")))
    dev = resolve_device(device or recipe.device)
    policy, encoder = build_policy(recipe.model, action_space(recipe.data), recipe.data.image_size)
    load_model_weights(ckpt, policy, dev)
    policy.to(dev)
    if recipe.perception is not None:  # perceive once, then act: the first-frame network saved with the run
        from dataengine.train.perception import PERCEPTION_FILE, PerceiveOncePolicy, load_perceiver

        cfg = recipe.perception
        policy = PerceiveOncePolicy(policy, load_perceiver(ckpt / PERCEPTION_FILE)[0], cfg.camera, cfg.image_size)
    normalizer = None
    if (ckpt / STATS_FILE).exists():
        stats = json.loads((ckpt / STATS_FILE).read_text(encoding="utf-8"))
        d = recipe.data
        normalizer = Normalizer(stats, d.action_norm, d.state_norm, d.gripper_norm, d.state, d.actions)
    return policy, encoder, recipe, normalizer, ckpt, dev


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    grounding: str | Path | None = None,
    sim_recipe: str | None = None,
    episodes: int | None = None,
    samples: int | None = None,
    sim_split: str | None = None,
    device: str | None = None,
) -> dict:
    """Evaluate a checkpoint (or a run folder's latest one). Grounding: every sample of `grounding` (a folder of
    shards), else the run's held-out set; closed loop: `sim_recipe` for `episodes` layouts."""
    policy, encoder, recipe, normalizer, ckpt, dev = load_policy(checkpoint, device)
    state = read_state(ckpt)
    entries = None
    if grounding is not None:
        entries = load_shard_set(grounding)
    else:
        held = state.get("data", {})
        if held.get("eval_grounding"):
            entries = load_shard_set(held["eval_grounding"])
        elif held.get("grounding") and recipe.data.holdout_fraction > 0 and Path(held["grounding"]).exists():
            entries = apply_holdout(load_shard_set(held["grounding"]), recipe.data.holdout_fraction, keep="eval")
    n_episodes = recipe.eval.sim_episodes if episodes is None else episodes
    if sim_recipe is None and episodes:
        sim_recipe = recipe.eval.sim_recipe
    metrics = run_evaluations(
        policy, encoder, recipe, dev, grounding_entries=entries, normalizer=normalizer, sim_recipe=sim_recipe,
        sim_episodes=n_episodes if sim_recipe else 0, grounding_samples=samples, sim_split=sim_split,
    )  # fmt: skip
    metrics.update(checkpoint=str(ckpt), step=state["step"])
    _write_metrics(ckpt / METRICS_FILE, metrics)
    return metrics
