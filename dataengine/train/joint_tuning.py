"""Fine-tune the first-frame network and the state policy together on the demonstrations: rung 2b as one
differentiable model, and the knobs of the ST4VLA ablation (docs/training.md).

Each step draws demos; each demo's first frame goes through the first-frame network, whose 2-D points are
back-projected onto the table plane (differentiably) and, with its scalars, become the `task` state's per-episode
constants; the state vectors of a few of the demo's control steps are rebuilt around those constants (the rest of
each vector, the robot's proprioception, is the recorded one), normalized, and the state policy's action loss on
the recorded chunks is back-propagated into both networks. Two knobs, as in ST4VLA:

- `grad_decay`: the action loss's gradient reaches the first-frame network scaled by this factor (the forward pass
  is unchanged), so acting cannot freely overwrite what grounding taught it;
- `grounding_weight`: spatial-grounding co-training, the first-frame network's own loss (its 2-D points, heatmaps,
  scalars and yaw on the rendered grounding frames) added with this weight at every step; 0 trains it through the
  action loss alone.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dataengine.errors import InputError
from dataengine.train.first_frame import scaled_intrinsics
from dataengine.train.normalization import Normalizer
from dataengine.train.observations import STATE_DIMS, episode_states
from dataengine.train.perception import (
    GLIMPSE_JITTER_PX,
    FirstFrameSet,
    Perceiver,
    images_to_tensor,
    perception_loss,
)
from dataengine.train.recipe import JointTuningConfig

log = logging.getLogger(__name__)

# Columns of the `task` state (dataengine.train.observations): the tool position, the 12 constants and the grasp and
# place points relative to the tool.
TOOL_POS = slice(15, 18)
CONSTANTS = slice(19, 31)


@dataclass
class DemoSet:
    """The demos' first frames with their calibration, and every step's raw `task` state and normalized chunk."""

    images: np.ndarray  # (E, H, W, 3) uint8
    instructions: list[str]
    K: np.ndarray  # (E, 3, 3) at the image size
    T_cam_to_world: np.ndarray  # (E, 4, 4)
    table_z: np.ndarray  # (E,)
    states: list[np.ndarray]  # per demo (T, 37) raw task states (the expert's constants)
    actions: list[np.ndarray]  # per demo (T, chunk, D + 1) normalized


def load_demos(
    episodes_dir: Path, normalizer: Normalizer, chunk_size: int, camera: str, image_size: int, count: int | None
) -> DemoSet:
    """The first `count` successful, rendered demos under `episodes_dir` in shard order (the ones a run with
    `data.max_episodes: count` trains its state policy on)."""
    from dataengine.shards.episode import iter_episodes
    from dataengine.train.actions import episode_chunks

    rows: dict[str, list] = {k: [] for k in ("images", "instructions", "K", "T", "z", "states", "actions")}
    for ep in iter_episodes(episodes_dir):
        if count is not None and len(rows["images"]) >= count:
            break
        if not ep.record.success:
            continue
        if not ep.rendered or camera not in ep.cameras:
            raise InputError(
                f"{ep.key}: joint tuning reads each demo's first {camera!r} frame, but the episode has none: "
                "regenerate the episodes with rendering (`dataengine sim generate RECIPE --out DIR`)"
            )
        image = Image.fromarray(ep.rgb(camera, 0))
        info = ep.record.cameras[ep.camera_index(camera)]
        K = np.asarray(info.intrinsics_k, dtype=np.float64)
        if image.size != (image_size, image_size):
            K = scaled_intrinsics(K, image.size, image_size)
            image = image.resize((image_size, image_size), Image.BILINEAR)
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in ep.arrays.items()}
        motion, grip = episode_chunks(normalizer.action_space, ep.record, arrays, chunk_size)
        rows["images"].append(np.asarray(image))
        rows["instructions"].append(ep.record.instructions.base)
        rows["K"].append(K)
        rows["T"].append(np.asarray(info.T_cam_to_world_cv, dtype=np.float64))
        rows["z"].append(float(ep.record.layout.table.top_center_m[2]))
        rows["states"].append(episode_states("task", ep.record, arrays))
        rows["actions"].append(np.stack([normalizer.actions(m, g) for m, g in zip(motion, grip, strict=True)]))
    if not rows["images"] or (count is not None and len(rows["images"]) < count):
        found = len(rows["images"])
        raise InputError(f"joint tuning needs {count} successful demos under {episodes_dir}; found {found}")
    return DemoSet(np.stack(rows["images"]), rows["instructions"], np.stack(rows["K"]), np.stack(rows["T"]),
                   np.asarray(rows["z"]), rows["states"], rows["actions"])  # fmt: skip


def scaled_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x in the forward pass; its gradient multiplied by `factor` in the backward pass."""
    return x if factor == 1.0 else factor * x + (1.0 - factor) * x.detach()


