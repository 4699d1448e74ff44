"""Typed corpus recipes: the model, YAML loading (`extends:`, `${VAR}` expansion) and errors that name file and key.

A recipe names its sources (each converted by a converter, read from converted shards, or built from a fixture),
their weights or pair quotas, split and task filters, eval holdouts, export settings and shard sizes. Loading
fails before any work on an unknown key, a bad value or an unset variable; `check_inputs` then checks that every
named input exists. See docs/corpus.md for the full reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dataengine.errors import RecipeError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_+.-]{0,63}$"
MATCH_RULES = ("image_sha1", "coco_image_id")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
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
    """Read, merge (`extends:`), expand and validate a recipe. Raises RecipeError naming file and key path."""
    path = Path(path).resolve()
    env = os.environ if env is None else env
    raw, files = _read_with_extends(path, [])
    variables = raw.get("vars") or {}
    if not isinstance(variables, dict):
        raise RecipeError(f"{path}: vars: must be a mapping of NAME: value")
    expanded = _expand(raw, (), {**{k: str(v) for k, v in variables.items()}, **env}, files)
    _resolve_paths(expanded, path.parent)
    try:
        recipe = Recipe.model_validate(expanded)
    except ValidationError as exc:
        raise RecipeError(_format_errors(exc, files)) from None
    return LoadedRecipe(recipe=recipe, path=path, files=files)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"recipe file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping (name:, seed:, sources: ...)")
    return data


def _read_with_extends(path: Path, chain: list[Path]) -> tuple[dict, list[Path]]:
    if path in chain:
        raise RecipeError(f"{path}: extends: forms a cycle ({' -> '.join(map(str, [*chain, path]))})")
    data = _read_yaml(path)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, [*chain, path]
    if not isinstance(base_name, str):
        raise RecipeError(f"{path}: extends: must be a path to another recipe file")
    base, files = _read_with_extends((path.parent / base_name).resolve(), [*chain, path])
    return _deep_merge(base, data), files


def _deep_merge(base: dict, override: dict) -> dict:
    """Mappings merge key by key; anything else (lists included) is replaced by the override."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _expand(value: Any, loc: tuple, variables: typing.Mapping[str, str], files: list[Path]) -> Any:
    """Replace `${NAME}` / `${NAME:-default}` in every string (not under `vars:` itself)."""
    if isinstance(value, dict):
        return {
            k: (v if loc == () and k == "vars" else _expand(v, (*loc, k), variables, files)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, (*loc, i), variables, files) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in variables:
            return variables[name]
        if default is not None:
            return default
        raise RecipeError(
            f"{defining_file(loc, files)}: {loc_text(loc)}: variable ${{{name}}} is not set; "
            f"export {name}=... or set it under vars: in the recipe"
        )

    return _VAR_RE.sub(substitute, value)


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


def loc_text(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def defining_file(loc: tuple, files: list[Path]) -> Path:
    """The file of an extends chain that sets the key at `loc` (the child when it sets it, else a base)."""
    if len(files) == 1:
        return files[0]
    for file in files:
        node: Any = _read_yaml(file)
        node.pop("extends", None)
        found = True
        for part in loc:
            in_dict = isinstance(node, dict) and part in node
            in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
            if in_dict or in_list:
                node = node[part]
            else:
                found = False
                break
        if found:
            return file
    return files[0]


def _format_errors(exc: ValidationError, files: list[Path]) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "list["))))
        file = defining_file(loc, files)
        if error["type"] == "extra_forbidden":
            valid = _valid_keys(loc[:-1])
            msg = f"unknown key {loc[-1]!r}; valid keys here: {valid}"
        else:
            msg = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                msg = "required key is missing"
        lines.append(f"{file}: {loc_text(loc)}: {msg}")
    return "invalid recipe:\n  " + "\n  ".join(lines)


def _valid_keys(loc: tuple) -> list[str]:
    """Keys the model at `loc` accepts (aliases where a field has one)."""
    model: Any = Recipe
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


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
