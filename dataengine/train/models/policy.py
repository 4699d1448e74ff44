"""The dual-system policy: a vision-language backbone (System 2) + querying transformer + action expert (System 1).

`spatial_loss` is the backbone's next-token loss on grounding answers; `action_loss` runs the backbone on the frame
and the (spatially prompted) instruction, lets the queries read its hidden states through the gradient decay, and
trains the action expert by flow matching. `backbone_parameters()` are the parameters both losses share.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dataengine.train.models.action_expert import FlowMatchingActionExpert
from dataengine.train.models.qformer import QueryTransformer


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
        return [p for m in (self.qformer, self.expert) for p in m.parameters() if p.requires_grad]

    def spatial_loss(self, batch: dict) -> torch.Tensor:
        out = self.backbone(batch, with_lm_loss=True)
        if out.lm_loss is None:
            raise ValueError("the grounding batch has no labels")
        return out.lm_loss

    def conditioning(self, batch: dict) -> torch.Tensor:
        """Query tokens (B, Q, D) from the backbone's hidden states; gradients into the backbone are decayed."""
        out = self.backbone(batch, with_lm_loss=False)
        return self.qformer(out.hidden, out.mask, self.grad_decay)

    def action_loss(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        cond = self.conditioning(batch)
        return self.expert.loss(cond, batch["state"], batch["actions"], self.repeats, generator)

    @torch.no_grad()
    def predict_actions(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalized action chunks (B, chunk, action_dim)."""
        cond = self.conditioning(batch)
        return self.expert.sample(cond, batch["state"], steps=self.sample_steps, generator=generator)

    @torch.no_grad()
    def generate(self, batch: dict, max_new_tokens: int = 48) -> list[str]:
        return self.backbone.generate(batch, max_new_tokens=max_new_tokens)


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
            )
        )
        encoder = backbone.make_encoder()
    else:
        from dataengine.train.models.qwen import load_qwen_backbone

        backbone, encoder = load_qwen_backbone(model_cfg.qwen, model_cfg.qformer_layer)
    return DualSystemPolicy(backbone, model_cfg, space), encoder
