"""Training and use of the first-frame perception network (`models.keypoint_net.KeypointNet`) of "perceive once,
then act" (docs/training.md, rung 2b): it reads the first front frame of an episode and the instruction, and its
2-D points, back-projected onto the table plane with the calibrated camera, plus its scalars, make the `task`
state's per-episode constants (`observations.TaskContext`) that the state policy then acts on, with the robot's
own proprioception each step.
"""

from __future__ import annotations

import io
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dataengine.train.first_frame import (
    FirstFrame,
    constants_from_targets,
    constants_to_targets,
    folded_yaw_error_rad,
    project_table_points,
    table_points_from_pixels,
)
from dataengine.train.models.keypoint_net import KeypointNet, heatmap_targets, yaw_bin
from dataengine.train.observations import TaskContext
from dataengine.train.recipe import PerceptionConfig

log = logging.getLogger(__name__)
GLIMPSE_JITTER_PX = 1.5  # training looks at the true pick point plus this noise (the prediction's error scale)


class FirstFrameSet:
    """First-frame arrays (`first_frame.render_first_frames`) as training tensors: images, instructions, pixel
    targets of the two table-plane points, normalized scalars, yaw."""

    def __init__(self, arrays: dict[str, np.ndarray], crop_rows: tuple[int, int], scalar_mean=None, scalar_std=None):
        self.crop_rows = crop_rows
        self.images = arrays["image"]
        self.instructions = [str(t) for t in arrays["instruction"]]
        self.K, self.T, self.table_z = arrays["K"], arrays["T_cam_to_world"], arrays["table_z"]
        n = len(self.images)
        self.points = np.zeros((n, 2, 2))
        self.scalars = np.zeros((n, 7))
        self.yaw = np.zeros(n)
        for i in range(n):
            xy, s, yaw = constants_to_targets(arrays["constants"][i], self.table_z[i])
            self.points[i] = project_table_points(xy, self.table_z[i], self.K[i], self.T[i])
            self.scalars[i], self.yaw[i] = s, yaw
        self.constants = arrays["constants"]
        self.scalar_mean = self.scalars.mean(0) if scalar_mean is None else scalar_mean
        self.scalar_std = np.maximum(self.scalars.std(0), 1e-4) if scalar_std is None else scalar_std

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, idx: np.ndarray) -> dict:
        return {
            "images": images_to_tensor(self.images[idx], self.crop_rows),
            "texts": [self.instructions[i] for i in idx],
            "points": torch.as_tensor(self.points[idx] - np.array([0.0, self.crop_rows[0]]), dtype=torch.float32),
            "scalars": torch.as_tensor((self.scalars[idx] - self.scalar_mean) / self.scalar_std, dtype=torch.float32),
            "yaw": torch.as_tensor(self.yaw[idx], dtype=torch.float32),
        }


