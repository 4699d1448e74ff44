"""Benchmark: the learnability ladder (docs/training.md). Each row trains one recipe of recipes/train/ through the
engine's own loop (`dataengine.train.loop.Trainer`) and runs it closed loop on held-out layouts with the engine's
own evaluator (`dataengine.train.eval_sim.evaluate_in_sim`: layouts of the sim recipe drawn with seed + 1e6, each
first solved by the scripted expert), and reports the success rate with its 95% Wilson interval, the failure modes,
and the wall and CPU time of training.

    python bench/train_ladder.py run --recipe recipes/train/state_policy.yaml --data EPISODES --eval 100 \\
        [--set data.actions=joint_delta ...] [--name NAME] [--json OUT.jsonl]
    python bench/train_ladder.py grid state --data EPISODES --eval 100 --json OUT.jsonl   # the state-policy diagnosis
    python bench/train_ladder.py plot OUT.jsonl --out docs/figures/vision_curve.png        # success vs demos

`--set key=value` overrides a recipe key (YAML value). Every row is appended to `--json` as one JSON line, with the
exact command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HELD_OUT_OFFSET = 1_000_000


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = yaml.safe_load(value)
    return out


def run_one(
    recipe: Path, data: Path, overrides: dict, eval_episodes: int, work: Path, name: str, sim: Path | None,
    resume: bool = False, reuse_perception: Path | None = None,
):  # fmt: skip
    """Train `recipe` (with `overrides`) on the episodes in `data`, evaluate closed loop; returns the row.

    `resume` continues an interrupted run in `work/name` from its last checkpoint (the row's times then cover only
    the resumed part and it says so). `reuse_perception` (rung 2b): the run folder of an earlier run whose
    first-frame network (and frames) this run takes instead of training its own (the row says so; its training
    times then cover the state policy only)."""
    import shutil

    from dataengine.train import load_recipe
    from dataengine.train.eval_sim import evaluate_in_sim
    from dataengine.train.loop import Trainer

    overrides = {"data.episodes": str(data.resolve()), **overrides}
    r = load_recipe(recipe, overrides)
    run_dir = work / name
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    if reuse_perception is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        for file in ("perception.pt", "first_frames.npz"):
            shutil.copyfile(reuse_perception / file, run_dir / file)
    cpu0, t0 = cpu_s(), time.perf_counter()
    trainer = Trainer(r, run_dir, None, r.device)
    result = trainer.run(resume=resume)
    train_wall, train_cpu = time.perf_counter() - t0, cpu_s() - cpu0
    d, e = r.data, r.eval
    sim_recipe = sim or data / "recipe.resolved.json"
    t1 = time.perf_counter()
    metrics = evaluate_in_sim(
        trainer.policy, trainer.encoder, trainer.data.normalizer, str(sim_recipe), episodes=eval_episodes,
        device=trainer.device, cameras=d.policy_cameras(), image_size=d.image_size, spatial_prompt=d.spatial_prompt,
        seed_offset=HELD_OUT_OFFSET, max_steps=e.sim_max_steps, execute_steps=e.execute_steps, seed=r.seed,
    )  # fmt: skip
    losses = result.losses.get("stage2") or []
    perception = {}
    if (run_dir / "perception.pt").exists():  # rung 2b: the first-frame network's frames and times
        import torch

        perception = {"perception": torch.load(run_dir / "perception.pt", weights_only=True).get("summary")}
        if (run_dir / "joint_tuning.pt").exists():  # perception.joint: both networks tuned together
            perception["joint_tuning"] = torch.load(run_dir / "joint_tuning.pt", weights_only=True)["summary"]
    return {
        "name": name,
        "recipe": str(recipe),
        "overrides": overrides,
        "train_episodes": trainer.data.stats["episodes"],
        "steps": result.step,
        "train_wall_s": round(train_wall, 1),
        "train_cpu_s": round(train_cpu, 1),
        "resumed": resume,
        "final_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 5) if losses else None,
        "eval_wall_s": round(time.perf_counter() - t1, 1),
        **{k.removeprefix("sim_"): v for k, v in metrics.items() if k != "sim_recipe"},
        **perception,
        **({"perception_reused_from": str(reuse_perception)} if reuse_perception else {}),
    }


def emit(row: dict, json_path: Path | None) -> None:
    low, high = row["success_ci95"]
    print(
        f"{row['name']}: {row['successes']}/{row['episodes']} = {row['success_rate']:.0%} "
        f"(95% CI {low:.0%}-{high:.0%}), train {row['train_wall_s']:.0f} s wall / {row['train_cpu_s']:.0f} s CPU, "
        f"failures {row['failure_modes']}",
        flush=True,
    )
    if json_path is not None:
        row = {**row, "command": " ".join(shlex.quote(a) for a in sys.argv), "date": time.strftime("%Y-%m-%d")}
        with json_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")


STATE_RECIPE = REPO / "recipes/train/state_policy.yaml"
# The state-policy diagnosis: one change from the recipe at a time.
STATE_GRID = {
    "state/ee_relative": {},
    "state/joint_delta": {"data.actions": "joint_delta"},
    "state/joint_relative": {"data.actions": "joint_relative"},
    "state/joint_absolute": {"data.actions": "joint_absolute"},
    "state/standard_norm": {"data.action_norm": "standard", "data.state_norm": "standard"},
    "state/execute_16": {"eval.execute_steps": 16},
    "state/execute_1": {"eval.execute_steps": 1},
    "state/chunk_1": {"data.chunk_size": 1, "eval.execute_steps": 1},
    "state/proprio_ee_only": {"data.state": "proprio_ee"},
    "state/steps_1000": {"stage2.steps": 1000},
    "state/demos_50": {"data.max_episodes": 50},
    "state/demos_100": {"data.max_episodes": 100},
    "state/demos_400": {"data.max_episodes": 400},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    one = sub.add_parser("run")
    one.add_argument("--recipe", type=Path, required=True)
    one.add_argument("--name", default=None)
    one.add_argument("--resume", action="store_true", help="continue the run in --work/NAME from its checkpoint")
    one.add_argument("--reuse-perception", type=Path, default=None, help="rung 2b: take this run folder's network")
    grid = sub.add_parser("grid")
    grid.add_argument("which", choices=["state"])
    grid.add_argument("--only", default=None, help="comma-separated row names")
    for p in (one, grid):
        p.add_argument("--data", type=Path, required=True, help="episode shards (with recipe.resolved.json)")
        p.add_argument("--sim", type=Path, default=None, help="sim recipe of the held-out layouts")
        p.add_argument("--eval", type=int, default=100)
        p.add_argument("--set", action="append", default=[], help="recipe override key=value")
        p.add_argument("--work", type=Path, default=Path("/tmp/train_ladder"))
        p.add_argument("--json", type=Path, default=None)
    plot = sub.add_parser("plot")
    plot.add_argument("rows", type=Path)
    plot.add_argument("--out", type=Path, required=True)
    plot.add_argument("--prefix", default="vision/")
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    if args.cmd == "plot":
        return plot_curve(args.rows, args.out, args.prefix)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.cmd == "run":
        name = args.name or args.recipe.stem
        row = run_one(args.recipe, args.data, parse_sets(args.set), args.eval, args.work, name, args.sim, args.resume,
                      args.reuse_perception)  # fmt: skip
        emit(row, args.json)
        return None
    rows = STATE_GRID
    only = set(args.only.split(",")) if args.only else None
    for name, overrides in rows.items():
        if only and name not in only:
            continue
        row = run_one(STATE_RECIPE, args.data, {**parse_sets(args.set), **overrides}, args.eval, args.work,
                      name.replace("/", "_"), args.sim)  # fmt: skip
        emit({**row, "name": name}, args.json)
    return None


def plot_curve(rows_path: Path, out: Path, prefix: str) -> None:
    """Success rate (with its 95% interval) against the number of training demos, for rows named PREFIX*."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    rows = sorted((r for r in rows if r["name"].startswith(prefix)), key=lambda r: r["train_episodes"])
    if not rows:
        raise SystemExit(f"no rows named {prefix}* in {rows_path}")
    x = [r["train_episodes"] for r in rows]
    y = [r["success_rate"] for r in rows]
    low = [r["success_rate"] - r["success_ci95"][0] for r in rows]
    high = [r["success_ci95"][1] - r["success_rate"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=4)
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [str(v) for v in x])
    ax.set_ylim(0, 1)
    ax.set_xlabel("training demonstrations")
    ax.set_ylabel(f"closed-loop success ({rows[0]['episodes']} held-out layouts)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
