"""The optimizer and learning-rate schedule of a stage: AdamW with two parameter groups (backbone, heads; the
upstream betas 0.9/0.95), linear warmup and cosine decay to `min_lr_ratio` of the peak."""

from __future__ import annotations

import math

import torch

from dataengine.train.models.policy import DualSystemPolicy
from dataengine.train.recipe import StageConfig


def make_optimizer(policy: DualSystemPolicy, cfg: StageConfig):
    """AdamW with two groups (backbone, heads; upstream betas) and linear warmup + cosine decay to min_lr_ratio."""
    groups = [
        {"params": policy.backbone_parameters(), "lr": cfg.lr_backbone, "name": "backbone"},
        {"params": policy.head_parameters(), "lr": cfg.lr_heads, "name": "heads"},
    ]
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    total = max(1, cfg.steps)

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