def images_to_tensor(images: np.ndarray, crop_rows: tuple[int, int]) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, rows, W) float in [0, 1]: the rows crop_rows[0] <= v < crop_rows[1]."""
    top, bottom = crop_rows
    return torch.as_tensor(np.ascontiguousarray(images[:, top:bottom])).permute(0, 3, 1, 2).float() / 255.0


def perception_loss(net: KeypointNet, out: dict, batch: dict, heatmap_weight: float) -> dict[str, torch.Tensor]:
    point = F.smooth_l1_loss(out["points"], batch["points"], beta=1.0)
    target = heatmap_targets(batch["points"], batch["images"].shape[-2:], out["logits"].shape[-2:])
    logp = out["logits"].flatten(2).log_softmax(-1)
    heat = -(target.flatten(2) * logp).sum(-1).mean()
    scalars = F.mse_loss(out["scalars"], batch["scalars"])
    yaw = F.cross_entropy(out["yaw"], yaw_bin(batch["yaw"], net.yaw_bins))
    total = point + heatmap_weight * heat + scalars + 0.5 * yaw
    return {"loss": total, "point_px": point, "heatmap": heat, "scalars": scalars, "yaw": yaw}


def train_perception(train: FirstFrameSet, cfg: PerceptionConfig, log_every: int = 200) -> tuple[KeypointNet, list]:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = KeypointNet(width=cfg.width, yaw_bins=cfg.yaw_bins)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = min(200, cfg.steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, cfg.steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    history, t0 = [], time.perf_counter()
    order = rng.permutation(len(train))
    pos = 0
    net.train()
    for step in range(cfg.steps):
        if pos + cfg.batch > len(order):
            order, pos = rng.permutation(len(train)), 0
        batch = train.batch(order[pos : pos + cfg.batch])
        pos += cfg.batch
        noisy = batch["points"][:, 0] + GLIMPSE_JITTER_PX * torch.randn(len(batch["texts"]), 2, generator=gen)
        out = net(batch["images"], batch["texts"], glimpse_at=noisy)
        losses = perception_loss(net, out, batch, cfg.heatmap_weight)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % log_every == 0 or step == cfg.steps - 1:
            row = {k: round(float(v.detach()), 4) for k, v in losses.items()} | {
                "step": step, "wall_s": round(time.perf_counter() - t0, 1)
            }  # fmt: skip
            history.append(row)
            log.info("perception %s", row)
    net.eval()
    return net, history


class Perceiver:
    """A trained KeypointNet with its scalar statistics: first frame -> `TaskContext`."""

    def __init__(self, net: KeypointNet, scalar_mean, scalar_std, crop_rows: tuple[int, int]) -> None:
        self.net, self.scalar_mean, self.scalar_std = net, np.asarray(scalar_mean), np.asarray(scalar_std)
        self.crop_rows = tuple(crop_rows)

    @torch.no_grad()
    def predict(self, images: np.ndarray, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pixel points (B, 2, 2) in the full image, scalars (B, 7), folded yaw (B,))."""
        self.net.eval()
        out = self.net(images_to_tensor(images, self.crop_rows), texts)
        scalars = out["scalars"].numpy() * self.scalar_std + self.scalar_mean
        points = out["points"].numpy() + np.array([0.0, self.crop_rows[0]])
        return points, scalars, self.net.yaw_from_logits(out["yaw"]).numpy()

    def constants(self, frames: list[FirstFrame]) -> np.ndarray:
        """(B, 12) `TaskContext.constants` seen in the first frames."""
        self.net.eval()
        t = torch.as_tensor
        with torch.no_grad():
            out = self.net(images_to_tensor(np.stack([f.image for f in frames]), self.crop_rows),
                           [f.instruction for f in frames])  # fmt: skip
            consts = self.constants_from_outputs(
                out, t(np.stack([f.intrinsics_k for f in frames])), t(np.stack([f.T_cam_to_world_cv for f in frames])),
                t([f.table_z_m for f in frames], dtype=torch.float64),
            )  # fmt: skip
        return consts.numpy()

    def constants_from_outputs(
        self, out: dict[str, torch.Tensor], K: torch.Tensor, T_cam_to_world: torch.Tensor, table_z_m: torch.Tensor
    ) -> torch.Tensor:
        """(B, 12) constants (float64) from the network's outputs, differentiable in its points and scalars (the
        yaw is a classification: its bin's refined angle carries no gradient)."""
        points = out["points"].double() + torch.tensor([0.0, float(self.crop_rows[0])], dtype=torch.float64)
        xy = table_points_from_pixels(points, table_z_m.double(), K.double(), T_cam_to_world.double())
        mean, std = torch.as_tensor(self.scalar_mean), torch.as_tensor(self.scalar_std)
        scalars = out["scalars"].double() * std + mean
        yaw = self.net.yaw_from_logits(out["yaw"].detach()).double()
        return constants_from_targets(xy, scalars, yaw, table_z_m.double())

    def context(self, frame: FirstFrame, neutral_yaw_rad: float) -> TaskContext:
        return TaskContext(self.constants([frame])[0], neutral_yaw_rad)


def perception_errors(perceiver: Perceiver, data: FirstFrameSet, batch: int = 64) -> dict:
    """Median / 90th-percentile errors on held-out first frames: the grasp and place points (3-D, m), the image
    points (px), the grasp yaw modulo pi (deg), the scalars (m)."""
    consts, pixels = [], []
    for start in range(0, len(data), batch):
        idx = np.arange(start, min(start + batch, len(data)))
        frames = [
            FirstFrame(data.images[i], data.instructions[i], data.K[i], data.T[i], float(data.table_z[i])) for i in idx
        ]
        consts.append(perceiver.constants(frames))
        pixels.append(perceiver.predict(data.images[idx], [data.instructions[i] for i in idx])[0])
    pred, true = np.concatenate(consts), np.asarray(data.constants)
    px = np.linalg.norm(np.concatenate(pixels) - data.points, axis=-1)
    grasp = np.linalg.norm(pred[:, 0:3] - true[:, 0:3], axis=1)
    place = np.linalg.norm(pred[:, 4:7] - true[:, 4:7], axis=1)
    yaw = np.degrees([folded_yaw_error_rad(a, b) for a, b in zip(pred[:, 3], true[:, 3], strict=True)])
    size = np.abs(pred[:, 7:12] - true[:, 7:12]).mean(1)

    def q(v):
        return [round(float(np.median(v)), 4), round(float(np.percentile(v, 90)), 4)]

    return {
        "frames": len(data),
        "grasp_point_m_median_p90": q(grasp),
        "place_point_m_median_p90": q(place),
        "pick_px_median_p90": q(px[:, 0]),
        "container_px_median_p90": q(px[:, 1]),
        "grasp_yaw_deg_median_p90": q(yaw),
        "size_m_median_p90": q(size),
        "grasp_within_1cm": round(float(np.mean(grasp < 0.01)), 4),
        "grasp_over_3cm": round(float(np.mean(grasp > 0.03)), 4),
    }


