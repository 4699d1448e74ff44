"""Builds on a two-node Ray cluster (`ray.cluster_utils.Cluster` on one machine): the same bytes as an inline build,
also when a worker node is killed mid-job."""

import hashlib
import threading
import time
from pathlib import Path

import pytest

from dataengine.corpus import build_corpus
from tests.fixtures.corpus_sources import build_corpus_sources, write_recipe

pytestmark = pytest.mark.ray


def _digests(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "_state" not in p.relative_to(out).parts
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_corpus")
    build_corpus_sources(root / "sources")
    recipe = write_recipe(root / "recipe.yaml", root / "sources", max_samples=4, min_shards=24)
    build_corpus(recipe, root / "inline" / "out", workers=0, show_progress=False)
    return root, recipe, _digests(root / "inline" / "out")


@pytest.fixture(scope="module")
def cluster():
    """A head without CPUs and two one-CPU worker nodes, so every task runs on a worker node."""
    import ray
    from ray.cluster_utils import Cluster

    # Fast failure detection, so a killed node's tasks are retried within seconds.
    config = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 2}
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": config}
    )
    workers = [cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)]
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    cluster.wait_for_nodes()
    try:
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_two_node_cluster_build_is_identical_to_inline(setup, cluster):
    import ray

    root, recipe, reference = setup
    assert len([n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]) == 2
    stats = build_corpus(recipe, root / "cluster" / "out", show_progress=False)
    assert stats["shards"] > 10
    assert _digests(root / "cluster" / "out") == reference


def test_killing_a_worker_node_mid_job_still_gives_the_full_identical_corpus(setup, cluster):
    import ray

    root, recipe, reference = setup
    cluster_obj, workers = cluster
    out = root / "node_kill" / "out"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            build_corpus(recipe, out, show_progress=False)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    markers = out / "_state" / "done"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (markers.is_dir() and len(list(markers.glob("*.json"))) >= 3):
        time.sleep(0.002)
    done_at_kill = len(list(markers.glob("*.json")))
    cluster_obj.remove_node(workers[1], allow_graceful=False)
    thread.join(timeout=300)
    assert not thread.is_alive() and not errors, errors
    assert 3 <= done_at_kill < 24  # the node died while write tasks were still to run
    assert _digests(out) == reference
    deadline = time.monotonic() + 60  # the node is really gone (Ray notices within its health-check period)
    while time.monotonic() < deadline and len([n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]) > 1:
        time.sleep(0.2)
    assert len([n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]) == 1
