"""The two-stage loop on shards made by the engine (grounding shards from the shard writer, episodes from the
MuJoCo generator): losses go down, resume after a crash equals an uninterrupted run, the tiny random Qwen2.5-VL
trains a step offline through the same collator, evaluations, the CLI's two invocations and missing-input help."""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from dataengine.cli.app import app  # noqa: E402
from dataengine.formats import SPATIAL_PROMPT_PAPER, get_style  # noqa: E402
from dataengine.train import Trainer, TrainRecipe, train  # noqa: E402
from dataengine.train.data import build_data  # noqa: E402
from dataengine.train.models.tiny_vlm import ByteChatEncoder  # noqa: E402
from tests.fixtures.train_data import (  # noqa: E402
    SIM_DEMO_RECIPE,
    TINY_QWEN,
    make_episode_shards,
    make_grounding_shards,
    tiny_recipe,
)


@pytest.fixture(autouse=True, scope="module")
def restore_threads():
    """The tiny recipe sets cpu_threads=1 (torch-global): give other areas' tests their thread count back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    make_grounding_shards(root / "corpus", samples=40, per_shard=5)
    make_episode_shards(root / "sim", episodes=2, size=64)
    return root


def recipe_of(**overrides) -> TrainRecipe:
    return TrainRecipe.model_validate(tiny_recipe(**overrides))


def read_csv(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_both_stages_train_and_the_loss_goes_down(data_root, tmp_path):
    result = train(recipe_of(), tmp_path / "run", data_root=data_root)
    for stage in ("stage1", "stage2"):
        losses = result.losses[stage]
        assert len(losses) == 12 and all(math.isfinite(v) for v in losses)
        assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, (stage, losses)
    assert result.step == 24 and result.checkpoint.name == "step-00000024"
    rows = read_csv(tmp_path / "run" / "logs" / "train.csv")
    assert [int(r["step"]) for r in rows] == list(range(2, 25, 2))
    assert all(r["loss_action"] for r in rows if r["stage"] == "2")
    diag = read_csv(tmp_path / "run" / "logs" / "gradient_conflict.csv")
    assert [int(r["step"]) for r in diag] == list(range(14, 25, 2))
    assert all(-1 <= float(r["grad_cos"]) <= 1 and 0 <= float(r["subspace_sim"]) <= 1 for r in diag)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["grounding_samples"] > 0 and 0 <= metrics["grounding_accuracy"] <= 1
    stats = json.loads((data_root / "sim" / "norm_stats.json").read_text())
    assert stats["episodes"] == 2 and set(stats["arrays"]) >= {"action_delta_joints", "state_joints"}


class Crash(RuntimeError):
    pass


def test_resume_after_a_crash_equals_an_uninterrupted_run(data_root, tmp_path, monkeypatch):
    overrides = {"stage1.steps": 4, "stage2.steps": 4, "checkpoint_every": 2}
    straight = Trainer(recipe_of(**overrides), tmp_path / "a", data_root)
    full = straight.run()
    crashing = Trainer(recipe_of(**overrides), tmp_path / "b", data_root)
    calls = {"n": 0}
    original = crashing.policy.action_losses

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # stage 2, step 3: after the checkpoint at global step 6
            raise Crash("simulated crash")
        return original(*args, **kwargs)

    monkeypatch.setattr(crashing.policy, "action_losses", flaky)
    with pytest.raises(Crash):
        crashing.run()
    resumed = Trainer(recipe_of(**overrides), tmp_path / "b", data_root).run()
    assert resumed.resumed_from == 6
    assert resumed.losses["stage2"] == full.losses["stage2"][2:]
    a, b = straight.policy.state_dict(), torch.load(resumed.checkpoint / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [int(r["step"]) for r in read_csv(tmp_path / "b" / "logs" / "train.csv")] == [2, 4, 6, 8]


def test_tiny_random_qwen25vl_trains_a_step_offline(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = TrainRecipe.model_validate(
        tiny_recipe(
            **{"model.backbone": "qwen2.5-vl", "model.qwen": TINY_QWEN["qwen"], "stage1.steps": 1, "stage2.steps": 1}
        )
    )
    result = train(recipe, tmp_path / "qwen", data_root=data_root, evaluate=False)
    assert math.isfinite(result.losses["stage1"][0]) and math.isfinite(result.losses["stage2"][0])
    assert (result.checkpoint / "model.pt").exists()


def test_samples_use_the_formats_and_the_spatial_prompt(data_root, tmp_path):
    recipe = recipe_of(**{"data.spatial_prompt": "paper"})
    data = build_data(recipe, ByteChatEncoder(32, 192), data_root, tmp_path, True, True)
    batch = next(iter(data.actions))
    assert all(p.endswith(SPATIAL_PROMPT_PAPER) for p in batch["meta"]["prompt"])
    assert batch["actions"].shape == (8, 8, 8) and batch["state"].shape == (8, 8)
    assert batch["actions"].abs().max() <= 1.0 + 1e-6
    style = get_style("internvla-m1")
    grounding = next(iter(data.grounding))
    for answer in grounding["meta"]["answer"]:
        assert style.parse("box", answer, 320, 240) or style.parse("point", answer, 320, 240)


def write_recipe(tmp_path, **overrides):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(**overrides)))
    return path


def test_cli_train_then_eval(data_root, tmp_path):
    recipe = write_recipe(tmp_path, **{"eval.sim_recipe": str(SIM_DEMO_RECIPE)})
    runner = CliRunner()
    run_dir = tmp_path / "cli_run"
    args = ["train", str(recipe), "--out", str(run_dir), "--data", str(data_root), "--steps", "2", "--device", "cpu"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "stage2: 2 steps" in out.output and (run_dir / "checkpoints" / "step-00000004").is_dir()
    out = runner.invoke(app, ["train", "eval", str(run_dir), "--samples", "2", "--episodes", "1", "--sim-split", "all"])
    assert out.exit_code == 0, out.output
    metrics = json.loads((run_dir / "checkpoints" / "step-00000004" / "metrics.json").read_text())
    assert metrics["grounding_samples"] == 2 and metrics["sim_episodes"] == 1
    assert 0 <= metrics["sim_success_rate"] <= 1 and sum(metrics["sim_outcomes"].values()) == 1
    assert metrics["sim_split"] == "all" and metrics["sim_seed"] == 7 + 1_000_000


def test_missing_inputs_name_the_command_that_makes_them(tmp_path):
    from dataengine.cli.app import main

    (tmp_path / "empty").mkdir()
    recipe = write_recipe(tmp_path)
    out = CliRunner().invoke(
        app, ["train", str(recipe), "--out", str(tmp_path / "r"), "--data", str(tmp_path / "empty")]
    )
    assert out.exit_code != 0
    assert "dataengine demo --out" in str(out.exception)
    del main


def test_two_process_data_parallel_run(data_root, tmp_path):
    """torchrun with 2 CPU processes (gloo): each rank streams its own shards, gradients are averaged, rank 0
    checkpoints both ranks' loader positions; the run then resumes with 2 processes."""
    import subprocess
    import sys

    recipe = write_recipe(tmp_path, **{"checkpoint_every": 2})
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "dataengine.cli.app", "train", str(recipe), "--out", str(out), "--data", str(data_root),
        "--device", "cpu", "--no-eval",
    ]  # fmt: skip
    for steps in ("2", "3"):  # 2 + 2 steps, then resumed at global step 4 for stage 2's third step
        proc = subprocess.run([*cmd, "--steps", steps], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    state = json.loads((out / "checkpoints" / "step-00000005" / "state.json").read_text())
    assert state["world_size"] == 2 and len(state["loaders_by_rank"]) == 2
    slots = [set(r["grounding"]["positions"]) for r in state["loaders_by_rank"]]
    assert slots == [{"0"}, {"1"}]
    by_rank = state["loaders_by_rank"]
    shards = [set(by_rank[rank]["actions"]["positions"][str(rank)]["consumed_per_shard"]) for rank in (0, 1)]
    assert not shards[0] & shards[1]  # two episode shards, one per rank
    rows = read_csv(out / "logs" / "train.csv")
    assert [int(r["step"]) for r in rows] == [2, 4, 5]


def test_gradient_averaging_across_ranks(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_average_worker, args=(2, str(tmp_path / "rendezvous")), nprocs=2, join=True)


def _average_worker(rank: int, world: int, rendezvous: str) -> None:
    import torch.distributed as dist

    from dataengine.train.distributed import DistInfo, average_gradients

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
        a.grad = torch.full((3,), float(rank + 1))  # rank 0: 1, rank 1: 2 -> mean 1.5
        if rank == 0:
            b.grad = torch.full((2,), 4.0)  # rank 1 has no gradient for b: counts as 0 -> mean 2
        average_gradients([a, b], DistInfo(rank, world, 0))
        assert torch.equal(a.grad, torch.full((3,), 1.5)) and torch.equal(b.grad, torch.full((2,), 2.0))
    finally:
        dist.destroy_process_group()
