"""The two-stage training loop: (1) spatial pre-training on grounding shards, (2) co-training with
loss = w_action * L_action + w_spatial * L_spatial, one action batch and one grounding batch per step.

Each step of stage 2 back-propagates the two losses separately (as upstream does), which also lets the
gradient-conflict diagnostic read each loss's gradient on the LM. Checkpoints hold the model, optimizer, scheduler
and loader positions; `train` resumes from the latest one. Logs: `OUT/logs/train.csv`,
`OUT/logs/gradient_conflict.csv`, TensorBoard when installed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dataengine.errors import JobStateError
from dataengine.runtime.atomic import atomic_write_bytes
from dataengine.train.checkpoint import (
    checkpoint_dir,
    list_checkpoints,
    load_model_weights,
    load_optimizer,
    read_state,
    save_checkpoint,
)
from dataengine.train.collate import to_device
from dataengine.train.csvlog import CsvLog, NullLog, StepMeter, TensorBoard, log_row
from dataengine.train.data import TrainData, build_data
from dataengine.train.diagnostics import GradientConflict
from dataengine.train.distributed import (
    average_gradients,
    barrier,
    broadcast_parameters,
    gather_objects,
    init_distributed,
)
from dataengine.train.mixture import MixtureLoader
from dataengine.train.models.policy import action_space, build_policy
from dataengine.train.optim import make_optimizer
from dataengine.train.recipe import StageConfig, TrainRecipe, resolve_data_path

JOINT_FILE = "joint_tuning.pt"  # rung 2b tuned jointly: both networks, the summary and the losses
log = logging.getLogger(__name__)

TRAIN_COLUMNS = [
    "step", "stage", "stage_step", "loss", "loss_action", "loss_spatial", "loss_point", "lr_backbone", "lr_heads",
    "grad_norm", "samples_per_s", "elapsed_s",
]  # fmt: skip
DIAG_COLUMNS = [
    "step", "grad_cos", "subspace_sim", "subspace_cos_min_angle", "subspace_cos_max_angle", "subspace_window",
    "grad_norm_spatial", "grad_norm_action",
]  # fmt: skip
RUN_FILE = "run.json"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise JobStateError("--device cuda was asked for but torch sees no CUDA device")
    return torch.device(name)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    losses: dict[str, list[float]] = field(default_factory=dict)  # per stage: loss at every step of this call
    metrics: dict = field(default_factory=dict)
    wall_s: float = 0.0
    resumed_from: int | None = None


class Trainer:
    def __init__(self, recipe: TrainRecipe, run_dir: Path, data_root: Path | None = None, device: str | None = None):
        self.recipe, self.run_dir, self.data_root = recipe, Path(run_dir), data_root
        self.device = resolve_device(device or recipe.device)
        self.dist = init_distributed(self.device.type)
        if self.dist.active and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        if self.device.type == "cpu" and recipe.cpu_threads:
            torch.set_num_threads(recipe.cpu_threads)  # small models run faster on one thread than on two
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._check_run_file()
        torch.manual_seed(recipe.seed)
        space = action_space(recipe.data)
        self.policy, self.encoder = build_policy(recipe.model, space, recipe.data.image_size)
        self.policy.to(self.device)
        broadcast_parameters(self.policy, self.dist)
        r = recipe
        need_grounding = r.stage1.steps > 0 or (r.stage2.steps > 0 and r.stage2.spatial_loss_weight > 0)
        for turn in (True, False):  # rank 0 first: it computes and saves normalization statistics the others read
            if self.dist.main == turn:
                self.data: TrainData = build_data(
                    r, self.encoder, data_root, self.run_dir, need_grounding, r.stage2.steps > 0
                )
            barrier(self.dist)
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else contextlib.nullcontext()
        )

    # --- run bookkeeping -------------------------------------------------------------------------------------
    def _check_run_file(self) -> None:
        path = self.run_dir / RUN_FILE
        fingerprint = self.recipe.fingerprint()
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("fingerprint") != fingerprint:
                raise JobStateError(
                    f"{self.run_dir} holds a run of a different recipe (fingerprint {saved.get('fingerprint')} vs "
                    f"{fingerprint}): use another --out, or delete the folder to start over"
                )
        else:
            path.write_text(json.dumps({"fingerprint": fingerprint, "name": self.recipe.name}, indent=1))
        (self.run_dir / "recipe.yaml").write_text(self.recipe.to_yaml(), encoding="utf-8")

    def _loaders_state(self) -> dict:
        return {
            name: loader.state_dict()
            for name, loader in (("grounding", self.data.grounding), ("actions", self.data.actions))
            if loader is not None
        }

    def _save(self, step: int, stage: int, stage_step: int, optimizer, scheduler) -> Path:
        """Rank 0 writes the checkpoint with every rank's loader positions; all ranks return its path."""
        loaders = gather_objects(self._loaders_state(), self.dist)
        state = {
            "step": step,
            "stage": stage,
            "stage_step": stage_step,
            "loaders": loaders[0],
            "loaders_by_rank": loaders,
            "world_size": self.dist.world,
            "data": self.data.paths,
        }
        path = checkpoint_dir(self.run_dir, step)
        if self.dist.main:
            path = save_checkpoint(
                self.run_dir, step, self.policy, optimizer, scheduler, state, self.recipe.to_yaml(),
                self.data.stats, self.recipe.keep_checkpoints,
            )  # fmt: skip
        barrier(self.dist)
        return path

    # --- the loop --------------------------------------------------------------------------------------------
    def run(self, resume: bool = True) -> TrainResult:
        t0 = time.perf_counter()
        stages = [(1, self.recipe.stage1), (2, self.recipe.stage2)]
        start_stage, start_stage_step, step, ckpt = 1, 0, 0, None
        existing = list_checkpoints(self.run_dir) if resume else []
        result = TrainResult(self.run_dir, 0, None)
        if existing:
            ckpt = existing[-1]
            state = read_state(ckpt)
            load_model_weights(ckpt, self.policy, self.device)
            saved_world = state.get("world_size", 1)
            if saved_world != self.dist.world:
                raise JobStateError(
                    f"{ckpt} was written by {saved_world} process(es); resume it with the same number, "
                    f"not {self.dist.world}"
                )
            loaders = state.get("loaders_by_rank", [state["loaders"]])[self.dist.rank]
            for name, loader in (("grounding", self.data.grounding), ("actions", self.data.actions)):
                if loader is not None and name in loaders:
                    loader.load_state_dict(loaders[name])
            start_stage, start_stage_step, step = state["stage"], state["stage_step"], state["step"]
            result.resumed_from = step
            log.info("resuming from %s (stage %d, step %d)", ckpt.name, start_stage, step)
        if self.dist.main:
            train_log = CsvLog(self.run_dir / "logs" / "train.csv", TRAIN_COLUMNS, step if existing else None)
            diag_log = CsvLog(self.run_dir / "logs" / "gradient_conflict.csv", DIAG_COLUMNS, step if existing else None)
            board = TensorBoard(self.run_dir / "logs" / "tensorboard")
        else:
            train_log = diag_log = NullLog()
            board = TensorBoard(None)
        try:
            for stage, cfg in stages:
                if stage < start_stage or cfg.steps == 0:
                    continue
                first = start_stage_step if stage == start_stage else 0
                if first >= cfg.steps:
                    continue
                optimizer, scheduler = make_optimizer(self.policy, cfg)
                if ckpt is not None and stage == start_stage and first > 0:
                    load_optimizer(ckpt, optimizer, scheduler, self.device)
                losses, step, ckpt = self._stage(
                    stage, cfg, first, step, optimizer, scheduler, train_log, diag_log, board
                )
                result.losses[f"stage{stage}"] = losses
        finally:
            board.close()
        result.step, result.checkpoint = step, ckpt
        if self.recipe.perception is not None:
            self.policy = self._perceive_once(ckpt)
        result.wall_s = time.perf_counter() - t0
        return result

    def _perceive_once(self, ckpt: Path | None):
        """Rung 2b: train (or load) the first-frame perception network next to the run, copy it into the final
        checkpoint, and return the state policy wrapped so that its task constants come from the first frame."""
        import shutil

        from dataengine.train.perception import PERCEPTION_FILE, PerceiveOncePolicy, fit_perception, load_perceiver
        from dataengine.train.probe import SIM_RECIPE_FILE

        cfg, saved = self.recipe.perception, self.run_dir / PERCEPTION_FILE
        if saved.exists():
            perceiver, _ = load_perceiver(saved)
        else:
            episodes = resolve_data_path(self.recipe, self.recipe.data.episodes, self.data_root)
            perceiver, summary = fit_perception(cfg, Path(episodes) / SIM_RECIPE_FILE, self.run_dir)
            log.info("perception: %s", summary)
        if cfg.joint is not None:
            perceiver = self._tune_jointly(perceiver, ckpt)
        elif ckpt is not None:
            shutil.copyfile(saved, Path(ckpt) / PERCEPTION_FILE)
        return PerceiveOncePolicy(self.policy, perceiver, cfg.camera, cfg.image_size)

    def _tune_jointly(self, perceiver, ckpt: Path | None):
        """`perception.joint`: fine-tune the first-frame network and the state policy together on the demos
        (`joint_tuning`), once per run folder (`JOINT_FILE` holds both tuned networks); the final checkpoint gets
        the tuned weights, so it evaluates on its own."""
        import numpy as np

        from dataengine.train.checkpoint import MODEL_FILE
        from dataengine.train.joint_tuning import fine_tune_jointly, load_demos
        from dataengine.train.perception import FIRST_FRAMES_FILE, PERCEPTION_FILE, FirstFrameSet, save_perceiver

        cfg, path = self.recipe.perception, self.run_dir / JOINT_FILE
        if path.exists():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            self.policy.load_state_dict(saved["state_policy"])
            perceiver.net.load_state_dict(saved["perception"])
        else:
            d = self.recipe.data
            episodes = resolve_data_path(self.recipe, d.episodes, self.data_root)
            t0, cpu0 = time.perf_counter(), time.process_time()
            demos = load_demos(Path(episodes), self.data.normalizer, d.chunk_size, cfg.camera, cfg.image_size,
                               d.max_episodes)  # fmt: skip
            grounding = None
            if cfg.joint.grounding_weight > 0:
                arrays = dict(np.load(self.run_dir / FIRST_FRAMES_FILE))
                grounding = FirstFrameSet(arrays, cfg.crop_rows, perceiver.scalar_mean, perceiver.scalar_std)
            history = fine_tune_jointly(self.policy, perceiver, demos, grounding, self.data.normalizer, cfg.joint,
                                        cfg.heatmap_weight)  # fmt: skip
            summary = {"demos": len(demos.images), "wall_s": round(time.perf_counter() - t0, 1),
                       "cpu_s": round(time.process_time() - cpu0, 1), "final_losses": history[-1]}  # fmt: skip
            log.info("joint tuning: %s", summary)
            buf = io.BytesIO()
            torch.save({"state_policy": self.policy.state_dict(), "perception": perceiver.net.state_dict(),
                        "summary": summary, "history": history}, buf)  # fmt: skip
            atomic_write_bytes(path, buf.getvalue())
        if ckpt is not None:
            torch.save(self.policy.state_dict(), Path(ckpt) / MODEL_FILE)
            save_perceiver(perceiver, cfg, Path(ckpt) / PERCEPTION_FILE)
        return perceiver

    def _batches(self, stage: int, cfg: StageConfig) -> MixtureLoader:
        """Stage 1: grounding batches; stage 2: one action batch and one grounding batch per step."""
        if stage == 1:
            return MixtureLoader(None, self.data.grounding, grounding_batch=cfg.grounding_batch)
        grounding = self.data.grounding if cfg.spatial_loss_weight > 0 else None
        return MixtureLoader(self.data.actions, grounding, cfg.action_batch, cfg.grounding_batch)

    def _stage(self, stage, cfg, first, step, optimizer, scheduler, train_log, diag_log, board):
        """Steps `first`..`cfg.steps` of one stage; returns (total loss per step, global step, last checkpoint)."""
        r = self.recipe
        diag = None
        if stage == 2 and r.diagnostics.every > 0 and self.data.grounding is not None and cfg.spatial_loss_weight > 0:
            d = r.diagnostics
            diag = GradientConflict(self.policy.backbone_parameters(), d.window, d.max_dim, d.sketch_dim)
        self.policy.train()
        params = [p for group in optimizer.param_groups for p in group["params"]]
        losses: list[float] = []
        meter = StepMeter()
        stage_step, ckpt = first, None
        batches = iter(self._batches(stage, cfg))
        while stage_step < cfg.steps:
            action_batch, grounding_batch = next(batches)
            run_diag = diag is not None and (stage_step + 1) % r.diagnostics.every == 0
            parts, diag_metrics = self._backward(
                stage, cfg, step, action_batch, grounding_batch, diag if run_diag else None
            )
            average_gradients(params, self.dist)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
            optimizer.step()
            scheduler.step()
            step, stage_step = step + 1, stage_step + 1
            if diag_metrics:
                diag_log.write({"step": step, **diag_metrics})
                board.scalars(step, {f"diag/{k}": v for k, v in diag_metrics.items()})
            weights = (1.0, 0.0) if stage == 1 else (cfg.spatial_loss_weight, cfg.action_loss_weight)
            total = weights[0] * parts.get("loss_spatial", 0.0) + weights[1] * parts.get("loss_action", 0.0)
            if stage == 2:
                total += cfg.point_loss_weight * parts.get("loss_point", 0.0)
            losses.append(total)
            meter.add(total, grad_norm, parts)
            if stage_step % r.log_every == 0 or stage_step == cfg.steps:
                row = {"step": step, "stage": stage, "stage_step": stage_step, **meter.flush()}
                row.update(lr_backbone=scheduler.get_last_lr()[0], lr_heads=scheduler.get_last_lr()[1])
                train_log.write(row)
                board.scalars(step, {f"train/{k}": v for k, v in row.items() if k not in ("step", "stage")})
                log_row(log, row, cfg.steps)
            if stage_step % r.checkpoint_every == 0 or stage_step == cfg.steps:
                ckpt = self._save(step, stage, stage_step, optimizer, scheduler)
        return losses, step, ckpt

    def _backward(self, stage, cfg, step, action_batch, grounding_batch, diag) -> tuple[dict, dict | None]:
        """Zero the gradients, back-propagate the weighted action loss, then the weighted spatial loss (two passes,
        as upstream). With `diag`, the LM gradient of each loss is captured in between. Returns (losses and sample
        counts, diagnostic metrics or None)."""
        self.policy.zero_grad(set_to_none=True)
        parts: dict[str, float] = {}
        g_action = None
        if action_batch is not None:
            gen = torch.Generator(device=self.device).manual_seed(self.recipe.seed * 1_000_003 + step)
            with self.autocast:
                losses = self.policy.action_losses(to_device(action_batch, self.device), gen)
            loss_a, loss_p = losses["action"], losses.get("point")
            use_points = loss_p is not None and cfg.point_loss_weight > 0
            (cfg.action_loss_weight * loss_a).backward(retain_graph=use_points)
            parts["loss_action"] = loss_a.item()
            parts["samples"] = len(action_batch["meta"]["__key__"])
            if diag is not None:
                g_action = diag.capture()
            if use_points:  # spatial grounding on the action frames: counted with the spatial loss
                (cfg.point_loss_weight * loss_p).backward()
                parts["loss_point"] = loss_p.item()
        if grounding_batch is not None:
            weight = 1.0 if stage == 1 else cfg.spatial_loss_weight
            with self.autocast:
                loss_s = self.policy.spatial_loss(to_device(grounding_batch, self.device))
            (weight * loss_s).backward()
            parts["loss_spatial"] = loss_s.item()
            parts["samples"] = parts.get("samples", 0) + len(grounding_batch["meta"]["__key__"])
        if g_action is None:
            return parts, None
        return parts, diag.add(diag.capture() - g_action, g_action)


def train(
    recipe: TrainRecipe,
    out_dir: str | Path,
    *,
    data_root: str | Path | None = None,
    device: str | None = None,
    resume: bool = True,
    evaluate: bool = True,
) -> TrainResult:
    """Train both stages of a recipe into `out_dir` (resuming from its latest checkpoint), then evaluate."""
    trainer = Trainer(recipe, Path(out_dir), Path(data_root) if data_root else None, device)
    result = trainer.run(resume=resume)
    if evaluate and trainer.dist.main:
        from dataengine.train.evaluate import evaluate_trainer

        result.metrics = evaluate_trainer(trainer, result)
    barrier(trainer.dist)
    return result
