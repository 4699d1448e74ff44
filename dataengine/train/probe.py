"""The learnability probe (`dataengine sim probe DIR`): before spending cluster hours on a recipe, train the state
policy (`recipes/train/state_policy.yaml`: privileged task features -> action chunk, no camera) on a sample of an
episode shard set and run it closed loop on held-out layouts of the same recipe.

A demonstration set that a policy with perfect state cannot learn will not teach a vision policy either. A high
score says the demonstrations are consistent (the same situation gets the same action), the layouts are reachable
and the labels line up with the states; a low one points at inconsistent demonstrations, unreachable or
ambiguous layouts, or actions and states that do not belong together (see docs/training.md, "The probe").
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from dataengine.errors import InputError

log = logging.getLogger(__name__)

STATE_RECIPE = "train/state_policy.yaml"
SIM_RECIPE_FILE = "recipe.resolved.json"


def _sim_recipe(episodes_dir: Path, sim_recipe: str | Path | None) -> Path:
    path = Path(sim_recipe) if sim_recipe else episodes_dir / SIM_RECIPE_FILE
    if not path.is_file():
        raise InputError(
            f"no simulation recipe at {path}: `dataengine sim generate` writes {SIM_RECIPE_FILE} beside the "
            "episodes; pass the recipe that made them with --sim RECIPE"
        )
    return path


def probe(
    episodes_dir: str | Path,
    *,
    episodes: int = 200,
    eval_episodes: int = 100,
    steps: int | None = None,
    sim_recipe: str | Path | None = None,
    train_recipe: str | Path | None = None,
    out: str | Path | None = None,
    seed_offset: int = 1_000_000,
    max_steps: int | None = None,
) -> dict:
    """Train the state policy on the first `episodes` successful episodes under `episodes_dir` and evaluate it on
    `eval_episodes` held-out layouts (the sim recipe's seed + `seed_offset`). Returns the report."""
    from dataengine.demo import find_recipes_dir
    from dataengine.train import load_recipe
    from dataengine.train.eval_sim import evaluate_in_sim
    from dataengine.train.loop import Trainer

    episodes_dir = Path(episodes_dir).resolve()
    sim_path = _sim_recipe(episodes_dir, sim_recipe)
    recipe_path = Path(train_recipe) if train_recipe else find_recipes_dir() / STATE_RECIPE
    overrides: dict = {"data.episodes": str(episodes_dir), "data.max_episodes": episodes}
    if steps is not None:
        overrides["stage2.steps"] = steps
    recipe = load_recipe(recipe_path, overrides)
    run_dir = Path(out) if out else Path(tempfile.mkdtemp(prefix="dataengine-probe-"))
    try:
        t0 = time.perf_counter()
        trainer = Trainer(recipe, run_dir, None, recipe.device)
        result = trainer.run(resume=False)
        train_s = time.perf_counter() - t0
        d, e = recipe.data, recipe.eval
        metrics = evaluate_in_sim(
            trainer.policy, trainer.encoder, trainer.data.normalizer, str(sim_path), episodes=eval_episodes,
            device=trainer.device, cameras=d.policy_cameras(), image_size=d.image_size,
            spatial_prompt=d.spatial_prompt, seed_offset=seed_offset, max_steps=max_steps or e.sim_max_steps,
            execute_steps=e.execute_steps, seed=recipe.seed,
        )  # fmt: skip
    finally:
        if out is None:
            shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "episodes_dir": str(episodes_dir),
        "sim_recipe": str(sim_path),
        "train_recipe": str(recipe_path),
        "train_episodes": trainer.data.stats["episodes"],
        "train_steps": result.step,
        "train_wall_s": round(train_s, 1),
        "final_loss": round(result.losses["stage2"][-1], 5) if result.losses.get("stage2") else None,
        **{k.removeprefix("sim_"): v for k, v in metrics.items()},
        "run_dir": str(run_dir) if out else None,
    }


def interpret(report: dict) -> str:
    """One line on what the probe's score usually means."""
    rate, modes = report["success_rate"], report.get("failure_modes", {})
    if rate >= 0.8:
        return "learnable: a policy that knows the state reproduces these demonstrations on new layouts"
    never = modes.get("never_lifted", 0)
    later = sum(v for k, v in modes.items() if k.startswith("lifted_then_"))
    if never >= later:
        where = "grasps fail most: check grasp labels and object poses against the frames, and the gripper timing"
    else:
        where = "objects are lifted but not placed: check place points, containers and the transport phase"
    return f"hard to learn ({where}); more episodes (--episodes) or more steps (--steps) tell data from budget"
