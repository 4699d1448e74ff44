"""ORCHESTRATION benchmark (not a simulator): the real `run_tasks` path at the task count of a 244K-episode run.

Every task is a `sim generate` chunk task (`chunk_tasks` of recipes/sim/pick_place.yaml: the real payload) whose
work is trivial: no physics, no rendering. It writes what a chunk writes (one `episodes-<k>-000000.tar` through the
real `ShardWriter`, with its `.idx.json`; one ~200-byte JSON member per episode instead of frames) and returns a
result of the real shape (manifest rows, lost episodes, attempts, failures by reason, CPU seconds, shard names);
3 episodes in 125 are "lost", so 25,000 tasks of 10 episodes give 244,000 manifest rows. Measured, on local Ray
started once (its start-up is reported apart):

1. `run_tasks` from nothing, with `sim generate`'s own progress text: wall time, driver CPU per task, driver RSS
   sampled every `--sample-every` tasks and fitted to a line (MiB per 1,000 tasks; "flat" when the fit's rise over
   the run is under 5%);
2. the baseline (after 1, so that 1's driver memory is not the baseline's freed memory): the same task function on
   bare Ray (`ray.remote` + `ray.wait`, the same number in flight), results collected, no markers; overhead per
   task of 1 against it;
3. resume: `--resume-todo` markers deleted (evenly spread; their outputs stay, as after a crash), `run_tasks(...,
   resume=True)`: wall time, against a fresh run of that many tasks;
4. the manifest merge (`sim generate`'s `_write_outputs`) of every row, in a fresh process that first loads the
   results from the completion markers (as a resumed driver does): load time, merge time, RSS after loading and
   peak RSS.

    nice -n 15 python bench/orchestration.py --tasks 25000 --workers 2 --out /tmp/bench_orchestration
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

from dataengine.runtime.jobs import STATE_DIR, JobState, Task, run_tasks
from dataengine.sim.generate import _write_outputs, chunk_tasks, progress_describer
from dataengine.sim.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes/sim/pick_place.yaml"
ASSETS = ["ycb_cracker_box", "ycb_mustard_bottle", "ycb_banana", "ycb_apple", "toy_eraser", "plastic_cup"]
CONTAINERS = ["wicker_basket", "blue_plate", "wooden_bowl"]


def is_lost(index: int) -> bool:
    return index % 125 < 3


def trivial_chunk(task: Task, out_dir: Path) -> dict:
    """A chunk task's outputs and result, with trivial work (see the module docstring)."""
    from dataengine.shards import ShardWriter
    from dataengine.sim.episode_members import episode_key

    p = task.payload
    name = p["recipe"]["name"]
    rows, lost = [], []
    writer = ShardWriter(out_dir, task.task_id, max_samples=1_000_000, max_bytes=1 << 40)
    for index in range(p["start"], p["stop"]):
        if is_lost(index):
            lost.append({"episode_index": index, "failures": {"grasp_missed": 20, "ik_unreachable": 10}})
            continue
        key = episode_key(name, index)
        pick, place = ASSETS[index % len(ASSETS)], CONTAINERS[index % len(CONTAINERS)]
        instruction = f"pick up the {pick.split('_', 1)[1].replace('_', ' ')} and put it in the {place}"
        meta = {"key": key, "episode_index": index, "instruction": instruction, "pick": pick, "place": place}
        shard = writer.write(key, {"json": json.dumps(meta, sort_keys=True).encode()})
        rows.append({
            "key": key, "shard": shard, "episode_index": index, "pick_asset": pick, "place_asset": place,
            "relation": "in", "distractors": index % 4, "num_steps": 95 + index % 20, "attempts": 1 + index % 2,
            "instruction": instruction, "split": "seen", "success": True,
        })  # fmt: skip
    infos = writer.close()
    return {
        "episodes": rows,
        "lost": lost,
        "attempts": sum(r["attempts"] for r in rows) + 30 * len(lost),
        "successes": len(rows),
        "failures": {"grasp_missed": 20 * len(lost) + len(rows) // 2, "ik_unreachable": 10 * len(lost)},
        "cpu_physics_s": 0.0,
        "cpu_render_s": 0.0,
        "shards": [i.name for i in infos],
    }


def bare_ray(tasks: list[Task], out: Path, workers: int) -> float:
    """The baseline: the same task function on bare Ray, `workers` in flight, results collected, no markers."""
    import ray

    out.mkdir(parents=True)
    remote = ray.remote(num_cpus=1)(lambda fn, task, out_dir: fn(task, Path(out_dir)))
    fn_ref = ray.put(trivial_chunk)
    pending, in_flight, results = list(reversed(tasks)), set(), []
    t0 = time.perf_counter()
    while pending or in_flight:
        while pending and len(in_flight) < workers:
            in_flight.add(remote.remote(fn_ref, pending.pop(), str(out)))
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        in_flight.discard(ready[0])
        results.append(ray.get(ready[0]))
    return time.perf_counter() - t0


def fit_memory(samples: list[dict]) -> dict:
    """Least-squares line of driver RSS against tasks done, over the samples after the first tenth of the run."""
    tail = [s for s in samples if s["tasks"] >= samples[-1]["tasks"] / 10]
    x = np.array([s["tasks"] for s in tail], dtype=float)
    y = np.array([s["rss_mib"] for s in tail], dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    rise = slope * (x[-1] - x[0])
    residual = float(np.sqrt(np.mean((y - (slope * x + intercept)) ** 2)))
    return {
        "mib_per_1000_tasks": round(float(slope) * 1000, 3),
        "rise_mib": round(float(rise), 1),
        "first_mib": round(float(y[0]), 1),
        "last_mib": round(float(y[-1]), 1),
        "fit_rms_mib": round(residual, 2),
        "shape": "flat" if rise < 0.05 * y[0] else "linear",
    }


def timed_run_tasks(tasks: list[Task], out: Path, workers: int, resume: bool, sample_every: int) -> dict:
    proc = psutil.Process()
    samples: list[dict] = []
    t0, cpu0 = time.perf_counter(), time.process_time()
    first: list[float] = []
    describe_progress = progress_describer()

    def describe(results: list[dict]) -> str:
        if not first:
            first.append(time.perf_counter() - t0)
        if len(results) % sample_every == 0:
            rss = proc.memory_info().rss / 2**20
            samples.append({"tasks": len(results), "rss_mib": round(rss, 1), "s": round(time.perf_counter() - t0, 2)})
        return describe_progress(results)

    results = run_tasks(
        trivial_chunk, tasks, out, job_name="orchestration", fingerprint="orchestration-bench", workers=workers,
        resume=resume, describe=describe, show_progress=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    return {
        "tasks": len(tasks),
        "wall_s": round(wall, 2),
        "driver_cpu_s": round(time.process_time() - cpu0, 2),
        "first_result_s": round(first[0], 3) if first else None,
        "rows": sum(len(r["episodes"]) for r in results),
        "samples": samples,
    }


def merge_in_fresh_process(out: Path, recipe_args: dict) -> dict:
    cmd = [sys.executable, __file__, "--merge-only", str(out), "--recipe-args", json.dumps(recipe_args)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def merge_only(out: Path, recipe_args: dict) -> None:
    """Load every result from the completion markers, then write the manifest and stats: time and memory."""
    proc = psutil.Process()
    rss0 = proc.memory_info().rss / 2**20
    recipe = load_recipe(RECIPE, **recipe_args)
    tasks = chunk_tasks(recipe, True, "offline")
    state = JobState(out)
    t0, c0 = time.perf_counter(), time.process_time()
    results = [state.result(t.task_id) for t in tasks]
    load_s, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_loaded = proc.memory_info().rss / 2**20
    (out / "manifest.parquet").unlink(missing_ok=True)
    t1, c1 = time.perf_counter(), time.process_time()
    stats = _write_outputs(recipe, out, results, "offline", True)
    merge_s, merge_cpu = time.perf_counter() - t1, time.process_time() - c1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "rows": stats["episodes_written"], "load_s": round(load_s, 2), "load_cpu_s": round(load_cpu, 2),
        "merge_s": round(merge_s, 2), "merge_cpu_s": round(merge_cpu, 2),
        "rss_start_mib": round(rss0, 1), "rss_loaded_mib": round(rss_loaded, 1), "peak_rss_mib": round(peak, 1),
        "manifest_bytes": (out / "manifest.parquet").stat().st_size,
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=25_000)
    parser.add_argument("--episodes-per-task", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--resume-todo", type=int, default=1000, help="markers deleted before the resume")
    parser.add_argument("--sample-every", type=int, default=250, help="driver RSS sampled every N finished tasks")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--out", default="/tmp/bench_orchestration")
    parser.add_argument("--json", default=None, help="write all figures here")
    parser.add_argument("--merge-only", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--recipe-args", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.merge_only:
        merge_only(Path(args.merge_only), json.loads(args.recipe_args))
        return

    import ray

    root = Path(args.out)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    recipe_args = {"episodes": args.tasks * args.episodes_per_task, "episodes_per_shard": args.episodes_per_task}
    recipe = load_recipe(RECIPE, **recipe_args)
    tasks = chunk_tasks(recipe, True, "offline")
    figures: dict = {"tasks": len(tasks), "episodes": recipe.episodes, "workers": args.workers}
    figures["payload_bytes"] = len(json.dumps(tasks[0].payload))
    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="WARNING")
    figures["ray_start_s"] = round(time.perf_counter() - t0, 2)
    try:
        warm = run_tasks(trivial_chunk, tasks[: 4 * args.workers], root / "warmup", job_name="warm-up",
                         fingerprint="w", workers=args.workers, show_progress=False)  # fmt: skip
        assert len(warm) == 4 * args.workers
        run = timed_run_tasks(tasks, root / "run", args.workers, False, args.sample_every)  # first: clean RSS
        figures["run_tasks"] = {k: v for k, v in run.items() if k != "samples"}
        figures["driver_rss"] = fit_memory(run["samples"])
        figures["driver_rss_samples"] = run["samples"]
        print(json.dumps({"run_tasks": figures["run_tasks"], "driver_rss": figures["driver_rss"]}), flush=True)
        if not args.skip_baseline:
            figures["bare_ray_s"] = round(bare_ray(tasks, root / "bare", args.workers), 2)
            print(json.dumps({"bare_ray_s": figures["bare_ray_s"]}), flush=True)
        if "bare_ray_s" in figures:
            over = (run["wall_s"] - figures["bare_ray_s"]) / len(tasks) * 1000
            figures["overhead_ms_per_task"] = round(over, 3)
            figures["ratio_run_tasks_to_bare"] = round(run["wall_s"] / figures["bare_ray_s"], 3)
        figures["driver_cpu_ms_per_task"] = round(run["driver_cpu_s"] / len(tasks) * 1000, 3)

        state = JobState(root / "run")
        step = len(tasks) // args.resume_todo
        removed = [t.task_id for t in tasks[::step][: args.resume_todo]]
        for task_id in removed:
            state.marker(task_id).unlink()
        resumed = timed_run_tasks(tasks, root / "run", args.workers, True, 10**9)
        figures["resume"] = {"todo": len(removed), **{k: v for k, v in resumed.items() if k != "samples"}}
        fresh = timed_run_tasks(tasks[: len(removed)], root / "fresh_small", args.workers, False, 10**9)
        figures["fresh_same_todo"] = {k: v for k, v in fresh.items() if k != "samples"}
        figures["resume_ratio"] = round(resumed["wall_s"] / fresh["wall_s"], 3)
        print(json.dumps({"resume": figures["resume"], "fresh": figures["fresh_same_todo"]}), flush=True)
    finally:
        ray.shutdown()
    figures["merge"] = merge_in_fresh_process(root / "run", recipe_args)
    figures["files_in_out"] = sum(1 for _ in (root / "run").iterdir())
    figures["markers"] = sum(1 for _ in (root / "run" / STATE_DIR / "done").iterdir())
    print(json.dumps({k: v for k, v in figures.items() if k != "driver_rss_samples"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    os.sync()


if __name__ == "__main__":
    main()
