"""The one YAML loader of every recipe kind (corpus, simulation, training, benchmark tracks): `extends:`, `${VAR}`,
dotted overrides and one error format.

Loading a recipe file:
1. read it (a YAML mapping), then the file it `extends:` (a path relative to it), recursively; the child's keys
   merge into the base's (`deep_merge`: mappings key by key, anything else replaced);
2. expand `${NAME}` and `${NAME:-default}` in every string from the environment, then the recipe's `vars:` mapping
   (the environment wins); an unset variable without a default fails naming the file and key path;
3. apply overrides (`{"stage1.steps": 5}`: dotted key paths, set after everything else).
The recipe kind then resolves its own paths and validates the data against its model with `validate`, whose
errors name the file of the `extends:` chain that sets the key, the key path and, for an unknown key, the valid
keys there: `invalid recipe:\n  FILE: sources[0].from.shard: unknown key 'shard'; valid keys here: [...]`.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dataengine.errors import RecipeError

VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class RawRecipe:
    """A recipe file read, merged, expanded and overridden, not yet validated."""

    data: dict[str, Any]
    path: Path  # the file asked for, resolved
    files: list[Path]  # that file and the files it extends, child first


def read_yaml_mapping(path: str | Path, what: str = "recipe") -> dict[str, Any]:
    """A YAML file that must hold a mapping (an empty file is an empty mapping)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"{what} file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a {what} must be a YAML mapping of keys")
    return data


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """Mappings merge key by key; anything else (lists included) is replaced by the override."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_yaml_recipe(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    keep_vars: bool = False,
    what: str = "recipe",
) -> RawRecipe:
    """Read `path` with its `extends:` chain, expand variables and apply dotted `overrides` (see the module
    docstring). `vars:` stays in the data only with `keep_vars` (a kind whose model records it)."""
    path = Path(path).resolve()
    env = os.environ if env is None else env
    data, files = _read_with_extends(path, [], what)
    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        raise RecipeError(f"{path}: vars: must be a mapping of NAME: value")
    data = expand_variables(data, {**{k: str(v) for k, v in variables.items()}, **env}, files)
    if not keep_vars:
        data.pop("vars", None)
    apply_overrides(data, overrides or {})
    return RawRecipe(data, path, files)


def _read_with_extends(path: Path, chain: list[Path], what: str) -> tuple[dict, list[Path]]:
    if path in chain:
        raise RecipeError(f"{path}: extends: forms a cycle ({' -> '.join(map(str, [*chain, path]))})")
    data = read_yaml_mapping(path, what)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, [*chain, path]
    if not isinstance(base_name, str):
        raise RecipeError(f"{path}: extends: must be a path to another {what} file")
    base, files = _read_with_extends((path.parent / base_name).resolve(), [*chain, path], what)
    return deep_merge(base, data), files


def expand_variables(value: Any, variables: Mapping[str, str], files: list[Path], loc: tuple = ()) -> Any:
    """Replace `${NAME}` / `${NAME:-default}` in every string (not under the top-level `vars:` itself)."""
    if isinstance(value, dict):
        return {
            k: (v if loc == () and k == "vars" else expand_variables(v, variables, files, (*loc, k)))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_variables(v, variables, files, (*loc, i)) for i, v in enumerate(value)]
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

    return VAR_RE.sub(substitute, value)


def apply_overrides(data: dict, overrides: Mapping[str, Any]) -> None:
    """Set dotted key paths (`"stage1.steps"`), creating mappings on the way; a top-level key replaces the value."""
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value


def validate(model: type[Model], raw: RawRecipe, data: Mapping[str, Any] | None = None) -> Model:
    """`model` validated from the recipe's data (or `data` derived from it); errors in the module's format."""
    try:
        return model.model_validate(raw.data if data is None else data)
    except ValidationError as exc:
        raise RecipeError(format_errors(exc, raw.files, model)) from None


def format_errors(exc: ValidationError, files: list[Path], model: type[BaseModel]) -> str:
    """One line per error: the file that sets the key, the key path, the problem."""
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "list["))))
        file = defining_file(loc, files)
        if error["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}; valid keys here: {valid_keys(model, loc[:-1])}"
        else:
            msg = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                msg = "required key is missing"
        lines.append(f"{file}: {loc_text(loc)}: {msg}")
    return "invalid recipe:\n  " + "\n  ".join(lines)


def loc_text(loc: tuple) -> str:
    """`("sources", 0, "from")` -> `sources[0].from`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def defining_file(loc: tuple, files: list[Path]) -> Path:
    """The file of an extends chain that sets the key at `loc` (the child when it sets it, else a base)."""
    if len(files) == 1:
        return files[0]
    for file in files:
        node: Any = read_yaml_mapping(file)
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


def valid_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Keys the model at `loc` accepts (aliases where a field has one)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
