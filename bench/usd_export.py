"""USD export cost per scene, against compiling the same scene for MuJoCo (the baseline) in the same run.

For N sampled layouts of a recipe: (a) `build_stage` + USDA text + write, (b) `build_mjcf` + `MjModel` compile
(what `MujocoBackend.load` does before any physics). Reports CPU milliseconds per scene (CPU time, so that other
processes on a shared machine do not skew it), the ratio a / b, and the CPU cost per scene of the
physics-validated export (`dataengine sim export-usd --validate`, the MuJoCo search `sim generate` runs).

    python bench/usd_export.py --layouts 40 --validated 6
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from dataengine.sim.assets import load_catalog
from dataengine.sim.backends.mjcf import build_mjcf
from dataengine.sim.mujoco_env import import_mujoco
from dataengine.sim.recipe import load_recipe
from dataengine.sim.usd.export import episode_layout, export_recipe_usd, stage_text, write_text_atomic
from dataengine.sim.usd.stage import build_stage

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(REPO / "recipes/sim/pick_place_demo.yaml"))
    parser.add_argument("--layouts", type=int, default=40)
    parser.add_argument("--validated", type=int, default=6, help="episodes for the physics-validated export")
    args = parser.parse_args()
    mj = import_mujoco()
    recipe = load_recipe(args.recipe)
    catalog = load_catalog()
    layouts = [episode_layout(recipe, catalog, i)[0] for i in range(args.layouts)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        build_stage(layouts[0], catalog_dir=catalog.base_dir)  # warm caches (meshes, plugins)
        mj.MjModel.from_xml_string(build_mjcf(layouts[0], catalog_dir=catalog.base_dir))
        t0 = time.process_time()
        sizes = []
        for i, layout in enumerate(layouts):
            text = stage_text(build_stage(layout, catalog_dir=catalog.base_dir))
            write_text_atomic(out / f"{i}.usda", text)
            sizes.append(len(text))
        usd_s = time.process_time() - t0
        t0 = time.process_time()
        for layout in layouts:
            mj.MjModel.from_xml_string(build_mjcf(layout, catalog_dir=catalog.base_dir))
        mjcf_s = time.process_time() - t0
        t0 = time.process_time()
        export_recipe_usd(recipe, out / "validated", episodes=args.validated, validate=True)
        validated_s = time.process_time() - t0
    n = len(layouts)
    print(
        json.dumps(
            {
                "layouts": n,
                "usd_cpu_ms_per_scene": round(1000 * usd_s / n, 2),
                "mjcf_compile_cpu_ms_per_scene": round(1000 * mjcf_s / n, 2),
                "usd_over_mjcf": round(usd_s / mjcf_s, 2),
                "usda_kb_per_scene": round(sum(sizes) / n / 1024, 1),
                "validated_export_cpu_s_per_scene": round(validated_s / args.validated, 3),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
