"""Cluster budgets (`runtime.capacity`): slots, waves, wall time, work, preemptions and Ray settings."""

import math

import pytest

from dataengine.runtime.capacity import (
    DRIVER_S_PER_TASK,
    RAY_START_S,
    Cluster,
    Phase,
    estimate_job,
    estimate_phase,
    ray_settings,
)


def test_slots_keep_a_cpu_for_the_driver_and_follow_gpus():
    cluster = Cluster(nodes=8, cpus_per_node=64)
    assert cluster.slots(1, 0) == (8 * 64 - 1, 64)
    assert cluster.slots(2, 0) == (31 + 7 * 32, 32)
    rtx = Cluster(nodes=4, cpus_per_node=32, gpus_per_node=8)
    assert rtx.slots(1, 1) == (32, 8)
    assert Cluster(nodes=2, cpus_per_node=32).slots(1, 1) == (0, 0)


def test_waves_wall_time_and_work():
    cluster = Cluster(nodes=2, cpus_per_node=4)  # 7 slots
    est = estimate_phase(Phase("p", tasks=1000, task_cost_s=10.0, longest_task_cost_s=14.0), cluster)
    assert (est.slots, est.waves, est.bound) == (7, 143, "slots")
    assert est.wall_s == pytest.approx(142 * 10 + 14)
    assert est.core_hours == pytest.approx(1000 * 10 / 3600, abs=0.01)
    faster = estimate_phase(Phase("p", 1000, 10.0, 14.0), Cluster(nodes=2, cpus_per_node=4, core_speed=2.0))
    assert faster.wall_s == pytest.approx((142 * 10 + 14) / 2)
    job = estimate_job([Phase("p", 1000, 10.0, 14.0), Phase("merge", 0, 0.0, serial_s=5.0)], cluster)
    assert job.wall_s == pytest.approx(RAY_START_S + 142 * 10 + 14 + 5)
    assert job.billed_core_hours == pytest.approx(8 * job.wall_s / 3600, abs=0.01)


def test_tiny_tasks_are_bound_by_the_driver_and_few_tasks_by_one_wave():
    cluster = Cluster(nodes=8, cpus_per_node=64)
    tiny = estimate_phase(Phase("p", tasks=100_000, task_cost_s=0.01), cluster)
    assert tiny.bound == "driver" and tiny.wall_s == pytest.approx(100_000 * DRIVER_S_PER_TASK)
    few = estimate_phase(Phase("p", tasks=30, task_cost_s=100.0, longest_task_cost_s=120.0), cluster)
    assert (few.waves, few.bound, few.wall_s) == (1, "one wave", 120.0)


def test_preemptions_rerun_the_tasks_of_a_node_and_lengthen_the_run():
    calm = Cluster(nodes=8, cpus_per_node=64)
    spot = Cluster(nodes=8, cpus_per_node=64, preemptions_per_node_hour=0.1)
    phase = Phase("p", tasks=7625, task_cost_s=342.0)
    a, b = estimate_phase(phase, calm), estimate_phase(phase, spot)
    assert a.expected_retried_tasks == 0 and b.expected_preemptions > 0
    assert b.expected_retried_tasks == pytest.approx(b.expected_preemptions * 64, rel=0.01)
    assert b.wall_s > a.wall_s and b.core_hours > a.core_hours
    job = estimate_job([phase], spot)
    assert 0 < job.p_task_exhausts_retries < 1e-6


def test_a_gpu_phase_needs_gpus():
    with pytest.raises(ValueError, match="GPU"):
        estimate_phase(Phase("isaac", tasks=10, task_cost_s=5.0, gpus_per_task=1), Cluster(nodes=2, cpus_per_node=8))
    est = estimate_phase(Phase("isaac", 100, 5.0, gpus_per_task=1), Cluster(nodes=2, cpus_per_node=8, gpus_per_node=4))
    assert (est.slots, est.waves) == (8, 13) and est.gpu_hours == pytest.approx(500 / 3600, abs=0.01)


def test_ray_settings_size_the_object_store_and_name_the_rtx_resource():
    cluster = Cluster(nodes=4, cpus_per_node=32, gpus_per_node=8)
    ray = ray_settings(
        cluster, worker_rss_bytes=2 << 30, result_bytes_per_task=10_000, storage_bytes=10**12,
        storage_files=1000, wall_s=3600, job_command="dataengine sim generate r.yaml --ray-address auto",
        gpu_resource="rtx",
    )  # fmt: skip
    assert ray.head_command.startswith("ray start --head --port=6379 --num-cpus=31 ")
    assert "--num-gpus=8 --resources='{\"rtx\": 8}'" in ray.worker_command
    assert ray.object_store_bytes == 1 << 30  # the minimum: results are small
    assert ray.node_memory_bytes == (2 << 30) + (1 << 30) + 8 * (2 << 30)
    assert ray.write_mb_per_s == pytest.approx(10**12 / 3600 / 1e6, abs=0.01)


def test_cluster_rejects_nonsense():
    with pytest.raises(ValueError):
        Cluster(nodes=0, cpus_per_node=4)
    with pytest.raises(ValueError):
        Cluster(nodes=1, cpus_per_node=4, core_speed=0)
    assert math.isfinite(estimate_job([], Cluster()).wall_s)
