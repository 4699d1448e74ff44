"""Generation on a two-node Ray cluster (`ray.cluster_utils.Cluster`) gives the same bytes as an inline run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("mujoco")
ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from dataengine.sim.generate import MANIFEST_NAME, generate  # noqa: E402
from dataengine.sim.recipe import load_recipe  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "recipes/sim/pick_place_demo.yaml"


@pytest.mark.ray
def test_two_node_cluster_matches_inline(tmp_path):
    data = yaml.safe_load(DEMO.read_text())
    data.update({"episodes": 2, "episodes_per_shard": 1, "render": {**data["render"], "width": 64, "height": 64}})
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(data))
    recipe = load_recipe(recipe_path)
    inline = tmp_path / "inline"
    generate(recipe, inline, workers=0, show_progress=False)

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        out = tmp_path / "cluster"
        stats = generate(recipe, out, workers=2, ray_address=cluster.address, show_progress=False)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    assert stats["episodes_written"] == 2
    names = [*sorted(p.name for p in inline.iterdir() if p.suffix == ".tar"), MANIFEST_NAME]
    assert names == [*sorted(p.name for p in out.iterdir() if p.suffix == ".tar"), MANIFEST_NAME]
    for name in names:
        assert (out / name).read_bytes() == (inline / name).read_bytes(), name
