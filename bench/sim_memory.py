"""Worker memory over a long simulated-generation run: RSS after 20 and after N episodes in one process.

Runs `generate` inline (workers=0), so this process is the worker: one MuJoCo backend reused for every episode,
scenes recompiled per attempt, renderers re-created per scene. Prints RSS (current and peak) after each chunk.

    python bench/sim_memory.py --episodes 500 --preset fast --out /tmp/sim_memory
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path

import psutil

from dataengine.sim.generate import generate
from dataengine.sim.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--chunk", type=int, default=10, help="episodes per shard (RSS is sampled per chunk)")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--recipe", default=str(REPO / "recipes/sim/pick_place_demo.yaml"))
    parser.add_argument("--out", default="/tmp/sim_memory")
    parser.add_argument("--json", default=None, help="write the samples here")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    recipe = load_recipe(args.recipe, episodes=args.episodes, episodes_per_shard=args.chunk)
    recipe.render.preset = args.preset
    proc = psutil.Process()
    samples = []
    start = time.perf_counter()

    def on_progress(results: list[dict]) -> None:
        done = sum(r["successes"] for r in results)
        rss = proc.memory_info().rss / 2**20
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        samples.append({"episodes": done, "rss_mib": round(rss, 1), "peak_rss_mib": round(peak, 1),
                        "elapsed_s": round(time.perf_counter() - start, 1)})  # fmt: skip
        print(json.dumps(samples[-1]), flush=True)

    stats = generate(recipe, args.out, workers=0, show_progress=False, on_progress=on_progress)
    summary = {"samples": samples, "episodes_written": stats["episodes_written"], "attempts": stats["attempts"],
               "failures": stats["failures"], "preset": args.preset}  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "samples"}))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
