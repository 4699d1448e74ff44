"""The querying transformer between the language model and the action expert, and the gradient decay on its input.

Learnable queries read the language model's hidden states by cross-attention. Every gradient that flows from the
action expert back into the language model crosses `grad_decay`, which is the identity in the forward pass and
multiplies the gradient by `scale` in the backward pass (ST4VLA: 0.5; the upstream hook is commented out, here it
is applied on every call).
"""

from __future__ import annotations

import torch
from torch import nn

from dataengine.train.models.blocks import Block


class _GradDecay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


def grad_decay(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; backward multiplies the incoming gradient by `scale` (0 stops it, 1 passes it)."""
    if not 0.0 <= scale <= 1.0:
        raise ValueError(f"gradient decay must be in [0, 1], got {scale}")
    return _GradDecay.apply(x, float(scale))


class QueryTransformer(nn.Module):
    """`num_queries` learnable queries cross-attend to LM hidden states (B, T, lm_dim) -> (B, num_queries, dim)."""

    def __init__(self, lm_dim: int, dim: int, num_queries: int = 16, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(lm_dim)
        self.input_proj = nn.Linear(lm_dim, dim)
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, cross_dim=dim) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, decay: float) -> torch.Tensor:
        """hidden (B, T, lm_dim) from the LM, mask bool (B, T) True on real tokens; `decay` scales the gradient
        that flows back into `hidden`."""
        hidden = grad_decay(hidden, decay)
        memory = self.input_proj(self.input_norm(hidden.float()))
        x = self.queries.unsqueeze(0).expand(hidden.shape[0], -1, -1)
        context_mask = mask[:, None, :]  # (B, 1, T)
        for block in self.blocks:
            x = block(x, context=memory, context_mask=context_mask)
        return self.norm(x)
