"""Transformer building blocks shared by the tiny VLM, the querying transformer and the action expert."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention on `scaled_dot_product_attention`; queries and keys may come from different sequences."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """x (B, Tq, D), context (B, Tk, Dk) or None for self-attention, mask bool (B, 1|Tq, Tk): True = attend."""
        context = x if context is None else context
        b, tq, d = x.shape
        q = self.q(x).view(b, tq, self.heads, d // self.heads).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn_mask = None if mask is None else mask.unsqueeze(1)  # (B, 1, Tq|1, Tk): broadcast over heads
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(b, tq, d))


class Mlp(nn.Sequential):
    def __init__(self, dim: int, ratio: int = 4) -> None:
        super().__init__(nn.Linear(dim, ratio * dim), nn.GELU(approximate="tanh"), nn.Linear(ratio * dim, dim))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, MLP."""

    def __init__(self, dim: int, heads: int, cross_dim: int | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.cross = None
        if cross_dim is not None:
            self.norm_cross = nn.LayerNorm(dim)
            self.cross = Attention(dim, heads, kv_dim=cross_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)

    def forward(self, x, mask=None, context=None, context_mask=None):
        x = x + self.attn(self.norm1(x), mask=mask)
        if self.cross is not None:
            x = x + self.cross(self.norm_cross(x), context=context, mask=context_mask)
        return x + self.mlp(self.norm2(x))


class AdaLNBlock(nn.Module):
    """DiT block: self-attention and MLP modulated (shift, scale, gate) by a conditioning vector, adaLN-zero init."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = Mlp(dim)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), cond (B, D)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond).unsqueeze(1).chunk(6, dim=-1)
        x = x + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of flow times t in [0, 1] (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))
