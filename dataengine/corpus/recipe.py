"""Typed corpus recipes: the model, loaded with the shared recipe loader (`extends:`, `${VAR}`, errors that name file
and key).

A recipe names its sources (each converted by a converter, read from converted shards, or built from a fixture),
their weights or pair quotas, split and task filters, eval holdouts, export settings and shard sizes. Loading
fails before any work on an unknown key, a bad value or an unset variable; `check_inputs` then checks that every
named input exists. See docs/corpus.md for the full reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataengine.recipe_loader import load_yaml_recipe, validate

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_+.-]{0,63}$"
MATCH_RULES = ("image_sha1", "coco_image_id")
PATH_KEYS = ("input", "images", "shards")  # InputSpec fields that hold paths


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class InputSpec(_Strict):
    """Where records come from: converted `shards`, a `converter` with its `input`, or a `fixture` the engine builds
    (converted by `converter`, default the fixture's own source: one RefCOCO fixture serves refcoco, refcoco+ and
    refcocog)."""

    converter: str | None = Field(default=None, description="converter name, e.g. refcoco, llava-onevision")
    input: str | None = Field(default=None, description="the converter's --input path")
    images: str | None = Field(default=None, description="the converter's --images folder (refcoco*: COCO train)")
    split_by: str | None = Field(default=None, description="refcoco* split scheme: unc, umd or google")
    limit: int | None = Field(default=None, gt=0, description="convert at most this many records (trial runs)")
    keep_text_only: bool = False
    options: dict[str, Any] | None = Field(default=None, description="the converter's own options (by name)")
    follow_symlinks: bool = Field(default=False, description="read files symlinks lead to outside input / images")
    max_image_mb: float | None = Field(default=None, gt=0, description="the converter's --max-image-mb")
    max_annotation_mb: float | None = Field(default=None, gt=0, description="the converter's --max-annotation-mb")
    shards: str | None = Field(default=None, description="a directory of converted grounding/v1 shards")
    fixture: str | None = Field(default=None, description="a fixture the engine builds itself, then converts")
    fixture_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> InputSpec:
        if self.shards is not None:
            names = (
                "converter",
                "fixture",
                "input",
                "images",
                "split_by",
                "limit",
                "options",
                "follow_symlinks",
                "max_image_mb",
                "max_annotation_mb",
            )
            extra = [k for k in names if getattr(self, k)]
            if extra:
                raise ValueError(f"a shards input takes no {extra}: the shards are already converted")
        elif self.fixture is not None:
            extra = [k for k in ("input", "images") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"a fixture input takes no {extra}: the fixture builder makes them")
        elif self.converter is not None:
            if self.input is None:
                raise ValueError("a converter input needs `input` (the path the converter reads)")
        else:
            raise ValueError("give one of shards, converter (with input) or fixture")
        if self.fixture is None and self.fixture_options:
            raise ValueError("fixture_options only apply to fixture inputs")
        return self

    @property
    def kind(self) -> Literal["converter", "shards", "fixture"]:
        return "shards" if self.shards else "fixture" if self.fixture else "converter"


class Source(_Strict):
    """A training source: its input, its share of the corpus and its filters."""

    name: str = Field(pattern=NAME_PATTERN)
    from_: InputSpec = Field(alias="from")
    weight: float | None = Field(default=None, gt=0, description="share of target_pairs (relative to other weights)")
    pairs: int | None = Field(default=None, ge=0, description="a fixed pair quota instead of a weight")
    splits: list[str] | None = Field(default=None, min_length=1, description="input splits to admit (None: all)")
    tasks: list[Literal["box", "point", "trace", "vqa"]] | None = Field(default=None, min_length=1)
    url: str | None = Field(default=None, description="home page, shown in the dataset card")

    @model_validator(mode="after")
    def _one_quota(self) -> Source:
        if self.weight is not None and self.pairs is not None:
            raise ValueError("give either weight or pairs, not both")
        return self

    @property
    def effective_weight(self) -> float:
        return 1.0 if self.weight is None and self.pairs is None else (self.weight or 0.0)


class Holdout(_Strict):
    """Eval images no training sample may share: from recipe sources, any input, or explicit lists."""

    name: str = Field(pattern=NAME_PATTERN)
    sources: list[str] | None = Field(default=None, min_length=1, description="names of recipe sources")
    from_: InputSpec | None = Field(default=None, alias="from")
    splits: list[str] | None = Field(default=None, min_length=1, description="splits of those records (None: all)")
    match: list[Literal["image_sha1", "coco_image_id"]] = Field(default=list(MATCH_RULES), min_length=1)
    coco_image_ids: list[int] | str | None = Field(default=None, description="ids, or a file with one id a line")
    image_sha1s: list[str] | str | None = Field(default=None, description="sha1s, or a file with one a line")

    @model_validator(mode="after")
    def _one_kind(self) -> Holdout:
        kinds = [k for k in ("sources", "from_", "coco_image_ids", "image_sha1s") if getattr(self, k) is not None]
        if len(kinds) != 1:
            names = [k.rstrip("_") for k in kinds]
            raise ValueError(f"give exactly one of sources, from, coco_image_ids or image_sha1s (got {names})")
        return self


class ExportSettings(_Strict):
    """How exports and training render this corpus: answer style, its options and question templates."""

    answer_style: str = "qwen2.5-vl"
    style_options: dict[str, Any] = Field(default_factory=dict)
    templates: str | None = Field(default=None, description="JSON/YAML template file; None: built-in templates")
    template_seed: int | None = Field(default=None, description="seed for template choice (None: recipe seed)")
    spatial_prompt: Literal["upstream", "paper"] | None = None


class ShardSettings(_Strict):
    max_samples: int = Field(default=10_000, gt=0)
    max_bytes: int = Field(default=1_000_000_000, gt=0)
    min_shards: int = Field(default=1, gt=0, description="at least this many shards (loader workers x ranks)")


class Recipe(_Strict):
    """A corpus recipe. Corpora of one family (same seed, sources and weights) are nested by target size."""

    name: str = Field(pattern=NAME_PATTERN)
    version: str
    description: str = ""
    family: str | None = Field(default=None, description="recipes sharing seed and sources; shown in the card")
    seed: int
    target_pairs: int | None = Field(default=None, gt=0, description="None: every admitted pair")
    output_split: str = Field(default="train", pattern=r"^[A-Za-z0-9_]+$")
    max_image_side: int | None = Field(default=None, ge=16, description="downscale larger images (None: pass)")
    sources: list[Source] = Field(min_length=1)
    holdouts: list[Holdout] = Field(default_factory=list)
    export: ExportSettings = Field(default_factory=ExportSettings)
    shards: ShardSettings = Field(default_factory=ShardSettings)
    vars: dict[str, str] = Field(default_factory=dict, description="defaults for ${VAR}; the environment wins")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _names(self) -> Recipe:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {dupes}")
        for h in self.holdouts:
            unknown = [n for n in h.sources or [] if n not in names]
            if unknown:
                raise ValueError(f"holdout {h.name!r} names unknown source(s) {unknown}; sources are {names}")
        fixed = sum(s.pairs or 0 for s in self.sources)
        if self.target_pairs is not None and fixed > self.target_pairs:
            raise ValueError(f"fixed pair quotas add up to {fixed}, more than target_pairs {self.target_pairs}")
        return self

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)


class LoadedRecipe(BaseModel):
    """A validated recipe with where it came from and its hash."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    recipe: Recipe
    path: Path
    files: list[Path]  # the recipe file and the files it extends, child first

    @property
    def resolved(self) -> dict:
        return self.recipe.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def sha256(self) -> str:
        """Hash of the resolved recipe (variables expanded, paths absolute), independent of YAML formatting."""
        text = json.dumps(self.resolved, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_recipe(path: str | Path, env: typing.Mapping[str, str] | None = None) -> LoadedRecipe:
    """Read, merge (`extends:`), expand and validate a recipe (`dataengine.recipe_loader`). Raises RecipeError
    naming file and key path."""
    raw = load_yaml_recipe(path, env=env, keep_vars=True)
    _resolve_paths(raw.data, raw.path.parent)
    return LoadedRecipe(recipe=validate(Recipe, raw), path=raw.path, files=raw.files)


def _resolve_paths(data: dict, base_dir: Path) -> None:
    """Make relative paths absolute, relative to the recipe file's folder."""

    def fix(spec: Any, keys: tuple[str, ...]) -> None:
        if not isinstance(spec, dict):
            return
        for key in keys:
            if isinstance(spec.get(key), str) and spec[key]:
                spec[key] = str((base_dir / os.path.expanduser(spec[key])).resolve())

    for section in ("sources", "holdouts"):
        for entry in data.get(section) or []:
            if isinstance(entry, dict):
                fix(entry.get("from"), PATH_KEYS)
                fix(entry, ("coco_image_ids", "image_sha1s"))
    fix(data.get("export"), ("templates",))


__all__ = [
    "MATCH_RULES",
    "ExportSettings",
    "Holdout",
    "InputSpec",
    "LoadedRecipe",
    "Recipe",
    "ShardSettings",
    "Source",
    "load_recipe",
]
