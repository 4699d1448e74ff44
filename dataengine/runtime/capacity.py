"""Cluster budgets from measured costs: wall time, core-hours, disk, retries and Ray settings of a task job.

A job is a list of phases; a phase is a fixed list of equal-sized tasks (what `runtime.jobs.run_tasks` runs) with
the cost of one task measured on a calibration machine, plus driver-only (serial) work. On a cluster of `nodes`
nodes with `cpus_per_node` CPUs (and `gpus_per_node` GPUs) each, a phase runs in waves of `slots` concurrent tasks:

    task_s = task_cost_s / core_speed + worker_start_s,   waves = ceil(tasks / slots)
    wall_s = serial_s + max((waves - 1) * task_s + longest_task_s, tasks * DRIVER_S_PER_TASK)

The head node keeps `head_reserved_cpus` for the driver and Ray's GCS. Preemptions (`preemptions_per_node_hour`)
each kill the tasks running on one node: they are retried elsewhere (Ray's system-failure retries), losing on
average half a task each, which lengthens the run by the lost work spread over the slots; a preemption of the head
node ends the job, and `--resume` on a new head continues from the completion markers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

# From bench/orchestration.py (docs/benchmarks.md, "Orchestration at scale"): the driver's own CPU per finished task
# (marker write with fsync, bookkeeping, progress text) measured 1.8 ms with 10-row results on local disk, doubled for
# 32-row results and shared storage; its peak memory per manifest row held through the merge, (558 - 50) MiB for
# 244,000 rows.
DRIVER_S_PER_TASK = 0.004
DRIVER_BYTES_PER_ROW = 2_200
RAY_START_S = 30.0  # connecting to a cluster and starting the first workers, generous
RAY_NODE_OVERHEAD_BYTES = 2 << 30  # raylet, GCS (head), dashboard agent, log monitor and the OS, per node
MIN_OBJECT_STORE_BYTES = 1 << 30
MAX_TASK_RETRIES = 3  # `run_tasks(max_retries=...)` default


@dataclass(frozen=True)
class Cluster:
    """The machines a plan is for. `core_speed`: a cluster core's speed relative to the calibration machine's."""

    nodes: int = 1
    cpus_per_node: int = 1
    gpus_per_node: int = 0
    core_speed: float = 1.0
    preemptions_per_node_hour: float = 0.0
    head_reserved_cpus: int = 1

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.cpus_per_node < 1 or self.gpus_per_node < 0:
            raise ValueError("a cluster needs at least one node with at least one CPU")
        if self.core_speed <= 0 or self.preemptions_per_node_hour < 0:
            raise ValueError("core_speed must be > 0 and preemptions_per_node_hour >= 0")

    def slots(self, cpus_per_task: float, gpus_per_task: float) -> tuple[int, int]:
        """(tasks at once on the whole cluster, tasks at once on one worker node)."""
        per_node = math.floor(self.cpus_per_node / cpus_per_task)
        head = math.floor(max(0, self.cpus_per_node - self.head_reserved_cpus) / cpus_per_task)
        if gpus_per_task:
            per_node = min(per_node, math.floor(self.gpus_per_node / gpus_per_task))
            head = min(head, per_node)
        return head + per_node * (self.nodes - 1), per_node


@dataclass(frozen=True)
class Phase:
    """One `run_tasks` job (or driver-only work when `tasks` is 0). Costs are measured on the calibration machine:
    CPU seconds of one core for CPU tasks, wall seconds of one task on its GPU for GPU tasks."""

    name: str
    tasks: int
    task_cost_s: float
    longest_task_cost_s: float | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    worker_start_s: float = 0.0  # per task: a worker process's start-up spread over the tasks it runs
    serial_s: float = 0.0  # driver-only work before or after the tasks (plan, manifest merge)
    output_bytes: int = 0
    rows_held_by_driver: int = 0  # manifest rows the driver holds until the merge


@dataclass
class PhaseEstimate:
    name: str
    tasks: int
    slots: int
    waves: int
    task_s: float
    wall_s: float
    bound: str  # what limits the wall time: "slots", "one wave" or "driver"
    core_hours: float  # work done (CPU core-hours; GPU tasks count their CPUs too)
    gpu_hours: float
    expected_preemptions: float
    expected_retried_tasks: float
    lost_core_hours: float


@dataclass
class JobEstimate:
    cluster: Cluster
    phases: list[PhaseEstimate]
    wall_s: float
    core_hours: float
    gpu_hours: float
    billed_core_hours: float  # every CPU of every node for the whole wall time
    billed_gpu_hours: float
    expected_preemptions: float
    expected_retried_tasks: float
    p_task_exhausts_retries: float
    driver_rss_bytes: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def estimate_phase(phase: Phase, cluster: Cluster) -> PhaseEstimate:
    if phase.tasks == 0:
        return PhaseEstimate(phase.name, 0, 0, 0, 0.0, phase.serial_s, "driver", 0.0, 0.0, 0.0, 0.0, 0.0)
    slots, per_node = cluster.slots(phase.cpus_per_task, phase.gpus_per_task)
    if slots < 1:
        need = f"{phase.gpus_per_task:g} GPU(s)" if phase.gpus_per_task else f"{phase.cpus_per_task:g} CPU(s)"
        raise ValueError(f"{phase.name}: no node of this cluster can run a task (each needs {need})")
    task_s = phase.task_cost_s / cluster.core_speed + phase.worker_start_s
    longest = (phase.longest_task_cost_s or phase.task_cost_s) / cluster.core_speed + phase.worker_start_s
    waves = math.ceil(phase.tasks / slots)
    work_s = (waves - 1) * task_s + longest
    driver_s = phase.tasks * DRIVER_S_PER_TASK
    bound = "driver" if driver_s > work_s else ("one wave" if waves == 1 else "slots")
    wall = max(work_s, driver_s)
    preemptions = cluster.preemptions_per_node_hour * cluster.nodes * wall / 3600
    retried = preemptions * per_node
    lost_s = retried * task_s / 2
    wall += lost_s / slots
    core_s = phase.tasks * task_s * phase.cpus_per_task
    return PhaseEstimate(
        name=phase.name,
        tasks=phase.tasks,
        slots=slots,
        waves=waves,
        task_s=round(task_s, 3),
        wall_s=round(wall + phase.serial_s, 1),
        bound=bound,
        core_hours=round((core_s + lost_s * phase.cpus_per_task) / 3600, 2),
        gpu_hours=round(phase.tasks * task_s * phase.gpus_per_task / 3600, 2),
        expected_preemptions=round(preemptions, 3),
        expected_retried_tasks=round(retried, 2),
        lost_core_hours=round(lost_s * phase.cpus_per_task / 3600, 3),
    )


def estimate_job(phases: list[Phase], cluster: Cluster, driver_base_bytes: int = 400 << 20) -> JobEstimate:
    """Estimate every phase on `cluster`; phases run one after the other, after Ray's start-up."""
    estimates = [estimate_phase(p, cluster) for p in phases]
    wall = RAY_START_S + sum(e.wall_s for e in estimates)
    longest_task_h = max((e.task_s for e in estimates), default=0.0) / 3600
    p_one = cluster.preemptions_per_node_hour * longest_task_h  # one task hit by a preemption of its node
    rows = max((p.rows_held_by_driver for p in phases), default=0)
    return JobEstimate(
        cluster=cluster,
        phases=estimates,
        wall_s=round(wall, 1),
        core_hours=round(sum(e.core_hours for e in estimates), 2),
        gpu_hours=round(sum(e.gpu_hours for e in estimates), 2),
        billed_core_hours=round(cluster.nodes * cluster.cpus_per_node * wall / 3600, 2),
        billed_gpu_hours=round(cluster.nodes * cluster.gpus_per_node * wall / 3600, 2),
        expected_preemptions=round(sum(e.expected_preemptions for e in estimates), 3),
        expected_retried_tasks=round(sum(e.expected_retried_tasks for e in estimates), 2),
        p_task_exhausts_retries=p_one ** (MAX_TASK_RETRIES + 1),
        driver_rss_bytes=int(driver_base_bytes + rows * DRIVER_BYTES_PER_ROW),
    )


