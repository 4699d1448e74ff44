"""The held-out benchmark (`recipes/sim/bench/`): 200 fixed task configurations in four GenManip-Bench-like tracks.

`bench.yaml` lists the tracks; each is an ordinary simulation recipe, so `dataengine sim generate TRACK.yaml --out
DIR` runs it. A configuration is (track recipe, seed, episode index): the generator draws episode i's attempt a from
`default_rng([seed, i, a])`, so every configuration is fixed; `configurations.jsonl` records what each one is
(successful attempt, assets, instruction), written by `dataengine sim bench --write`.

Tracks and what they hold out from the default training recipes (every `recipes/sim/*.yaml`, split `seen`):
- unseen_objects: pick objects and distractors from the catalog's `unseen` objects only, whose categories no
  training recipe's pool has (held out by category);
- unseen_containers_backgrounds: containers from the `unseen` containers, table and floor colours no training
  recipe uses;
- unseen_instructions: seen assets, instruction templates and phrases from the rewriter's `unseen` pools;
- unseen_layouts: the container beyond the training container region, more distractors than training allows.

The generator picks assets from one pool split per recipe, so a track that mixes held-out objects with training
containers gets a frozen catalog copy (`catalogs/*.yaml`, written by `write_catalogs`) whose entries are relabelled:
the held-out kind keeps its assets and is labelled to match the recipe's split. `held_out_violations` checks every
track against every training recipe (tests/test_simout_bench.py runs it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from dataengine.errors import RecipeError
from dataengine.recipe_loader import load_yaml_recipe, read_yaml_mapping, validate
from dataengine.sim.assets import DEFAULT_CATALOG, SIM_SCENES_DIR, Catalog, load_catalog
from dataengine.sim.recipe import SimRecipe, load_recipe

REPO_DIR = SIM_SCENES_DIR.parent
BENCH_DIR = REPO_DIR / "recipes" / "sim" / "bench"
TRAINING_DIR = REPO_DIR / "recipes" / "sim"
CONFIGURATIONS_NAME = "configurations.jsonl"
HoldOut = Literal["objects", "containers", "backgrounds", "instructions", "layouts"]

# catalog file -> (label for seen objects, for unseen objects, for seen containers, for unseen containers);
# None drops the entries. Track recipes name these files under `catalogs:`.
CATALOG_VIEWS: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    "unseen_objects.yaml": (None, "seen", "seen", None),
    "unseen_containers.yaml": ("seen", None, None, "seen"),
    "seen_as_unseen.yaml": ("unseen", None, "unseen", None),
}


class Track(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    recipe: str
    holds_out: list[HoldOut]


class Bench(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: str
    tracks: list[Track]


def load_bench(path: str | Path = BENCH_DIR / "bench.yaml") -> tuple[Bench, Path]:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"benchmark index {path} does not exist")
    raw = load_yaml_recipe(path, what="benchmark index")
    return validate(Bench, raw), path.parent


def track_recipe(bench_dir: Path, track: Track, **overrides) -> SimRecipe:
    return load_recipe(bench_dir / track.recipe, **overrides)


def recipe_catalog(recipe: SimRecipe) -> Catalog:
    return load_catalog(recipe.catalogs or None)


def training_recipes(directory: Path = TRAINING_DIR) -> list[Path]:
    """The default training recipes: simulation recipes directly under recipes/sim/ (the bench lives below)."""
    return sorted(directory.glob("*.yaml"))


# --- frozen catalogs ------------------------------------------------------------------------------------------


def write_catalogs(source: Path = DEFAULT_CATALOG, out_dir: Path = BENCH_DIR / "catalogs") -> list[Path]:
    """Write the track catalogs (`CATALOG_VIEWS`) from the main catalog: entries copied, `split` relabelled."""
    data = read_yaml_mapping(source, "asset catalog")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (seen_obj, unseen_obj, seen_cont, unseen_cont) in CATALOG_VIEWS.items():
        view = {"objects": [], "containers": []}
        for section, labels in (("objects", (seen_obj, unseen_obj)), ("containers", (seen_cont, unseen_cont))):
            for entry in data.get(section) or []:
                label = labels[0] if entry.get("split", "seen") == "seen" else labels[1]
                if label is not None:
                    view[section].append({**entry, "split": label})
        header = (
            f"# Frozen benchmark catalog (dataengine/sim/bench.py, CATALOG_VIEWS[{name!r}]): entries copied from\n"
            f"# {source.relative_to(REPO_DIR) if source.is_relative_to(REPO_DIR) else source}, `split` relabelled "
            "for the track recipe. Regenerate with `dataengine sim bench --write`.\n"
        )
        path = out_dir / name
        path.write_text(header + yaml.safe_dump(view, sort_keys=False, width=200), encoding="utf-8")
        written.append(path)
    return written


# --- what each track holds out --------------------------------------------------------------------------------


def _asset_ids(recipe: SimRecipe, kind: str) -> set[str]:
    return {a.id for a in recipe_catalog(recipe).pool(kind, recipe.split)}


def _categories(recipe: SimRecipe, kind: str) -> dict[str, list[str]]:
    """{category: asset ids} of the recipe's pool."""
    found: dict[str, list[str]] = {}
    for asset in recipe_catalog(recipe).pool(kind, recipe.split):
        found.setdefault(asset.category, []).append(asset.id)
    return found


