"""Worker memory over a long simulated-generation run: RSS after 20 and after N episodes in one process.

Runs `generate` inline (workers=0), so this process is the worker: one MuJoCo backend reused for every episode,
scenes recompiled per attempt, renderers re-created per scene. Prints RSS (current and peak) after each chunk.
`--catalog-objects 1000` samples from a generated catalog of that many distinct textured mesh objects
(`importer.fixtures.write_many_objects`, 100 categories, each object its own OBJ + PNG + collision hull) and the
default containers, instead of the recipe's catalog.

    python bench/sim_memory.py --episodes 500 --preset fast --out /tmp/sim_memory
    python bench/sim_memory.py --episodes 500 --preset fast --catalog-objects 1000 --out /tmp/sim_memory_1k
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
    parser.add_argument("--catalog-objects", type=int, default=0, help="sample from a generated catalog this large")
    parser.add_argument("--no-render", action="store_true", help="physics only")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    recipe = load_recipe(args.recipe, episodes=args.episodes, episodes_per_shard=args.chunk)
    recipe.render.preset = args.preset
    if args.catalog_objects:
        recipe.catalogs = many_object_catalogs(Path(args.out + "-catalog"), args.catalog_objects)
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

    stats = generate(recipe, args.out, workers=0, show_progress=False, on_progress=on_progress,
                     render=not args.no_render)  # fmt: skip
    scene = stats.get("scene") or {}
    summary = {"samples": samples, "episodes_written": stats["episodes_written"], "attempts": stats["attempts"],
               "failures": stats["failures"], "preset": args.preset, "render": not args.no_render,
               "catalog_objects": args.catalog_objects,
               "distinct": {k: v for k, v in scene.items() if k.endswith("_distinct")}}  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "samples"}))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


def many_object_catalogs(folder: Path, count: int) -> list[str]:
    """[containers-only copy of the default catalog, a generated catalog of `count` objects] (reused when there)."""
    import yaml

    from dataengine.sim.assets import DEFAULT_CATALOG
    from dataengine.sim.importer.fixtures import write_many_objects

    many = folder / "catalog.yaml"
    if not many.is_file() or len(yaml.safe_load(many.read_text())["objects"]) != count:
        shutil.rmtree(folder, ignore_errors=True)
        write_many_objects(folder, count)
    containers = folder / "containers.yaml"
    containers.write_text(yaml.safe_dump({"objects": [], "containers": yaml.safe_load(DEFAULT_CATALOG.read_text())
                                          ["containers"]}))  # fmt: skip
    return [str(containers), str(many)]


if __name__ == "__main__":
    main()
