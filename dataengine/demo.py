"""`dataengine demo`: the whole engine on embedded defaults (MuJoCo on CPU, offline rewriter, fixtures).

Steps, each a real job whose output the next one reads, each resumable (rerun the command to continue):
0. `DIR/assets` (only where robosuite is installed, or $DATAENGINE_ROBOSUITE_DIR names its package folder): its
   textured household objects (bread, can, cereal, lemon, milk) imported with `sim assets import` (texture,
   CoACD collision, graspability trials), and the episodes below pick and place those instead of the primitive
   catalog's objects (the containers stay the primitive catalog's); without robosuite the primitive catalog is
   the zero-install default;
1. `DIR/sim`: validated, rendered pick-and-place episodes (recipes/sim/pick_place_demo.yaml);
2. `DIR/corpus`: a grounding corpus built from recipes/demo.yaml (fixtures in the exact upstream layouts, converted,
   deduplicated, eval images held out, plus simulator frames);
3. `DIR/probe`: the learnability probe (`dataengine sim probe`): the state policy trained on DIR/sim's episodes and
   run closed loop on their own layouts, so the demo shows its demonstrations teach a policy;
4. `DIR/train`: a short two-stage ST4VLA training run on both (recipes/train/demo.yaml).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from dataengine.errors import InputError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SIM_RECIPE = "recipes/sim/pick_place_demo.yaml"
CORPUS_RECIPE = "recipes/demo.yaml"
TRAIN_RECIPE = "recipes/train/demo.yaml"
PROBE_STEPS = 1000  # the state policy on a handful of episodes: about 30 s on one core
PROBE_REPORT = "report.json"


@dataclass
class DemoResult:
    out: Path
    steps: dict[str, dict] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def find_recipes_dir(recipes_dir: str | Path | None = None) -> Path:
    """The `recipes/` folder of the checkout (or the one given)."""
    path = Path(recipes_dir) if recipes_dir else REPO_ROOT / "recipes"
    if not (path / "demo.yaml").exists():
        raise InputError(
            f"no demo recipes under {path}: run the demo from a checkout of the repository, "
            "or pass --recipes PATH/TO/recipes"
        )
    return path


def run_demo(
    out: str | Path,
    *,
    episodes: int | None = None,
    train_steps: int | None = None,
    train: bool = True,
    workers: int | None = None,
    recipes_dir: str | Path | None = None,
    device: str | None = None,
) -> DemoResult:
    """Run the three steps into `out`; returns what each step reported."""
    from dataengine.runtime.ray_runtime import ray_session
    from dataengine.sim.importer.sources import robosuite_objects_dir

    out = Path(out).resolve()
    recipes = find_recipes_dir(recipes_dir)
    result = DemoResult(out)
    with ray_session(None, num_cpus=workers):
        catalogs = None
        if robosuite_objects_dir() is not None:
            _timed(result, "assets", lambda: _import_objects(out / "assets", workers))
            catalogs = result.steps["assets"]["catalogs"]
        _timed(result, "sim", lambda: _simulate(recipes, out / "sim", episodes, workers, catalogs))
        _timed(result, "corpus", lambda: _build_corpus(recipes, out / "corpus", workers))
    if train:
        episodes_written = int(result.steps["sim"]["episodes_written"])
        _timed(result, "probe", lambda: _probe(out / "sim", out / "probe", episodes_written))
        _timed(result, "train", lambda: _train(recipes, out, train_steps, device))
    return result


def _timed(result: DemoResult, name: str, step) -> None:
    started = time.monotonic()
    log.info("demo: %s ...", name)
    result.steps[name] = step()
    result.seconds[name] = round(time.monotonic() - started, 1)


def _import_objects(out: Path, workers: int | None) -> dict:
    """robosuite's textured objects as a catalog in `out/objects`, and `out/containers.yaml` (the primitive
    catalog's containers): the catalogs the demo's episodes then use. Both files are written in `out`, so the
    episodes' relative mesh paths do not depend on where the checkout or `out` lie."""
    import yaml

    from dataengine.recipe_loader import read_yaml_mapping
    from dataengine.runtime.atomic import atomic_write_text
    from dataengine.sim.assets import DEFAULT_CATALOG
    from dataengine.sim.importer.job import CATALOG_NAME, ImportOptions, import_assets
    from dataengine.sim.importer.sources import ROBOSUITE_TEXTURED, robosuite_objects_dir

    objects = out / "objects"
    opts = ImportOptions(include=list(ROBOSUITE_TEXTURED))
    report = import_assets(
        robosuite_objects_dir(), objects, opts, workers=workers, resume=objects.exists(), show_progress=False
    )
    containers = {"containers": read_yaml_mapping(DEFAULT_CATALOG, "asset catalog")["containers"]}
    atomic_write_text(out / "containers.yaml", yaml.safe_dump(containers, sort_keys=True))
    return {**report, "catalogs": [str(objects / CATALOG_NAME), str(out / "containers.yaml")]}


def _simulate(
    recipes: Path, out: Path, episodes: int | None, workers: int | None, catalogs: list[str] | None = None
) -> dict:
    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe

    overrides: dict = {"episodes": episodes} if episodes else {}
    if catalogs:
        overrides["catalogs"] = catalogs
    recipe = load_recipe(recipes.parent / SIM_RECIPE, **overrides)
    return generate(recipe, out, workers=workers, resume=True)


def _build_corpus(recipes: Path, out: Path, workers: int | None) -> dict:
    from dataengine.corpus.build import build_corpus

    return build_corpus(recipes.parent / CORPUS_RECIPE, out, workers=workers, resume=True, command="dataengine demo")


def _probe(episodes_dir: Path, out: Path, episodes: int) -> dict:
    """The state policy on every demo episode, evaluated closed loop on the same layouts (a rerun reads the report)."""
    from dataengine.runtime.atomic import atomic_write_text
    from dataengine.train.probe import probe

    report_path = out / PROBE_REPORT
    if report_path.is_file():
        return json.loads(report_path.read_text())
    report = probe(
        episodes_dir, episodes=episodes, eval_episodes=episodes, steps=PROBE_STEPS, seed_offset=0, out=out / "run"
    )
    atomic_write_text(report_path, json.dumps(report, indent=1, sort_keys=True))
    return report


def _train(recipes: Path, out: Path, steps: int | None, device: str | None) -> dict:
    from dataengine.train import load_recipe, train

    overrides: dict = {}
    if steps is not None:
        overrides.update({"stage1.steps": steps, "stage2.steps": steps})
    if device is not None:
        overrides["device"] = device
    run = train(load_recipe(recipes.parent / TRAIN_RECIPE, overrides), out / "train", data_root=out)
    return {
        "steps": run.step,
        "losses": {stage: [round(v, 4) for v in (vals[0], vals[-1])] for stage, vals in run.losses.items() if vals},
        "checkpoint": str(run.checkpoint),
        "metrics": {
            k: v for k, v in (run.metrics or {}).items() if isinstance(v, int | float) or k == "grounding_decoding"
        },
    }
