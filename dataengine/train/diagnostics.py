"""Gradient-conflict diagnostic between the spatial (LM) loss and the action loss, on the shared LM parameters.

Definition (logged every `diagnostics.every` co-training steps):
- g_s(t) = gradient of the *weighted* spatial loss (w_s * L_spatial) w.r.t. the backbone parameters at step t;
  g_a(t) = gradient of the weighted action loss (w_a * L_action) w.r.t. the same parameters, i.e. after the
  gradient decay (what actually reaches the language model). Both are flattened into vectors of dimension n
  (or, when n > max_dim, CountSketch projections to sketch_dim, which preserve inner products in expectation).
- `grad_cos`: cos(g_s(t), g_a(t)) = <g_s, g_a> / (|g_s| |g_a|); negative means the losses pull the LM apart.
- Subspaces: S = span{g_s(t-k+1), ..., g_s(t)}, A = span{g_a(t-k+1), ..., g_a(t)} over the last k = `window`
  diagnostic steps. Orthonormal bases Q_S, Q_A come from the SVD of the stacked, unit-normalized gradients
  (directions with singular value < 1e-6 x the largest are dropped). The principal angles 0 <= theta_1 <= ... <=
  theta_r (r = min(dim S, dim A)) satisfy cos(theta_i) = sigma_i(Q_S^T Q_A).
- `subspace_sim` = (1/r) sum_i cos^2(theta_i) = ||Q_S^T Q_A||_F^2 / r, in [0, 1]: 1 when one subspace contains the
  other, 0 when they are orthogonal (a normalized projection / Grassmann similarity).
- `subspace_cos_min_angle` = cos(theta_1) (largest overlap), `subspace_cos_max_angle` = cos(theta_r).
- `grad_norm_spatial`, `grad_norm_action`: |g_s(t)|, |g_a(t)| (sketched norms when sketching).
"""

from __future__ import annotations

import hashlib
from collections import deque

import torch


def flat_grads(params: list[torch.nn.Parameter]) -> torch.Tensor:
    """All gradients in one float32 vector (zeros where a parameter has no gradient)."""
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1).float() for p in params]
    )


class CountSketch:
    """A fixed random projection R^n -> R^m: coordinate i goes to bucket h(i) with sign s(i) (seeded per parameter)."""

    def __init__(self, params: list[torch.nn.Parameter], dim: int, seed: int = 0) -> None:
        self.dim, self.seed, self.params = dim, seed, params

    def __call__(self) -> torch.Tensor:
        out = None
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.detach().reshape(-1).float()
            gen = torch.Generator(device=g.device).manual_seed(self.seed * 1_000_003 + i)
            buckets = torch.randint(0, self.dim, (g.numel(),), generator=gen, device=g.device)
            signs = torch.randint(0, 2, (g.numel(),), generator=gen, device=g.device).float() * 2 - 1
            out = torch.zeros(self.dim, device=g.device) if out is None else out
            out.index_add_(0, buckets, g * signs)
        return out if out is not None else torch.zeros(self.dim)


def _basis(vectors: list[torch.Tensor]) -> torch.Tensor:
    """Orthonormal basis (n, r) of the span of unit-normalized vectors."""
    m = torch.stack([v / v.norm().clamp_min(1e-30) for v in vectors], dim=1).double()
    u, s, _ = torch.linalg.svd(m, full_matrices=False)
    keep = s > 1e-6 * s.max().clamp_min(1e-30)
    return u[:, keep]


def principal_angle_cosines(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """cos(theta_i) of the principal angles between span(a) and span(b), descending."""
    qa, qb = _basis(a), _basis(b)
    return torch.linalg.svdvals(qa.T @ qb).clamp(0, 1)


class GradientConflict:
    """Collects (g_spatial, g_action) pairs and reports the metrics defined in the module docstring."""

    def __init__(
        self, params: list[torch.nn.Parameter], window: int = 8, max_dim: int = 1 << 22, sketch_dim: int = 1 << 16
    ):
        self.params = params
        n = sum(p.numel() for p in params)
        self.sketch = CountSketch(params, sketch_dim) if n > max_dim else None
        self.spatial: deque[torch.Tensor] = deque(maxlen=window)
        self.action: deque[torch.Tensor] = deque(maxlen=window)

    def capture(self) -> torch.Tensor:
        """The current gradients of the shared parameters as a vector (sketched if large), on the CPU."""
        vec = self.sketch() if self.sketch is not None else flat_grads(self.params)
        return vec.cpu()

    def add(self, g_spatial: torch.Tensor, g_action: torch.Tensor) -> dict[str, float]:
        self.spatial.append(g_spatial)
        self.action.append(g_action)
        ns, na = g_spatial.norm(), g_action.norm()
        cos = float(g_spatial @ g_action / (ns * na)) if ns > 0 and na > 0 else float("nan")
        out = {"grad_cos": cos, "grad_norm_spatial": float(ns), "grad_norm_action": float(na)}
        if ns > 0 and na > 0:
            cosines = principal_angle_cosines(list(self.spatial), list(self.action))
            out.update(
                subspace_sim=float((cosines**2).mean()),
                subspace_cos_min_angle=float(cosines.max()),
                subspace_cos_max_angle=float(cosines.min()),
                subspace_window=len(self.spatial),
            )
        return out


def fingerprint_params(params: list[torch.nn.Parameter]) -> str:
    return hashlib.sha1(",".join(f"{tuple(p.shape)}" for p in params).encode()).hexdigest()[:12]
