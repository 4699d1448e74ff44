"""Held-out tracks by category: the unseen-object track tests categories no training recipe has, and catalogs,
imports and benchmark tracks that would let a held-out category into training are refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataengine.errors import InputError, RecipeError
from dataengine.runtime.jobs import Task
from dataengine.sim.assets import DEFAULT_CATALOG, load_catalog
from dataengine.sim.bench import held_out_violations, load_bench, recipe_catalog, track_recipe
from dataengine.sim.importer.job import ImportOptions, check_category_splits


def _object(asset_id: str, category: str, split: str) -> dict:
    return {
        "id": asset_id, "name": asset_id, "category": category, "color": "red", "rgba": [1, 0, 0, 1],
        "size": "small", "split": split, "shape": {"box": [0.02, 0.02, 0.02]},
    }  # fmt: skip


def _catalog(path: Path, objects: list[dict]) -> Path:
    container = {
        "id": "tray", "name": "tray", "category": "container", "color": "grey", "rgba": [0.5, 0.5, 0.5, 1],
        "size": "large", "container": {"type": "tray", "half_x": 0.1, "half_y": 0.085, "height": 0.035},
    }  # fmt: skip
    path.write_text(yaml.safe_dump({"objects": objects, "containers": [container]}), encoding="utf-8")
    return path


def test_the_built_in_unseen_objects_are_in_categories_with_no_seen_object():
    catalog = load_catalog()
    seen = {a.category for a in catalog.pool("object", "seen")}
    unseen = {a.category for a in catalog.pool("object", "unseen")}
    assert unseen and not seen & unseen, seen & unseen
    spec, bench_dir = load_bench()
    (track,) = [t for t in spec.tracks if t.name == "unseen_objects"]
    recipe = track_recipe(bench_dir, track)
    track_categories = {a.category for a in recipe_catalog(recipe).pool("object", recipe.split)}
    assert track_categories == unseen and len(track_categories) >= 5


def test_a_catalog_mixing_splits_within_a_category_is_refused(tmp_path):
    path = _catalog(tmp_path / "leaky.yaml", [_object("apple", "fruit", "seen"), _object("plum", "fruit", "unseen")])
    with pytest.raises(RecipeError, match=r"'fruit' \(seen apple; unseen plum\)"):
        load_catalog([path])
    # across files too: the catalogs a recipe lists are checked together
    own = _catalog(tmp_path / "own.yaml", [_object("pear", "fruit", "unseen")])
    with pytest.raises(RecipeError, match="categories with both seen and unseen objects"):
        load_catalog([DEFAULT_CATALOG, own])
    ok = _catalog(tmp_path / "ok.yaml", [_object("apple", "fruit", "seen"), _object("drill", "tool", "unseen")])
    assert len(load_catalog([ok]).objects) == 2


def test_a_training_recipe_sharing_a_held_out_category_is_a_violation(tmp_path):
    """A training catalog with a seen object in a held-out category (ids differ, so only the category leaks)."""
    held_out = {a.category for a in load_catalog().pool("object", "unseen")}
    category = sorted(held_out)[0]
    catalog = _catalog(tmp_path / "train_catalog.yaml", [_object("novelty", category, "seen")])
    recipe = tmp_path / "train.yaml"
    recipe.write_text(yaml.safe_dump({"name": "train", "split": "seen", "catalogs": [str(catalog)]}))
    problems = held_out_violations(training=[recipe])
    assert any(f"category {category!r} is in both" in p and "novelty" in p for p in problems), problems
    assert not any("object novelty" in p for p in problems)


def test_an_import_that_would_mix_splits_within_a_category_is_refused():
    def task(rel: str, category: str, meta: dict) -> Task:
        return Task(task_id=Path(rel).stem, payload={"source": {"rel": rel, "category": category, "meta": meta}})

    tasks = [task("fruit/apple.obj", "fruit", {}), task("fruit/plum.obj", "fruit", {"split": "unseen"})]
    with pytest.raises(InputError, match=r"'fruit'.*--unseen-categories"):
        check_category_splits(tasks, ImportOptions())
    check_category_splits(tasks, ImportOptions(unseen_categories=["fruit"]))  # the whole category held out
