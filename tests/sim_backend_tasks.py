"""Task functions for the backend placement tests (importable by Ray workers)."""

from pathlib import Path


def report_node(task, out: Path) -> dict:
    """Which Ray node ran the task, and which GPU Ray gave it."""
    import ray

    context = ray.get_runtime_context()
    return {"i": task.payload["i"], "node": context.get_node_id(), "gpus": [str(g) for g in ray.get_gpu_ids()]}
