"""Task families: the registry, the recipe field, and fingerprints that stay as they were for pick-and-place."""

from __future__ import annotations

import pytest

from dataengine.errors import InputError
from dataengine.sim import families
from dataengine.sim.families import get_family
from dataengine.sim.families.base import TaskFamily
from dataengine.sim.recipe import SimRecipe, load_recipe
from tests.simout_helpers import REPO

DEMO = REPO / "recipes" / "sim" / "pick_place_demo.yaml"


def test_pick_place_implements_the_protocol():
    family = get_family("pick_place")
    assert family.name == "pick_place"
    wanted = [name for name in vars(TaskFamily) if not name.startswith("_") and callable(getattr(TaskFamily, name))]
    assert len(wanted) == 8
    assert all(callable(getattr(family, name)) for name in wanted)
    with pytest.raises(InputError, match="unknown task family 'stacking'; known: pick_place"):
        get_family("stacking")


def test_recipe_names_its_family_and_the_fingerprint_counts_it_only_when_not_pick_place(monkeypatch):
    recipe = load_recipe(DEMO)
    assert recipe.task.family == "pick_place"
    data = recipe.model_dump(mode="json")
    with pytest.raises(ValueError, match="unknown task family 'stacking'"):
        SimRecipe.model_validate({**data, "task": {**data["task"], "family": "stacking"}})
    # a second family registered the way a new module would be: the same recipe then has another fingerprint
    monkeypatch.setitem(families.FAMILIES, "pick_place_copy", families.FAMILIES["pick_place"])
    other = SimRecipe.model_validate({**data, "task": {**data["task"], "family": "pick_place_copy"}})
    assert other.fingerprint() != recipe.fingerprint()
    without = {k: v for k, v in data["task"].items() if k != "family"}
    assert SimRecipe.model_validate({**data, "task": without}).fingerprint() == recipe.fingerprint()
