"""Task functions for the job-runner tests (importable by Ray workers)."""

import os
import time
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


def hang(task, out: Path) -> dict:
    """Tasks in payload["hang"] hang (a deadlocked GL driver, a stuck mount) after leaving a partial output: the
    first time only, or every time with payload["always"]; each hung process appends its pid to `_hung_<id>`."""
    pids = out / f"_hung_{task.task_id}"
    if task.payload["i"] in task.payload.get("hang", []) and (task.payload.get("always") or not pids.exists()):
        with open(pids, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        (out / f"{task.task_id}-000000.tar.tmp").write_text("partial")
        time.sleep(3600)
    return write_one(task, out)