@dataclass(frozen=True)
class RaySettings:
    """How to start the cluster for a job, and what its shared storage must offer."""

    object_store_bytes: int
    node_memory_bytes: int
    head_command: str
    worker_command: str
    job_command: str
    storage_bytes: int
    storage_files: int
    write_mb_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def ray_settings(
    cluster: Cluster,
    *,
    worker_rss_bytes: int,
    result_bytes_per_task: int,
    storage_bytes: int,
    storage_files: int,
    wall_s: float,
    job_command: str,
    gpu_resource: str | None = None,
) -> RaySettings:
    """Ray start commands for the head and worker nodes (object store sized to what the job keeps in it: task
    results and the shared task function, tiny next to Ray's default of 30% of RAM, which workers need)."""
    slots, _ = cluster.slots(1, 0)
    object_store = max(MIN_OBJECT_STORE_BYTES, 4 * slots * result_bytes_per_task)
    workers = cluster.gpus_per_node if gpu_resource else cluster.cpus_per_node
    node_memory = RAY_NODE_OVERHEAD_BYTES + object_store + workers * worker_rss_bytes
    gpus = f" --num-gpus={cluster.gpus_per_node}" if cluster.gpus_per_node else ""
    custom = f" --resources='{{\"{gpu_resource}\": {cluster.gpus_per_node}}}'" if gpu_resource else ""
    head_cpus = max(0, cluster.cpus_per_node - cluster.head_reserved_cpus)
    common = f"--object-store-memory={object_store}{gpus}{custom}"
    return RaySettings(
        object_store_bytes=object_store,
        node_memory_bytes=node_memory,
        head_command=f"ray start --head --port=6379 --num-cpus={head_cpus} {common}",
        worker_command=f"ray start --address=HEAD:6379 --num-cpus={cluster.cpus_per_node} {common}",
        job_command=job_command,
        storage_bytes=storage_bytes,
        storage_files=storage_files,
        write_mb_per_s=round(storage_bytes / max(wall_s, 1.0) / 1e6, 2),
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def human_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"
