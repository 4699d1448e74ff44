"""Benchmark: closed-loop success of the tiny policy trained on CPU on generated demos, against the same policy
untrained (random initialization) on the same held-out layouts, in the same run.

    python bench/train_closed_loop.py --work /tmp/bench_closed_loop [--episodes 40] [--steps1 100] [--steps2 1500]
        [--eval-episodes 20] [--size 96]

1. generates `--episodes` validated demos with the demo sim recipe (front camera, size x size, fast preset) and a
   small drawn-scene grounding corpus (the engine's shard writer);
2. trains the tiny dual-system policy (recipes/train/demo.yaml's model, image_size = size) for `--steps1` spatial
   and `--steps2` co-training steps on one CPU thread, timing it;
3. evaluates closed loop (the evaluation `dataengine train eval RUN --sim ... --episodes K` runs: held-out layouts
   with seed + 1e6, each first proven feasible by the scripted expert) for the step-0 policy and the trained one.
Prints the figures and a JSON line. Honest numbers: the tiny policy is a reference, not a competitive VLA.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def sim_recipe(work: Path, episodes: int, size: int) -> Path:
    raw = yaml.safe_load((REPO / "recipes/sim/pick_place_demo.yaml").read_text())
    raw.update(episodes=episodes, episodes_per_shard=4)
    raw["render"].update(cameras=["front"], width=size, height=size)
    path = work / "sim_recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_closed_loop"))
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--steps1", type=int, default=100)
    ap.add_argument("--steps2", type=int, default=1500)
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=150)
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")

    from dataengine.sim.generate import generate
    from dataengine.sim.spec import load_recipe as load_sim
    from dataengine.train import Trainer, load_recipe
    from dataengine.train.evaluate import run_evaluations
    from tests.fixtures.train_data import make_grounding_shards

    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "data"
    recipe_path = sim_recipe(args.work, args.episodes, args.size)
    t = time.perf_counter()
    stats = generate(load_sim(recipe_path), data / "sim", workers=0, resume=True, show_progress=False)
    gen_s = time.perf_counter() - t
    if not (data / "corpus").exists():
        make_grounding_shards(data / "corpus", samples=400, per_shard=50)
    overrides = {
        "data.image_size": args.size,
        "data.camera": "front",
        "stage1.steps": args.steps1,
        "stage2.steps": args.steps2,
        "checkpoint_every": max(args.steps1, args.steps2),
        "eval.sim_episodes": 0,
        "eval.sim_max_steps": args.max_steps,
        "eval.sim_recipe": str(recipe_path),
    }
    recipe = load_recipe(REPO / "recipes/train/demo.yaml", overrides)
    shutil.rmtree(args.work / "run", ignore_errors=True)
    trainer = Trainer(recipe, args.work / "run", data, "cpu")

    def closed_loop(name: str) -> dict:
        t = time.perf_counter()
        m = run_evaluations(
            trainer.policy, trainer.encoder, recipe, trainer.device, grounding_entries=None,
            normalizer=trainer.data.normalizer, sim_recipe=str(recipe_path), sim_episodes=args.eval_episodes,
        )  # fmt: skip
        print(f"{name}: success {m['sim_success_rate']:.3f} over {m['sim_episodes']} episodes {m['sim_outcomes']}")
        return {
            "success_rate": m["sim_success_rate"],
            "lift_rate": m["sim_lift_rate"],
            "mean_min_tool_to_pick_m": round(m["sim_mean_min_tool_to_pick_m"], 4),
            "episodes": m["sim_episodes"],
            "outcomes": m["sim_outcomes"],
            "eval_wall_s": round(time.perf_counter() - t, 1),
        }

    untrained = closed_loop("untrained (step 0)")
    cpu0, t = cpu_s(), time.perf_counter()
    run = trainer.run()
    train_wall, train_cpu = time.perf_counter() - t, cpu_s() - cpu0
    report = {
        "demos": stats["episodes_written"],
        "demo_generation_s": round(gen_s, 1),
        "image_size": args.size,
        "steps": {"stage1": args.steps1, "stage2": args.steps2},
        "train_wall_s": round(train_wall, 1),
        "train_cpu_s": round(train_cpu, 1),
        "final_losses": {k: round(sum(v[-20:]) / len(v[-20:]), 4) for k, v in run.losses.items() if v},
        "untrained": untrained,
        "trained": closed_loop("trained"),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
