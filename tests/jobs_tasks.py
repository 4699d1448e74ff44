"""Task functions for the job-runner tests (importable by Ray workers)."""

import os
from pathlib import Path


def write_one(task, out: Path) -> dict:
    path = out / f"{task.task_id}-data.txt"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"payload={task.payload['i']}\n")
    tmp.replace(path)
    return {"i": task.payload["i"], "pid": 0}


def crash_once(task, out: Path) -> dict:
    """Kill the worker process the first time each task runs (a crashed node or OOM kill)."""
    flag = out / f"_crashed_{task.task_id}"
    if not flag.exists():
        flag.write_text("x")
        os._exit(1)
    return write_one(task, out)


def fail_on(task, out: Path) -> dict:
    if task.payload["i"] == task.payload.get("fail", -1):
        raise ValueError("bad input in this partition")
    return write_one(task, out)
