"""The state policy: an MLP from a state vector to a whole normalized action chunk.

With `data.state: task` (privileged task features) it needs no camera and no text: it measures whether the
demonstrations themselves are consistent and learnable, apart from vision, in seconds of CPU (`dataengine sim
probe`). It trains through the same loop and is evaluated by the same closed-loop evaluator as the dual-system
policy. The chunk's joint deltas are regressed (MSE), its gripper commands classified (logistic loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dataengine.errors import InputError


class StateEncoder:
    """The chat encoder of a policy that reads neither images nor text: batches carry only state and actions."""

    def prepare_image(self, image):
        return image

    def encode(self, images, prompts, answers, *, for_generation: bool = False, **_) -> dict:
        return {}


class StateMLPPolicy(nn.Module):
    def __init__(self, cfg, space) -> None:
        super().__init__()
        self.space, self.gripper_weight = space, cfg.gripper_loss_weight
        layers, width = [], space.state_dim
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), nn.GELU()]
            width = cfg.hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, space.chunk_size * space.action_dim)

    def backbone_parameters(self) -> list[nn.Parameter]:
        return []

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(state)).view(-1, self.space.chunk_size, self.space.action_dim)

    def action_loss(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        out, target = self(batch["state"]), batch["actions"]
        joints = F.mse_loss(out[..., :-1], target[..., :-1])
        gripper = F.binary_cross_entropy_with_logits(out[..., -1], (target[..., -1] > 0).float())
        return joints + self.gripper_weight * gripper

    def action_losses(self, batch: dict, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return {"action": self.action_loss(batch, generator)}

    @torch.no_grad()
    def predict_actions(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalized chunks (B, chunk, action_dim); the gripper as the binary normalization's -1 / +1."""
        out = self(batch["state"])
        return torch.cat([out[..., :-1], torch.where(out[..., -1:] > 0, 1.0, -1.0)], dim=-1)

    def spatial_loss(self, batch: dict) -> torch.Tensor:
        raise InputError("the state policy has no language model: set stage1.steps and stage2.spatial_loss_weight to 0")

    def generate(self, batch: dict, max_new_tokens: int = 48) -> list[str]:
        raise InputError("the state policy has no language model: it cannot answer grounding questions")
