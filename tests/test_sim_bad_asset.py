"""A bad asset in a 244K-episode run (docs/scale.md, "What fails at that size"): a catalog entry whose mesh file is
missing stops `sim generate` at once with an InputError naming the file (a data error is not retried: it would fail
again), leaves no episode half-written, and once the file is there `--resume` finishes the same job."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("mujoco")
pytest.importorskip("mink")

from dataengine.errors import InputError
from dataengine.sim.assets import DEFAULT_CATALOG
from dataengine.sim.generate import MANIFEST_NAME, generate
from dataengine.sim.recipe import load_recipe

DEMO = Path(__file__).resolve().parents[1] / "recipes/sim/pick_place_demo.yaml"
CUBE_OBJ = (
    "\n".join(
        [f"v {x} {y} {z}" for x in (-0.02, 0.02) for y in (-0.02, 0.02) for z in (0.0, 0.04)]
        + ["f 1 3 4 2", "f 5 6 8 7", "f 1 2 6 5", "f 3 7 8 4", "f 1 5 7 3", "f 2 4 8 6"]
    )
    + "\n"
)


def test_a_missing_mesh_stops_the_run_with_its_path_and_resume_finishes_it(tmp_path):
    entry = {"id": "toy_duck", "name": "toy duck", "category": "toy", "color": "yellow", "rgba": [1, 0.9, 0.1, 1],
             "size": "small", "shape": {"mesh": {"file": str(tmp_path / "meshes/duck.obj")}}}  # fmt: skip
    (tmp_path / "extra.yaml").write_text(yaml.safe_dump({"objects": [entry]}))
    data = yaml.safe_load(DEMO.read_text())
    data.update({"episodes": 2, "episodes_per_shard": 1, "catalogs": [str(DEFAULT_CATALOG), "extra.yaml"],
                 "render": {**data["render"], "width": 32, "height": 32}})  # fmt: skip
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(data))
    recipe = load_recipe(tmp_path / "recipe.yaml")
    out = tmp_path / "out"

    with pytest.raises(InputError, match=r"mesh file .*meshes/duck\.obj does not exist"):
        generate(recipe, out, workers=0, show_progress=False)
    assert not list(out.glob("*.tar*")) and not (out / MANIFEST_NAME).exists()

    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "duck.obj").write_text(CUBE_OBJ)
    stats = generate(recipe, out, workers=0, resume=True, show_progress=False)
    assert stats["episodes_written"] == 2 and (out / MANIFEST_NAME).exists()
    assert len(list(out.glob("*.tar"))) == 2
