"""The dual-system policy: a vision-language backbone (System 2) + querying transformer + action expert (System 1).

`spatial_loss` is the backbone's next-token loss on grounding answers; `action_losses` runs the backbone on the
frames and the (spatially prompted) instruction, lets the queries read its hidden states through the gradient
decay, and trains the action expert (flow matching, or regression with `model.expert: mlp`). With a pointing
backbone (`tiny.pointing`), System 2 also says where the instruction's objects are in every frame: the action
expert reads those points as one more condition token (through the same gradient decay), and `action_losses`
adds the pointing loss against the episodes' per-frame 2-D labels (spatial-grounding co-training).
`backbone_parameters()` are the parameters the action and spatial losses share.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dataengine.train.models.action_expert import FlowMatchingActionExpert, RegressionActionExpert
from dataengine.train.models.qformer import QueryTransformer, grad_decay


@dataclass(frozen=True)
class ActionSpace:
    action_dim: int = 8  # motion (7 joint deltas, or 6 for ee_relative) + 1 binary gripper
    state_dim: int = 8  # 7 joints + gripper opening
    chunk_size: int = 16


class DualSystemPolicy(nn.Module):
    def __init__(self, backbone: nn.Module, model_cfg, space: ActionSpace) -> None:
        super().__init__()
        self.backbone = backbone
        self.space = space
        self.grad_decay = model_cfg.grad_decay
        self.repeats = model_cfg.diffusion_repeats
        self.sample_steps = model_cfg.sample_steps
        self.qformer = QueryTransformer(
            backbone.hidden_size,
            model_cfg.qformer_dim,
            num_queries=model_cfg.qformer_queries,
            layers=model_cfg.qformer_layers,
            heads=model_cfg.qformer_heads,
        )
        self.point_proj = None
        tokens = model_cfg.qformer_queries
        if getattr(backbone, "pointing", None) is not None:
            cfg = backbone.cfg
            width = cfg.max_images * (2 * 5 + cfg.point_channels)  # images x (roles x (point, visible, yaw), pooled)
            self.point_proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, model_cfg.qformer_dim))
            tokens += 1
        if model_cfg.expert == "mlp":
            self.expert = RegressionActionExpert(
                model_cfg.qformer_dim, tokens, space.action_dim, space.state_dim, space.chunk_size,
                hidden=model_cfg.expert_hidden, layers=model_cfg.expert_layers,
            )  # fmt: skip
        else:
            self.expert = FlowMatchingActionExpert(
                model_cfg.qformer_dim,
                space.action_dim,
                space.state_dim,
                space.chunk_size,
                dim=model_cfg.expert_dim,
                layers=model_cfg.expert_layers,
                heads=model_cfg.expert_heads,
            )

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.backbone.parameters() if p.requires_grad]

    def head_parameters(self) -> list[nn.Parameter]:
        heads = [m for m in (self.qformer, self.expert, self.point_proj) if m is not None]
        return [p for m in heads for p in m.parameters() if p.requires_grad]

    def spatial_loss(self, batch: dict) -> torch.Tensor:
        out = self.backbone(batch, with_lm_loss=True)
        if out.lm_loss is None:
            raise ValueError("the grounding batch has no labels")
        return out.lm_loss

    def conditioning(self, batch: dict):
        """(condition tokens (B, Q [+ 1], D), the backbone's output). Query tokens read the backbone's hidden
        states; with pointing, one more token carries the points. Gradients from the action expert into the
        backbone are decayed."""
        out = self.backbone(batch, with_lm_loss=False)
        cond = self.qformer(out.hidden, out.mask, self.grad_decay)
        if self.point_proj is not None and out.pointing is not None:
            points = grad_decay(out.pointing.features(), self.grad_decay)
            cond = torch.cat([cond, self.point_proj(points).unsqueeze(1)], dim=1)
        return cond, out

    def action_losses(self, batch: dict, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """{"action": the action expert's loss, "point": the pointing loss (when the model points and the batch has
        point labels)}."""
        cond, out = self.conditioning(batch)
        losses = {"action": self.expert.loss(cond, batch["state"], batch["actions"], self.repeats, generator)}
        if out.pointing is not None and "point_targets" in batch:
            pointing = out.pointing
            losses["point"] = point_loss(pointing, batch["point_targets"], batch["point_visible"], batch["grasp_yaw"])
            if "query_ids" in batch:  # one more object per sample, named by its own phrase
                query = self.backbone.point(out.images, batch["query_ids"], batch["query_mask"])
                losses["point"] = losses["point"] + point_loss(
                    query, batch["query_points"][:, :, None], batch["query_visible"][:, :, None], None
                )
        return losses

    def action_loss(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.action_losses(batch, generator)["action"]

    @torch.no_grad()
    def predict_actions(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalized action chunks (B, chunk, action_dim)."""
        cond, _ = self.conditioning(batch)
        return self.expert.sample(cond, batch["state"], steps=self.sample_steps, generator=generator)

    @torch.no_grad()
    def generate(self, batch: dict, max_new_tokens: int = 48, tasks: list[str] | None = None) -> list[str]:
        if tasks is None:
            return self.backbone.generate(batch, max_new_tokens=max_new_tokens)
        return self.backbone.generate(batch, max_new_tokens=max_new_tokens, tasks=tasks)


