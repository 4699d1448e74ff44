"""Catalogs of many mesh files: the generated many-object catalog loads and samples, graspability is worked out
once per catalog, and mesh corners stay cached after the arrays' cache has evicted them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

pytest.importorskip("trimesh")

from dataengine.records.layout import MeshSpec
from dataengine.sim import meshes
from dataengine.sim.assets import DEFAULT_CATALOG, graspable, load_catalog
from dataengine.sim.importer.fixtures import write_many_objects
from dataengine.sim.recipe import load_recipe
from dataengine.sim.sampler import sample_layout

REPO = DEFAULT_CATALOG.parents[2]


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    path = write_many_objects(folder / "catalog", 40)
    containers = folder / "containers.yaml"
    data = yaml.safe_load(DEFAULT_CATALOG.read_text())
    containers.write_text(yaml.safe_dump({"objects": [], "containers": data["containers"]}))
    return load_catalog([containers, path])


def test_the_many_object_catalog_is_distinct_graspable_and_sampled(many):
    assert len(many.objects) == 40 and len({a.category for a in many.objects}) == 4
    files = {a.shape["mesh"]["file"] for a in many.objects}
    assert len(files) == 40
    pool = many.graspable_pool("seen")
    assert [a.id for a in pool] == [a.id for a in many.objects if graspable(a, many.base_dir)] and len(pool) == 40
    pool.pop()  # callers get a copy: the cached pool is not changed
    assert len(many.graspable_pool("seen")) == 40
    recipe = load_recipe(REPO / "recipes/sim/pick_place_demo.yaml")
    layout = sample_layout(recipe, many, np.random.default_rng(3))
    assert layout.pick.asset_id.startswith("many_") and layout.pick.parts[0].mesh.texture


def test_mesh_corners_are_the_scaled_vertices_corners(many, monkeypatch):
    asset = many.objects[0]
    spec = MeshSpec.model_validate({**asset.shape["mesh"], "scale": [1.5, -2.0, 0.5]})
    vertices, _ = meshes.mesh_arrays(spec, many.base_dir)
    lo, hi = meshes.mesh_bounds(spec, many.base_dir)
    assert np.array_equal(lo, vertices.min(axis=0)) and np.array_equal(hi, vertices.max(axis=0))
    meshes._from_file.cache_clear()  # the arrays are gone from their cache; the corners are not reloaded
    monkeypatch.setattr(meshes, "_from_file", None)
    assert np.array_equal(meshes.mesh_bounds(spec, many.base_dir)[0], lo)
