"""`sim generate` on a two-node Ray cluster (`ray.cluster_utils.Cluster`) survives the loss of a worker node mid-run:
the dead node's chunk is retried on the other node and the output is byte-identical to an inline run.
(The same for `build`: tests/test_corpus_ray.py.) About 30 s: real MuJoCo episodes on a real three-process cluster;
episodes are tiny (32x32 renders) and one per chunk so the kill lands between chunks with work still to do."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("mujoco")
ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from dataengine.sim.generate import MANIFEST_NAME, STATS_NAME, generate  # noqa: E402
from dataengine.sim.recipe import load_recipe  # noqa: E402

pytestmark = pytest.mark.ray
DEMO = Path(__file__).resolve().parents[1] / "recipes/sim/pick_place_demo.yaml"
EPISODES = 4


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file() and p.name != STATS_NAME}


def _alive_worker_nodes() -> int:
    return len([n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")])


def test_losing_a_worker_node_mid_run_gives_the_same_bytes(tmp_path):
    data = yaml.safe_load(DEMO.read_text())
    render = {**data["render"], "width": 32, "height": 32}
    data.update({"episodes": EPISODES, "episodes_per_shard": 1, "render": render})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    recipe = load_recipe(path)
    generate(recipe, tmp_path / "inline", workers=0, show_progress=False)
    reference = _outputs(tmp_path / "inline")

    # a head without CPUs (every task runs on a worker node) and fast failure detection
    config = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 2}
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": config}
    )
    workers = [cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)]
    out = tmp_path / "cluster"
    errors: list[BaseException] = []
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        cluster.wait_for_nodes()
        assert _alive_worker_nodes() == 2

        def run() -> None:
            try:
                generate(recipe, out, show_progress=False)
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        markers = out / "_state" / "done"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (markers.is_dir() and any(markers.glob("*.json"))):
            time.sleep(0.01)
        done_at_kill = len(list(markers.glob("*.json")))
        cluster.remove_node(workers[1], allow_graceful=False)
        thread.join(timeout=300)
        assert not thread.is_alive() and not errors, errors
        assert 1 <= done_at_kill < EPISODES  # the node died with chunks still to run
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _alive_worker_nodes() > 1:
            time.sleep(0.2)
        assert _alive_worker_nodes() == 1
    finally:
        ray.shutdown()
        cluster.shutdown()
    outputs = _outputs(out)
    assert MANIFEST_NAME in outputs and len([n for n in outputs if n.endswith(".tar")]) == EPISODES
    assert outputs.keys() == reference.keys()
    for name, data in reference.items():
        assert outputs[name] == data, name