def point_loss(pointing, targets: torch.Tensor, visible: torch.Tensor, grasp_yaw: torch.Tensor | None) -> torch.Tensor:
    """Pointing loss of the first R roles of `pointing` against targets (B, N, R, 2) in [-1, 1] and visibility
    (B, N, R): cross-entropy of the heatmap at the label's cell plus the soft-argmax point's L1 distance, where
    visible; logistic loss on visibility everywhere; with `grasp_yaw` (B, 2), the pick role's yaw everywhere."""
    r = targets.shape[2]
    logits, points = pointing.logits[:, :, :r], pointing.points[:, :, :r]
    h, w = logits.shape[-2:]
    col = ((targets[..., 0] + 1) / 2 * w).clamp(0, w - 1e-3).long()
    row = ((targets[..., 1] + 1) / 2 * h).clamp(0, h - 1e-3).long()
    ce = F.cross_entropy(logits.flatten(0, 2).flatten(1), (row * w + col).flatten(), reduction="none")
    l1 = (points - targets).abs().sum(-1).flatten()
    weight = visible.float().flatten()
    loss = ((0.1 * ce + 10.0 * l1) * weight).sum() / weight.sum().clamp(min=1.0)
    loss = loss + F.binary_cross_entropy_with_logits(pointing.visible[:, :, :r], visible.float())
    if grasp_yaw is not None:
        loss = loss + F.mse_loss(pointing.yaw[:, :, 0], grasp_yaw[:, None, :].expand_as(pointing.yaw[:, :, 0]))
    return loss


def action_space(data_cfg) -> ActionSpace:
    """The action space of a recipe's data section (the state vector's size follows `data.state`)."""
    from dataengine.train.actions import motion_dim
    from dataengine.train.observations import STATE_DIMS

    action_dim = motion_dim(data_cfg.actions) + 1
    return ActionSpace(action_dim=action_dim, chunk_size=data_cfg.chunk_size, state_dim=STATE_DIMS[data_cfg.state])


def build_policy(model_cfg, space: ActionSpace, image_size: int):
    """(policy, chat encoder) for a recipe's model section."""
    if model_cfg.policy == "state_mlp":
        from dataengine.train.models.state_mlp import StateEncoder, StateMLPPolicy

        return StateMLPPolicy(model_cfg.state_mlp, space), StateEncoder()
    if model_cfg.backbone == "tiny":
        from dataengine.train.models.tiny_vlm import TinyVLM, TinyVLMConfig

        t = model_cfg.tiny
        backbone = TinyVLM(
            TinyVLMConfig(
                image_size=image_size,
                patch_size=t.patch_size,
                dim=t.dim,
                layers=t.layers,
                heads=t.heads,
                max_text_len=t.max_text_len,
                qformer_layer=model_cfg.qformer_layer,
                stem=t.stem,
                max_images=t.max_images,
                pointing=t.pointing,
                point_channels=t.point_channels,
                token_pool=t.token_pool,
            )
        )
        encoder = backbone.make_encoder()
    else:
        from dataengine.train.models.qwen import load_qwen_backbone

        backbone, encoder = load_qwen_backbone(model_cfg.qwen, model_cfg.qformer_layer)
    return DualSystemPolicy(backbone, model_cfg, space), encoder