def states_with_constants(raw: torch.Tensor, constants: torch.Tensor) -> torch.Tensor:
    """Raw `task` states (B, k, 37) with their constants (B, 12) replaced, and the points relative to the tool
    recomputed from them (the same layout as `observations.state_vectors`)."""
    tool = raw[..., TOOL_POS]
    c = constants[:, None, :].expand(-1, raw.shape[1], -1)
    return torch.cat([raw[..., : CONSTANTS.start], c, c[..., 0:3] - tool, c[..., 4:7] - tool], dim=-1)


def fine_tune_jointly(
    state_policy: torch.nn.Module,
    perceiver: Perceiver,
    demos: DemoSet,
    grounding: FirstFrameSet | None,
    normalizer: Normalizer,
    cfg: JointTuningConfig,
    heatmap_weight: float = 1.0,
    log_every: int = 50,
) -> list[dict]:
    """Train both networks in place (see the module's docstring); returns the loss history."""
    if normalizer.state_kind != "task":
        raise InputError("joint tuning rebuilds the task state: data.state must be task")
    if cfg.grounding_weight > 0 and grounding is None:
        raise InputError("grounding co-training (grounding_weight > 0) needs the rendered grounding frames")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = perceiver.net
    groups = [{"params": list(net.parameters()), "lr": cfg.perception_lr or cfg.lr},
              {"params": list(state_policy.parameters()), "lr": cfg.lr}]  # fmt: skip
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    scale, offset = (torch.as_tensor(v, dtype=torch.float64) for v in normalizer.state_affine())
    dim = STATE_DIMS["task"]
    t = torch.as_tensor
    history, t0 = [], time.perf_counter()
    net.train()
    state_policy.train()
    for step in range(cfg.steps):
        idx = rng.choice(len(demos.images), size=min(cfg.episode_batch, len(demos.images)), replace=False)
        out = net(images_to_tensor(demos.images[idx], perceiver.crop_rows), [demos.instructions[i] for i in idx])
        consts = perceiver.constants_from_outputs(
            out, t(demos.K[idx]), t(demos.T_cam_to_world[idx]), t(demos.table_z[idx], dtype=torch.float64)
        )
        consts = scaled_gradient(consts, cfg.grad_decay)
        steps = [rng.integers(0, len(demos.states[i]), size=cfg.steps_per_episode) for i in idx]
        raw = t(np.stack([demos.states[i][s] for i, s in zip(idx, steps, strict=True)]))  # (B, k, 37)
        actions = t(np.stack([demos.actions[i][s] for i, s in zip(idx, steps, strict=True)]))  # (B, k, chunk, D)
        states = (states_with_constants(raw, consts) * scale + offset).float().reshape(-1, dim)
        action_loss = state_policy.action_loss({"state": states, "actions": actions.reshape(-1, *actions.shape[2:])})
        loss, row = action_loss, {"action": action_loss}
        if cfg.grounding_weight > 0:
            g = grounding.batch(rng.choice(len(grounding), size=cfg.grounding_batch, replace=False))
            noisy = g["points"][:, 0] + GLIMPSE_JITTER_PX * torch.randn(len(g["texts"]), 2, generator=gen)
            g_losses = perception_loss(net, net(g["images"], g["texts"], glimpse_at=noisy), g, heatmap_weight)
            loss = loss + cfg.grounding_weight * g_losses["loss"]
            row |= {"grounding": g_losses["loss"], "point_px": g_losses["point_px"]}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in (net.parameters(), state_policy.parameters()):  # one clip per network: the grounding loss's
            torch.nn.utils.clip_grad_norm_(group, 1.0)  # gradient norm must not set the action network's step
        opt.step()
        sched.step()
        if step % log_every == 0 or step == cfg.steps - 1:
            entry = {k: round(float(v.detach()), 4) for k, v in row.items()}
            entry |= {"step": step, "wall_s": round(time.perf_counter() - t0, 1)}
            history.append(entry)
            log.info("joint tuning %s", entry)
    net.eval()
    state_policy.eval()
    return history
