"""`dataengine sim export-usd`: one deterministic `.usda` stage per episode layout of a recipe.

Episode i's layout comes from the simulator's own search (same seeds, `search.attempt_rng(seed, i, attempt)`):
with `validate=True` (default) the MuJoCo physics search runs exactly as `sim generate` does, so the stage holds
the scene of the episode `generate` writes for index i; with `validate=False` it is the first layout the sampler
accepts (no physics; may differ from the generated episode when that attempt later failed in physics).
Each stage is written as text (`OUT/<episode key>.usda`, tmp then rename) and listed in `OUT/stages.json`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from dataengine.errors import InputError
from dataengine.records.layout import Layout
from dataengine.runtime.atomic import atomic_write_bytes
from dataengine.sim.recipe import SimRecipe

INDEX_NAME = "stages.json"


@dataclass
class ExportedStage:
    key: str
    file: str
    episode_index: int
    attempt: int
    sha1: str
    objects: list[str]


@dataclass
class UsdExportReport:
    out_dir: str
    validated: bool
    robot_usd: str
    stages: list[ExportedStage] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)


def stage_text(stage) -> str:
    """The stage's root layer as USDA text (deterministic for the same layout and metadata)."""
    return stage.GetRootLayer().ExportToString()


def write_text_atomic(path: Path, text: str) -> str:
    """Write atomically (`runtime.atomic`); returns the SHA-1 of the bytes."""
    data = text.encode("utf-8")
    atomic_write_bytes(path, data)
    return hashlib.sha1(data).hexdigest()


def episode_layout(recipe: SimRecipe, catalog, index: int, backend=None) -> tuple[Layout, int, Counter]:
    """(layout, attempt, failures by reason) of episode `index`: physics-validated when a backend is given,
    else the first attempt the sampler accepts. Raises EpisodeNotFound when no attempt succeeds."""
    from dataengine.sim.search import find_episode, first_sampled_layout

    if backend is not None:
        found = find_episode(recipe, catalog, backend, index)
        return found.layout, found.attempt, found.failures
    return first_sampled_layout(recipe, catalog, index)


def episode_metadata(recipe: SimRecipe, index: int, attempt: int, validated: bool) -> dict:
    from dataengine.sim.episode_members import episode_key

    return {
        "recipe": recipe.name,
        "recipe_fingerprint": recipe.fingerprint(),
        "task": recipe.task.name,
        "split": recipe.split,
        "seed": recipe.seed,
        "episode_index": index,
        "episode_key": episode_key(recipe.name, index),
        "attempt": attempt,
        "validated": validated,
        "control_hz": float(recipe.control_hz),
    }


def export_recipe_usd(
    recipe: SimRecipe,
    out_dir: str | Path,
    *,
    episodes: int | None = None,
    validate: bool = True,
    robot_usd: str | None = None,
    robot_arc: Literal["payload", "reference"] = "payload",
    overwrite: bool = False,
) -> UsdExportReport:
    """Write one stage per episode index 0..N-1 (N = `episodes` or the recipe's) and the `stages.json` index."""
    from dataengine.sim.assets import load_catalog
    from dataengine.sim.search import EpisodeNotFound
    from dataengine.sim.usd.franka import default_franka_usd
    from dataengine.sim.usd.stage import build_stage

    out_dir = Path(out_dir)
    if (out_dir / INDEX_NAME).exists() and not overwrite:
        raise InputError(f"{out_dir} already holds exported stages ({INDEX_NAME}); pass --overwrite to replace them")
    out_dir.mkdir(parents=True, exist_ok=True)
    robot_usd = robot_usd or default_franka_usd()
    catalog = load_catalog(recipe.catalogs or None)
    backend = None
    if validate:
        from dataengine.sim.backends import get_backend

        backend = get_backend("mujoco", catalog_dir=catalog.base_dir)
    report = UsdExportReport(out_dir=str(out_dir), validated=validate, robot_usd=robot_usd)
    failures: Counter = Counter()
    try:
        for index in range(episodes or recipe.episodes):
            try:
                layout, attempt, attempt_failures = episode_layout(recipe, catalog, index, backend)
            except EpisodeNotFound as exc:
                failures.update(exc.failures)
                report.lost.append(index)
                continue
            failures.update(attempt_failures)
            metadata = episode_metadata(recipe, index, attempt, validate)
            stage = build_stage(
                layout, robot_usd=robot_usd, robot_arc=robot_arc, metadata=metadata, catalog_dir=catalog.base_dir
            )
            name = f"{metadata['episode_key']}.usda"
            sha1 = write_text_atomic(out_dir / name, stage_text(stage))
            report.stages.append(
                ExportedStage(metadata["episode_key"], name, index, attempt, sha1, [o.uid for o in layout.objects])
            )
    finally:
        if backend is not None:
            backend.close()
    report.failures = dict(sorted(failures.items()))
    index = {k: v for k, v in asdict(report).items() if k != "out_dir"}  # same bytes wherever OUT is
    write_text_atomic(out_dir / INDEX_NAME, json.dumps(index, indent=1, sort_keys=True) + "\n")
    return report
