"""The graspability check: an imported object is kept only if the scripted expert picks it up and places it in a
tray in at least k of n quick physics trials (no rendering, no distractors, one attempt per trial).

Trial `i` is episode `i` of the demo recipe restricted to this object and the default catalog's first seen
container, so its outcome depends only on the object and the trial index.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dataengine.errors import RecipeError
from dataengine.sim.assets import DEFAULT_CATALOG, AssetSpec, Catalog, graspable, load_catalog

TRIAL_RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "sim" / "pick_place_demo.yaml"
_BACKEND: dict[str, object] = {}


def _trial_recipe():
    from dataengine.sim.recipe import load_recipe

    recipe = load_recipe(TRIAL_RECIPE)
    layout = recipe.task.layout.model_copy(update={"distractors": (0, 0)})
    task = recipe.task.model_copy(update={"layout": layout})
    return recipe.model_copy(update={"task": task, "max_attempts_per_episode": 1, "split": "all"})


def grasp_trials(entry: dict, catalog_dir: str | Path, trials: int) -> dict:
    """{'trials', 'successes', 'failures': {reason: count}} for one catalog entry whose paths are relative to
    `catalog_dir`."""
    from dataengine.sim.backends import get_backend
    from dataengine.sim.search import EpisodeNotFound, find_episode

    asset = AssetSpec.model_validate(entry)
    container = load_catalog([DEFAULT_CATALOG]).pool("container", "seen")[0]
    catalog = Catalog(objects=[asset], containers=[container], base_dir=str(catalog_dir))
    failures: Counter = Counter()
    if not graspable(asset, catalog.base_dir):
        return {"trials": trials, "successes": 0, "failures": {"too_wide_or_flat_for_the_gripper": trials}}
    if "mujoco" not in _BACKEND:
        _BACKEND["mujoco"] = get_backend("mujoco")
    backend = _BACKEND["mujoco"]
    backend.catalog_dir = catalog.base_dir
    recipe = _trial_recipe()
    successes = 0
    for index in range(trials):
        try:
            find_episode(recipe, catalog, backend, index)
            successes += 1
        except EpisodeNotFound as exc:
            failures.update(exc.failures)
        except RecipeError as exc:  # e.g. the object does not fit the sampler's regions
            failures[f"recipe_error: {exc}"[:80]] += 1
    return {"trials": trials, "successes": successes, "failures": dict(sorted(failures.items()))}
