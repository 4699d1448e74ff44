"""Benchmark: closed-loop success of the tiny policy trained on CPU on generated demos, on the training layouts
(memorization) and on held-out layouts, against the same policy untrained and against the demonstrations' own
actions, all in the same run.

    python bench/train_closed_loop.py --work /tmp/bench_closed_loop [--episodes 40] [--size 64] [--steps1 100]
        [--steps2 1000] [--eval-episodes 20] [--train-eval-episodes 10] [--execute-steps 8]
        [--spatial-prompt upstream] [--spatial-weight 0.1]

1. generates `--episodes` validated demos with the demo sim recipe (seed 7; front camera, size x size, fast
   preset), a few demos of the held-out layouts (seed 7 + 1e6, the evaluation's layouts; only for the open-loop
   error, never trained on) and a small drawn-scene grounding corpus;
2. replays the recorded actions of the first `--train-eval-episodes` demos through the evaluation
   (`RecordedActionsPolicy`: normalization round trip, measured joints + delta, gripper targets, chunk execution):
   the ceiling of the execution path, 100 % when it is correct;
3. trains the tiny dual-system policy (recipes/train/demo.yaml's model, image_size = size) for `--steps1` spatial
   and `--steps2` co-training steps on one CPU thread, timing it;
4. evaluates the step-0 and the trained policy closed loop (the evaluation `dataengine train eval` runs) on the
   first `--train-eval-episodes` TRAINING layouts (seed offset 0: memorization) and on `--eval-episodes` HELD-OUT
   layouts (seed offset 1e6, each first proven feasible by the scripted expert), plus the open-loop error of the
   predicted chunks on recorded frames of training and held-out demos.
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

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HELD_OUT_OFFSET = 1_000_000  # the evaluation's default `sim_seed_offset`


def sim_recipe(path: Path, episodes: int, size: int, seed_offset: int = 0) -> Path:
    raw = yaml.safe_load((REPO / "recipes/sim/pick_place_demo.yaml").read_text())
    raw.update(episodes=episodes, episodes_per_shard=4, seed=raw["seed"] + seed_offset)
    raw["render"].update(cameras=["front"], width=size, height=size)
    path.write_text(yaml.safe_dump(raw))
    return path


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def open_loop_error(policy, encoder, normalizer, shard_dir: Path, recipe, episodes: int, every: int = 8) -> dict:
    """Predicted chunks on recorded frames of the first `episodes` demos (base instruction) against the recorded
    actions, de-normalized: mean absolute joint-delta error over the executed part of the chunk, against the mean
    absolute recorded delta (what predicting "stand still" would score), and the gripper command mismatch rate."""
    import torch

    from dataengine.shards import iter_samples, list_shards
    from dataengine.train.action_data import ActionUnits
    from dataengine.train.collate import Collator

    d, k = recipe.data, recipe.eval.execute_steps
    units = ActionUnits(
        normalizer, encoder.prepare_image, image_size=d.image_size, chunk_size=d.chunk_size, cameras=d.policy_cameras(),
        spatial_prompt=d.spatial_prompt, instruction_kinds=("base",), seed=recipe.seed,
    )  # fmt: skip
    collate, err, size, grip = Collator(encoder), [], [], []
    was_training = policy.training
    policy.eval()
    samples = (s for shard in list_shards(shard_dir) for s in iter_samples(shard))
    for _, sample in zip(range(episodes), samples, strict=False):
        ep = units.prepare(sample)
        for t in range(0, ep.record.num_steps, every):
            gen = torch.Generator().manual_seed(t)
            chunk = policy.predict_actions(collate([units.item(ep, t, 0)]), gen)[0].float().numpy()
            deltas, close = normalizer.unnormalize_actions(chunk)
            ref, ref_close = normalizer.unnormalize_actions(ep.actions[t])
            err.append(np.abs(deltas[:k] - ref[:k]).mean())
            size.append(np.abs(ref[:k]).mean())
            grip.append(np.mean(close[:k] != ref_close[:k]))
    policy.train(was_training)
    return {
        "joint_delta_abs_err_rad": round(float(np.mean(err)), 5),
        "joint_delta_abs_rad": round(float(np.mean(size)), 5),
        "gripper_mismatch": round(float(np.mean(grip)), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_closed_loop"))
    ap.add_argument("--episodes", type=int, default=40, help="training demos")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps1", type=int, default=100)
    ap.add_argument("--steps2", type=int, default=1000)
    ap.add_argument("--eval-episodes", type=int, default=20, help="held-out layouts")
    ap.add_argument("--train-eval-episodes", type=int, default=10, help="training layouts evaluated (memorization)")
    ap.add_argument("--open-loop-episodes", type=int, default=4, help="demos of each kind, open-loop error")
    ap.add_argument("--max-steps", type=int, default=150)
    ap.add_argument("--execute-steps", type=int, default=8, help="actions executed per predicted chunk of 16")
    ap.add_argument("--spatial-prompt", default="upstream", choices=["upstream", "paper", "none"])
    ap.add_argument("--spatial-weight", type=float, default=0.1, help="stage-2 spatial loss weight (0: action only)")
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")

    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe as load_sim
    from dataengine.train import Trainer, load_recipe
    from dataengine.train.eval_sim import evaluate_in_sim
    from dataengine.train.replay_policy import RecordedActionsPolicy, recorded_actions
    from tests.fixtures.train_data import make_grounding_shards

    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "data"
    train_sim = sim_recipe(args.work / "sim_recipe.yaml", args.episodes, args.size)
    held_sim = sim_recipe(args.work / "sim_recipe_held_out.yaml", args.open_loop_episodes, args.size, HELD_OUT_OFFSET)
    t = time.perf_counter()
    stats = generate(load_sim(train_sim), data / "sim", workers=0, resume=True, show_progress=False)
    gen_s = time.perf_counter() - t
    generate(load_sim(held_sim), args.work / "held_out_sim", workers=0, resume=True, show_progress=False)
    uses_grounding = args.steps1 > 0 or args.spatial_weight > 0
    if uses_grounding and not (data / "corpus").exists():
        make_grounding_shards(data / "corpus", samples=400, per_shard=50)
    overrides = {
        "data.image_size": args.size,
        "data.camera": "front",
        "data.spatial_prompt": args.spatial_prompt,
        "stage1.steps": args.steps1,
        "stage2.steps": args.steps2,
        "stage2.spatial_loss_weight": args.spatial_weight,
        "checkpoint_every": max(args.steps1, args.steps2),
        "eval.sim_episodes": 0,
        "eval.sim_max_steps": args.max_steps,
        "eval.execute_steps": args.execute_steps,
        "eval.sim_recipe": str(train_sim),
    }
    if not uses_grounding:
        overrides["data.grounding"] = None
    recipe = load_recipe(REPO / "recipes/train/demo.yaml", overrides)
    shutil.rmtree(args.work / "run", ignore_errors=True)
    trainer = Trainer(recipe, args.work / "run", data, "cpu")
    normalizer = trainer.data.normalizer

    def closed_loop(name: str, policy, layouts: str) -> dict:
        offset, n = (0, args.train_eval_episodes) if layouts == "training" else (HELD_OUT_OFFSET, args.eval_episodes)
        t = time.perf_counter()
        m = evaluate_in_sim(
            policy, trainer.encoder, normalizer, str(train_sim), episodes=n, device=trainer.device,
            camera="front", image_size=args.size, spatial_prompt=args.spatial_prompt, seed_offset=offset,
            max_steps=args.max_steps, execute_steps=args.execute_steps, seed=recipe.seed,
        )  # fmt: skip
        rate, n_done = m["sim_success_rate"], m["sim_episodes"]
        print(f"{name}, {layouts} layouts: success {rate:.3f} over {n_done} {m['sim_outcomes']}", flush=True)
        return {
            "success_rate": m["sim_success_rate"],
            "lift_rate": m["sim_lift_rate"],
            "mean_min_tool_to_pick_m": round(m["sim_mean_min_tool_to_pick_m"], 4),
            "episodes": m["sim_episodes"],
            "outcomes": m["sim_outcomes"],
            "eval_wall_s": round(time.perf_counter() - t, 1),
        }

    demos = recorded_actions(data / "sim", recipe.data.actions, recipe.data.chunk_size)
    replay = RecordedActionsPolicy(
        demos, normalizer, chunk_size=recipe.data.chunk_size, execute_steps=args.execute_steps
    )
    report: dict = {
        "demos": stats["episodes_written"],
        "demo_generation_s": round(gen_s, 1),
        "image_size": args.size,
        "execute_steps": args.execute_steps,
        "spatial_prompt": args.spatial_prompt,
        "steps": {"stage1": args.steps1, "stage2": args.steps2, "spatial_weight": args.spatial_weight},
        "recorded_actions": closed_loop("recorded actions", replay, "training"),
        "untrained": {
            "training_layouts": closed_loop("untrained (step 0)", trainer.policy, "training"),
            "held_out_layouts": closed_loop("untrained (step 0)", trainer.policy, "held-out"),
        },
    }
    cpu0, t = cpu_s(), time.perf_counter()
    run = trainer.run()
    report["train_wall_s"] = round(time.perf_counter() - t, 1)
    report["train_cpu_s"] = round(cpu_s() - cpu0, 1)
    report["final_losses"] = {k: round(sum(v[-20:]) / len(v[-20:]), 4) for k, v in run.losses.items() if v}
    report["trained"] = {
        "training_layouts": closed_loop("trained", trainer.policy, "training"),
        "held_out_layouts": closed_loop("trained", trainer.policy, "held-out"),
        "open_loop_training": open_loop_error(
            trainer.policy, trainer.encoder, normalizer, data / "sim", recipe, args.open_loop_episodes
        ),
        "open_loop_held_out": open_loop_error(
            trainer.policy, trainer.encoder, normalizer, args.work / "held_out_sim", recipe, args.open_loop_episodes
        ),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