class PerceiveOncePolicy(torch.nn.Module):
    """A `task`-state policy whose per-episode constants come from a `Perceiver` reading the first frame of
    `camera` (the closed-loop evaluator calls `perceive` once per episode, after the reset); everything that
    changes during the episode (tool pose, joints, the points relative to the tool) comes from proprioception."""

    def __init__(self, state_policy: torch.nn.Module, perceiver: Perceiver, camera: str, image_size: int) -> None:
        super().__init__()
        self.state_policy, self.perceiver, self.camera, self.image_size = state_policy, perceiver, camera, image_size
        self.net = perceiver.net  # registered, so .eval() / .train() reach it

    @property
    def space(self):
        return self.state_policy.space

    def perceive(self, frame: FirstFrame, neutral_yaw_rad: float) -> TaskContext:
        return self.perceiver.context(frame, neutral_yaw_rad)

    @torch.no_grad()
    def predict_actions(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.state_policy.predict_actions(batch, generator)


PERCEPTION_FILE = "perception.pt"
FIRST_FRAMES_FILE = "first_frames.npz"


def save_perceiver(perceiver: Perceiver, cfg: PerceptionConfig, path: Path, extra: dict | None = None) -> None:
    from dataengine.runtime.atomic import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(
        {"state_dict": perceiver.net.state_dict(), "scalar_mean": perceiver.scalar_mean.tolist(),
         "scalar_std": perceiver.scalar_std.tolist(), "config": cfg.model_dump(mode="json"), **(extra or {})},
        buf,
    )  # fmt: skip
    atomic_write_bytes(path, buf.getvalue())


def load_perceiver(path: Path) -> tuple[Perceiver, PerceptionConfig]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = PerceptionConfig.model_validate(saved["config"])
    net = KeypointNet(width=cfg.width, yaw_bins=cfg.yaw_bins)
    net.load_state_dict(saved["state_dict"])
    net.eval()
    return Perceiver(net, saved["scalar_mean"], saved["scalar_std"], cfg.crop_rows), cfg


def fit_perception(cfg: PerceptionConfig, sim_recipe: Path, out_dir: Path) -> tuple[Perceiver, dict]:
    """Render (or reuse) the first frames in `out_dir`, train the network, save it as `out_dir/perception.pt`;
    returns the perceiver and a summary (frames, losses, render and training times)."""
    from dataengine.train.first_frame import render_first_frames, save_first_frames

    frames_path = out_dir / FIRST_FRAMES_FILE
    t0, cpu0 = time.perf_counter(), time.process_time()
    if frames_path.exists():
        arrays = dict(np.load(frames_path))
    else:
        arrays = render_first_frames(
            sim_recipe,
            cfg.frames,
            camera=cfg.camera,
            image_size=cfg.image_size,
            seed_offset=cfg.seed_offset,
            per_scene=cfg.per_scene,
        )
        save_first_frames(arrays, frames_path)
    render_s, render_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    data = FirstFrameSet(arrays, cfg.crop_rows)
    t1, cpu1 = time.perf_counter(), time.process_time()
    net, history = train_perception(data, cfg)
    perceiver = Perceiver(net, data.scalar_mean, data.scalar_std, cfg.crop_rows)
    summary = {
        "frames": len(data), "render_wall_s": round(render_s, 1), "render_cpu_s": round(render_cpu_s, 1),
        "train_wall_s": round(time.perf_counter() - t1, 1), "train_cpu_s": round(time.process_time() - cpu1, 1),
        "final_losses": history[-1] if history else {},
    }  # fmt: skip
    save_perceiver(perceiver, cfg, out_dir / PERCEPTION_FILE, {"summary": summary})
    return perceiver, summary