def _rgbas(values) -> set[tuple[float, ...]]:
    return {tuple(round(float(v), 4) for v in rgba) for rgba in values}


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return max(a[0], b[0]) <= min(a[1], b[1])


def _template_pools(split: str) -> set[str]:
    from dataengine.rewrite.templates import family_templates, split_pool

    return {t for rel in ("in", "on") for t in split_pool(family_templates("pick_place", rel), split)}


def held_out_violations(bench_path: Path = BENCH_DIR / "bench.yaml", training: list[Path] | None = None) -> list[str]:
    """Everything a track holds out that some training recipe could also produce (empty when disjoint)."""
    bench, bench_dir = load_bench(bench_path)
    problems: list[str] = []
    for train_path in training if training is not None else training_recipes():
        train = load_recipe(train_path)
        if train.split != "seen":
            problems.append(f"{train_path.name}: a training recipe must use split seen, not {train.split!r}")
        for track in bench.tracks:
            recipe = track_recipe(bench_dir, track)
            where = f"{track.name} vs {train_path.name}"
            if "objects" in track.holds_out:
                shared = _asset_ids(recipe, "object") & _asset_ids(train, "object")
                problems += [f"{where}: object {a} is in both" for a in sorted(shared)]
                held, trained = _categories(recipe, "object"), _categories(train, "object")
                problems += [
                    f"{where}: category {c!r} is in both (track {', '.join(held[c])}; training {', '.join(trained[c])})"
                    for c in sorted(held.keys() & trained.keys())
                ]
            if "containers" in track.holds_out:
                shared = _asset_ids(recipe, "container") & _asset_ids(train, "container")
                problems += [f"{where}: container {a} is in both" for a in sorted(shared)]
            if "backgrounds" in track.holds_out:
                r, t = recipe.task.randomization, train.task.randomization
                for field in ("table_rgbas", "floor_rgbas"):
                    shared = _rgbas(getattr(r, field)) & _rgbas(getattr(t, field))
                    problems += [f"{where}: {field} {c} is in both" for c in sorted(shared)]
            if "instructions" in track.holds_out:
                if recipe.split != "unseen" or recipe.rewriter != "offline":
                    problems.append(f"{where}: the instruction track needs split unseen and the offline rewriter")
                shared = _template_pools("unseen") & _template_pools(train.split)
                problems += [f"{where}: template {t!r} is in both" for t in sorted(shared)]
            if "layouts" in track.holds_out:
                r, t = recipe.task.layout, train.task.layout
                if _overlaps(r.container_region_x_m, t.container_region_x_m):
                    problems.append(f"{where}: container x regions {r.container_region_x_m} and "
                                    f"{t.container_region_x_m} overlap")  # fmt: skip
                if _overlaps(r.distractors, t.distractors):
                    problems.append(f"{where}: distractor counts {r.distractors} and {t.distractors} overlap")
    return problems


# --- the configuration listing --------------------------------------------------------------------------------


def list_configurations(
    bench_path: Path = BENCH_DIR / "bench.yaml", work_dir: Path | None = None, workers: int | None = 0
) -> list[dict]:
    """Run every track physics-only (no rendering, template instructions) and describe each configuration."""
    import tempfile

    from dataengine.shards.episode import iter_episodes
    from dataengine.sim.generate import generate

    bench, bench_dir = load_bench(bench_path)
    rows = []
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        for track in bench.tracks:
            recipe = track_recipe(bench_dir, track)
            out = Path(tmp) / track.name
            stats = generate(recipe, out, workers=workers, render=False, rewriter="none", show_progress=True)
            if stats["episodes_lost"]:
                raise RecipeError(f"{track.name}: episodes {stats['episodes_lost']} found no success")
            for ep in iter_episodes(out):
                rec = ep.record
                rows.append(
                    {
                        "track": track.name,
                        "index": rec.episode_index,
                        "key": rec.key,
                        "recipe": track.recipe,
                        "seed": rec.seed,
                        "attempt": rec.attempt,
                        "pick_asset": rec.task.pick_asset,
                        "place_asset": rec.task.place_asset,
                        "distractor_assets": rec.task.distractor_assets,
                        "relation": rec.task.relation,
                        "instruction": rec.instructions.base,
                    }
                )
    return sorted(rows, key=lambda r: ([t.name for t in bench.tracks].index(r["track"]), r["index"]))


def write_configurations(rows: list[dict], path: Path = BENCH_DIR / CONFIGURATIONS_NAME) -> Path:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    return path


def read_configurations(path: Path = BENCH_DIR / CONFIGURATIONS_NAME) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
