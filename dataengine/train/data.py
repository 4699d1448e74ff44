"""Build the training streams of a recipe: grounding (train and held-out), actions, normalization, loaders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from dataengine.errors import InputError
from dataengine.formats import get_style, load_templates
from dataengine.train.action_data import ActionUnits
from dataengine.train.collate import Collator
from dataengine.train.grounding_data import GroundingUnits, apply_holdout
from dataengine.train.normalization import (
    Normalizer,
    apply_units,
    load_or_compute_stats,
    stats_of_first_episodes,
)
from dataengine.train.recipe import TrainRecipe, resolve_data_path
from dataengine.train.shard_index import ShardEntry, load_shard_set
from dataengine.train.streams import ShardStream, StreamLoader

log = logging.getLogger(__name__)


def _missing(kind: str, path: Path, data_root: Path | None) -> InputError:
    root = data_root or path.parent
    if kind == "episodes":
        how = (
            f"`dataengine demo --out {root}` (writes {root}/sim) or "
            f"`dataengine sim generate recipes/sim/pick_place_demo.yaml --out {path}`"
        )
    else:
        how = f"`dataengine demo --out {root}` (writes {root}/corpus) or `dataengine build RECIPE --out {path}`"
    return InputError(f"no {kind} shards at {path}: make them with {how}, then pass the folder with --data")


def _entries(kind: str, path: Path | None, data_root: Path | None) -> list[ShardEntry] | None:
    if path is None:
        return None
    if not path.exists() or not any(path.rglob("*.tar")):
        raise _missing(kind, path, data_root)
    return load_shard_set(path)


@dataclass
class TrainData:
    grounding: StreamLoader | None
    actions: StreamLoader | None
    eval_grounding: list[ShardEntry] | None
    grounding_units_eval: GroundingUnits | None
    normalizer: Normalizer | None
    stats: dict | None
    stats_path: Path | None
    paths: dict[str, str | None]


def grounding_units(recipe: TrainRecipe, encoder, with_targets: bool = False) -> GroundingUnits:
    d = recipe.data
    style = get_style(d.answer_style, **d.style_options)
    templates = load_templates(resolve_data_path(recipe, d.templates, None)) if d.templates else None
    return GroundingUnits(
        style,
        encoder.prepare_image,
        seed=recipe.seed,
        splits=d.grounding_splits,
        templates=templates,
        include_vqa=d.include_vqa and not with_targets,  # vqa answers are not scored
        with_targets=with_targets,
    )


def build_data(
    recipe: TrainRecipe, encoder, data_root: Path | None, run_dir: Path, need_grounding: bool, need_actions: bool
) -> TrainData:
    d = recipe.data
    g_path = resolve_data_path(recipe, d.grounding, data_root)
    e_path = resolve_data_path(recipe, d.episodes, data_root)
    ev_path = resolve_data_path(recipe, d.eval_grounding, data_root)
    collate = Collator(encoder)
    grounding = eval_entries = None
    if need_grounding:
        entries = _entries("grounding", g_path, data_root)
        if entries is None:
            raise InputError("the recipe trains a spatial loss but data.grounding is not set")
        if ev_path is not None:
            eval_entries = _entries("grounding", ev_path, data_root)
        elif d.holdout_fraction > 0:
            eval_entries = apply_holdout(load_shard_set(g_path), d.holdout_fraction, keep="eval") or None
            entries = apply_holdout(entries, d.holdout_fraction, keep="train")
        stream = ShardStream(
            entries, grounding_units(recipe, encoder), seed=recipe.seed, shuffle_buffer=d.shuffle_buffer
        )
        grounding = StreamLoader(stream, recipe.stage1.grounding_batch, collate, num_workers=d.num_workers)
    actions = normalizer = stats = stats_path = None
    if need_actions:
        entries = _entries("episodes", e_path, data_root)
        if entries is None:
            raise InputError("stage 2 trains the action expert but data.episodes is not set")
        if d.max_episodes is not None:
            stats, stats_path = stats_of_first_episodes(entries, d.max_episodes, run_dir)
        else:
            stats, stats_path = load_or_compute_stats(entries, e_path, run_dir)
        apply_units(entries, stats)
        cameras = d.policy_cameras()
        if cameras != [] and stats.get("rendered_episodes", stats["episodes"]) == 0:
            raise InputError(
                f"the episodes under {e_path} were generated without rendering, but the policy sees cameras "
                f"{cameras or '(the first one)'}: regenerate them without --no-render, or train a state policy"
            )
        normalizer = Normalizer(stats, d.action_norm, d.state_norm, d.gripper_norm, d.state, d.actions)
        units = ActionUnits(
            normalizer,
            encoder.prepare_image,
            image_size=d.image_size,
            chunk_size=d.chunk_size,
            cameras=cameras,
            spatial_prompt=d.spatial_prompt,
            seed=recipe.seed,
            point_labels=recipe.model.tiny.pointing and recipe.stage2.point_loss_weight > 0,
        )
        stream = ShardStream(entries, units, seed=recipe.seed + 1, shuffle_buffer=d.shuffle_buffer)
        actions = StreamLoader(stream, recipe.stage2.action_batch, collate, num_workers=d.num_workers)
    g_eval = grounding_units(recipe, encoder, with_targets=True) if eval_entries else None
    paths = {
        "grounding": str(g_path.resolve()) if g_path and grounding else None,
        "episodes": str(e_path.resolve()) if e_path and actions else None,
        "eval_grounding": str(ev_path.resolve()) if ev_path and eval_entries else None,
    }
    return TrainData(grounding, actions, eval_entries, g_eval, normalizer, stats, stats_path, paths)
