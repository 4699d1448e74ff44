"""Options that describe a cluster, shared by `sim plan` and `build --dry-run`, and the `Cluster` they make."""

from __future__ import annotations

import os

import typer

from dataengine.runtime.capacity import Cluster

NODES = typer.Option(None, "--nodes", min=1, help="Nodes of the cluster to plan for (default: this machine).")
CPUS_PER_NODE = typer.Option(None, "--cpus-per-node", min=1, help="CPUs each node gives Ray (default: this one's).")
GPUS_PER_NODE = typer.Option(0, "--gpus-per-node", min=0, help="RTX GPUs per node (Isaac Sim tasks take one each).")
CORE_SPEED = typer.Option(
    1.0, "--core-speed", min=0.01, help="A cluster core's speed relative to the calibration machine (2 = twice)."
)
PREEMPTIONS = typer.Option(
    0.0, "--preemptions-per-node-hour", min=0.0, help="Expected node losses per node-hour (spot: e.g. 0.05)."
)


def make_cluster(
    nodes: int | None, cpus_per_node: int | None, gpus_per_node: int, core_speed: float, preemptions: float
) -> Cluster:
    local = nodes is None and cpus_per_node is None
    return Cluster(
        nodes=nodes or 1,
        cpus_per_node=cpus_per_node or os.cpu_count() or 1,
        gpus_per_node=gpus_per_node,
        core_speed=core_speed,
        preemptions_per_node_hour=preemptions,
        head_reserved_cpus=0 if local else 1,  # on one's own machine the driver shares the cores
    )
