"""Mesh import throughput: meshes per core-minute for ~10K-triangle textured meshes, CoACD against the convex-hull
fallback in the same run (their ratio is CoACD's cost), and CoACD's share of the import's CPU time.

The meshes are procedural (no downloads): concave solids of revolution with random bulbs and a UV-mapped texture,
written as OBJ+MTL+PNG. Each method imports them inline into a fresh cache; CPU time counts this process and its
children (CoACD runs in a child process outside Ray workers).

Part 2 (`--episodes N`): generation throughput with imported textured objects (the procedural library written by
`dataengine sim assets fixtures`, plus the default catalog's containers) as a ratio of the primitive catalog, same
recipe (the demo's: fast preset, 2 cameras, 224x224), same run, inline: CPU seconds per validated episode.

    python bench/asset_import.py --meshes 6 --episodes 8
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def write_meshes(folder: Path, count: int, sections: int = 100, rings: int = 50) -> int:
    """`count` textured concave meshes of about 2 x sections x rings triangles; returns triangles per mesh."""
    import trimesh

    from dataengine.sim.importer.fixtures import _cylinder_uv, _label_texture, _textured, _write_obj

    faces = 0
    for i in range(count):
        rng = np.random.default_rng(i)
        z = np.linspace(0, 0.12, rings)
        radius = sum(
            r * np.exp(-(((z - c) / w) ** 2)) for c, r, w in rng.uniform([0.01, 0.01, 0.01], [0.11, 0.03, 0.03], (3, 3))
        )
        radius = np.clip(radius, 0.004, None)
        radius[0] = radius[-1] = 0.0
        mesh = trimesh.creation.revolve(np.column_stack([radius, z]), sections=sections)
        texture = _label_texture(256, [tuple(int(c) for c in rng.integers(0, 255, 3)) for _ in range(3)], seed=i)
        _write_obj(trimesh, _textured(trimesh, mesh, _cylinder_uv, texture), folder / f"toy/toy_{i:03d}.obj")
        faces = len(mesh.faces)
    return faces


def cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(src: Path, work: Path, collision: str) -> dict:
    import os

    from dataengine.sim.importer.job import ImportOptions, import_assets

    os.environ["DATAENGINE_CACHE_DIR"] = str(work / f"cache-{collision}")
    cpu0, wall0 = cpu_s(), time.perf_counter()
    opts = ImportOptions(collision=collision, grasp_trials=0)  # the import alone (the grasp check is physics)
    report = import_assets(src, work / f"catalog-{collision}", opts, workers=0, show_progress=False)
    cpu = cpu_s() - cpu0
    return {
        "collision": collision,
        "imported": report["imported"],
        "quarantined": report["quarantine_reasons"],
        "cpu_s": round(cpu, 2),
        "wall_s": round(time.perf_counter() - wall0, 2),
        "meshes_per_core_minute": round((report["imported"] + report["quarantined"]) / cpu * 60, 2),
        "collision_wall_s": report["collision_seconds"],
    }


def generation(work: Path, episodes: int) -> dict:
    import os

    import yaml

    from dataengine.sim.assets import DEFAULT_CATALOG
    from dataengine.sim.generate import generate
    from dataengine.sim.importer.fixtures import write_mesh_library
    from dataengine.sim.importer.job import ImportOptions, import_assets
    from dataengine.sim.recipe import load_recipe

    os.environ["DATAENGINE_CACHE_DIR"] = str(work / "cache-generation")
    write_mesh_library(work / "library", mjcf=False)  # the library the recorded figures measured
    import_assets(work / "library", work / "library-catalog", ImportOptions(grasp_trials=0), workers=0,
                  show_progress=False)  # fmt: skip
    containers = yaml.safe_load(DEFAULT_CATALOG.read_text())["containers"]
    (work / "containers.yaml").write_text(yaml.safe_dump({"objects": [], "containers": containers}))
    demo = REPO / "recipes/sim/pick_place_demo.yaml"
    data = yaml.safe_load(demo.read_text())
    data["catalogs"] = [str(work / "containers.yaml"), str(work / "library-catalog" / "catalog.yaml")]
    (work / "imported.yaml").write_text(yaml.safe_dump(data))
    rows = {}
    for name, path in (("primitives", demo), ("imported", work / "imported.yaml")):
        recipe = load_recipe(path, episodes=episodes)
        cpu0 = cpu_s()
        stats = generate(recipe, work / f"gen-{name}", workers=0, show_progress=False)
        cpu = cpu_s() - cpu0
        n = stats["episodes_written"]
        rows[name] = {"episodes": n, "attempts": stats["attempts"], "cpu_s_per_episode": round(cpu / n, 3)}
    ratio = rows["primitives"]["cpu_s_per_episode"] / rows["imported"]["cpu_s_per_episode"]
    return {**rows, "imported_throughput_over_primitives": round(ratio, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", type=int, default=6)
    parser.add_argument("--episodes", type=int, default=0, help="also compare generation throughput (part 2)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="asset_import_bench_"))
    try:
        triangles = write_meshes(work / "src", args.meshes)
        hull = run(work / "src", work, "convex-hull")
        coacd = run(work / "src", work, "coacd")
        result = {
            "date": time.strftime("%Y-%m-%d"),
            "meshes": args.meshes,
            "triangles_per_mesh": triangles,
            "convex_hull": hull,
            "coacd": coacd,
            "coacd_over_hull_cpu": round(coacd["cpu_s"] / hull["cpu_s"], 2),
            "coacd_share_of_cpu": round(1 - hull["cpu_s"] / coacd["cpu_s"], 3),
        }
        print(json.dumps(result, indent=1), flush=True)
        if args.episodes:
            print(json.dumps({"generation": generation(work, args.episodes)}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
