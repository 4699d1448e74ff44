"""Checkpoints: `OUT/checkpoints/step-NNNNNNNN/` with the model, the optimizer, the trainer state (step, stage,
loader positions), the resolved recipe and the normalization statistics, so a checkpoint evaluates on its own.
Written to a temporary folder and renamed; the oldest are pruned beyond `keep`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from dataengine.errors import InputError
from dataengine.train.tokenizer import LEGACY_BYTE_VOCAB

MODEL_FILE, OPTIM_FILE, STATE_FILE = "model.pt", "optimizer.pt", "state.json"
RECIPE_FILE, STATS_FILE = "recipe.yaml", "norm_stats.json"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:08d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if p.is_dir() and (p / STATE_FILE).exists())


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler,
    state: dict,
    recipe_yaml: str,
    stats: dict | None,
    keep: int,
) -> Path:
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / MODEL_FILE)
    if optimizer is not None:
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / OPTIM_FILE)
    (tmp / RECIPE_FILE).write_text(recipe_yaml, encoding="utf-8")
    if stats is not None:
        (tmp / STATS_FILE).write_text(json.dumps(stats, sort_keys=True), encoding="utf-8")
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its latest checkpoint)."""
    path = Path(path)
    if (path / STATE_FILE).exists():
        return path
    found = list_checkpoints(path)
    if not found:
        raise InputError(f"{path} is neither a checkpoint (no {STATE_FILE}) nor a run folder with checkpoints")
    return found[-1]


def read_state(ckpt: Path) -> dict:
    return json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8"))


def load_model_weights(ckpt: Path, model: torch.nn.Module, device: torch.device) -> None:
    state = torch.load(ckpt / MODEL_FILE, map_location=device, weights_only=True)
    embed = state.get("backbone.token_embed.weight")
    if embed is not None and embed.shape[0] == LEGACY_BYTE_VOCAB:
        raise InputError(
            f"{ckpt} was trained with the tiny model's byte-only tokenizer (260 tokens); this version reads numbers "
            "as single tokens (dataengine/train/tokenizer.py): retrain it with `dataengine train RECIPE --out NEW_DIR`"
        )
    model.load_state_dict(state)


def load_optimizer(ckpt: Path, optimizer, scheduler, device: torch.device) -> bool:
    path = ckpt / OPTIM_FILE
    if not path.exists():
        return False
    data = torch.load(path, map_location=device, weights_only=True)
    optimizer.load_state_dict(data["optimizer"])
    scheduler.load_state_dict(data["scheduler"])
    return True
