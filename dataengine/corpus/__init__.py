"""Recipes, quotas and mixing, dedup, holdouts, the corpus build and its dataset card."""

from dataengine.corpus.build import build_corpus, dry_run_plan
from dataengine.corpus.quotas import SourceDemand, allocate_quotas, item_priority
from dataengine.corpus.recipe import (
    ExportSettings,
    Holdout,
    InputSpec,
    LoadedRecipe,
    Recipe,
    ShardSettings,
    Source,
    load_recipe,
)

__all__ = [
    "ExportSettings",
    "Holdout",
    "InputSpec",
    "LoadedRecipe",
    "Recipe",
    "ShardSettings",
    "Source",
    "SourceDemand",
    "allocate_quotas",
    "build_corpus",
    "dry_run_plan",
    "item_priority",
    "load_recipe",
]
