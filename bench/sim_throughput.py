"""Validated, rendered demos per core-hour (2 cameras, 224x224, 10 Hz), per render preset, and 1 vs 2 workers.

Part 1 runs `generate` inline (this process is the one worker) per preset and reports CPU seconds per episode,
split into physics (layout sampling, IK, simulation, checks) and rendering (kinematic replay, JPEG, labels), and
the resulting demos per core-hour. Part 2 runs the same job on a local Ray with 1 and then 2 workers (Ray is
started once, before timing) and reports the wall-clock speed-up.

    python bench/sim_throughput.py --episodes 12 --presets fast standard --scaling-episodes 16
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from dataengine.sim.generate import generate
from dataengine.sim.spec import load_recipe

REPO = Path(__file__).resolve().parents[1]


def run_inline(recipe_path: str, preset: str, episodes: int, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    recipe = load_recipe(recipe_path, episodes=episodes, episodes_per_shard=4)
    recipe.render.preset = preset
    cpu0, wall0 = time.process_time(), time.perf_counter()
    stats = generate(recipe, out, workers=0, show_progress=False)
    cpu = time.process_time() - cpu0
    n = stats["episodes_written"]
    return {
        "preset": preset,
        "episodes": n,
        "attempts": stats["attempts"],
        "cpu_s_per_episode": round(cpu / n, 3),
        "physics_cpu_s_per_episode": round(stats["cpu_physics_s"] / n, 3),
        "render_cpu_s_per_episode": round(stats["cpu_render_s"] / n, 3),
        "other_cpu_s_per_episode": round((cpu - stats["cpu_physics_s"] - stats["cpu_render_s"]) / n, 3),
        "demos_per_core_hour": round(3600 * n / cpu, 1),
        "physics_only_demos_per_core_hour": round(3600 * n / stats["cpu_physics_s"], 1),
        "wall_s": round(time.perf_counter() - wall0, 1),
    }


def run_scaling(recipe_path: str, episodes: int, out: Path) -> dict:
    import ray

    from dataengine.runtime.ray_runtime import WORKER_ENV

    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": WORKER_ENV})
    walls = {}
    try:
        for workers in (1, 2):
            target = out / f"w{workers}"
            shutil.rmtree(target, ignore_errors=True)
            recipe = load_recipe(recipe_path, episodes=episodes, episodes_per_shard=2)
            wall0 = time.perf_counter()
            generate(recipe, target, workers=workers, show_progress=False)
            walls[workers] = time.perf_counter() - wall0
    finally:
        ray.shutdown()
    return {
        "episodes": episodes,
        "wall_s_1_worker": round(walls[1], 1),
        "wall_s_2_workers": round(walls[2], 1),
        "speedup_2_vs_1": round(walls[1] / walls[2], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=str(REPO / "recipes/sim/pick_place_demo.yaml"))
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--presets", nargs="+", default=["fast", "standard"])
    parser.add_argument("--scaling-episodes", type=int, default=16, help="0 skips the 1 vs 2 workers part")
    parser.add_argument("--out", default="/tmp/sim_throughput")
    args = parser.parse_args()
    out = Path(args.out)
    report = {"load_average_at_start": os.getloadavg(), "presets": [], "scaling": None}
    for preset in args.presets:
        report["presets"].append(run_inline(args.recipe, preset, args.episodes, out / preset))
        print(json.dumps(report["presets"][-1]), flush=True)
    if args.scaling_episodes:
        report["scaling"] = run_scaling(args.recipe, args.scaling_episodes, out / "scaling")
        print(json.dumps(report["scaling"]), flush=True)
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
