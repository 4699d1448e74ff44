"""The action expert (System 1): a small diffusion transformer trained by flow matching over action chunks, or a
regression MLP (`RegressionActionExpert`).

Tokens are [condition tokens (the querying transformer's output), one state token, one token per chunk step]; the
flow time modulates every block (adaLN-zero). Training: x_t = t * a + (1 - t) * noise with t ~ U(0, 1), target
velocity a - noise, loss = mean squared error over the chunk, each sample repeated with fresh (t, noise) draws
(`repeats`, upstream `repeated_diffusion_steps`). Sampling: Euler integration of the velocity from noise (t=0) to
the action chunk (t=1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dataengine.train.models.blocks import AdaLNBlock, timestep_embedding


class FlowMatchingActionExpert(nn.Module):
    def __init__(
        self,
        cond_dim: int,
        action_dim: int,
        state_dim: int,
        chunk_size: int,
        dim: int = 128,
        layers: int = 3,
        heads: int = 4,
    ) -> None:
        super().__init__()
        self.action_dim, self.chunk_size, self.dim = action_dim, chunk_size, dim
        self.cond_proj = nn.Linear(cond_dim, dim)
        self.state_proj = nn.Linear(state_dim, dim)
        self.action_in = nn.Linear(action_dim, dim)
        self.step_pos = nn.Parameter(torch.randn(chunk_size, dim) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(AdaLNBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.action_out = nn.Linear(dim, action_dim)

    def velocity(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """x_t (B, chunk, A), t (B,), cond (B, Q, cond_dim), state (B, S) -> velocity (B, chunk, A)."""
        tokens = torch.cat(
            [self.cond_proj(cond), self.state_proj(state).unsqueeze(1), self.action_in(x_t) + self.step_pos], dim=1
        )
        time = self.time_mlp(timestep_embedding(t, self.dim))
        for block in self.blocks:
            tokens = block(tokens, time)
        return self.action_out(self.norm(tokens[:, -self.chunk_size :]))

    def loss(
        self,
        cond: torch.Tensor,
        state: torch.Tensor,
        actions: torch.Tensor,
        repeats: int = 1,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Flow-matching loss for normalized action chunks (B, chunk, A)."""
        if repeats > 1:
            cond, state, actions = (x.repeat_interleave(repeats, dim=0) for x in (cond, state, actions))
        noise = torch.randn(actions.shape, generator=generator, device=actions.device, dtype=actions.dtype)
        t = torch.rand(actions.shape[0], generator=generator, device=actions.device, dtype=actions.dtype)
        x_t = t[:, None, None] * actions + (1 - t[:, None, None]) * noise
        return F.mse_loss(self.velocity(x_t, t, cond, state), actions - noise)

    @torch.no_grad()
    def sample(
        self, cond: torch.Tensor, state: torch.Tensor, steps: int = 10, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Integrate the learned velocity from Gaussian noise; returns normalized action chunks (B, chunk, A)."""
        shape = (cond.shape[0], self.chunk_size, self.action_dim)
        x = torch.randn(shape, generator=generator, device=cond.device, dtype=cond.dtype)
        dt = 1.0 / steps
        for i in range(steps):
            t = torch.full((shape[0],), i * dt, device=cond.device, dtype=cond.dtype)
            x = x + dt * self.velocity(x, t, cond, state)
        return x


class RegressionActionExpert(nn.Module):
    """The fast alternative (`model.expert: mlp`): an MLP from [condition tokens, state] straight to the chunk,
    trained by regression (mean squared error on the motion, logistic loss on the gripper command). The scripted
    expert is deterministic, so a chunk has one right answer and one forward pass predicts it."""

    def __init__(
        self,
        cond_dim: int,
        num_cond: int,
        action_dim: int,
        state_dim: int,
        chunk_size: int,
        hidden: int = 512,
        layers: int = 2,
        gripper_weight: float = 0.1,
    ) -> None:
        super().__init__()
        self.action_dim, self.chunk_size, self.gripper_weight = action_dim, chunk_size, gripper_weight
        width, blocks = cond_dim * num_cond + state_dim, []
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        self.body = nn.Sequential(*blocks)
        self.out = nn.Linear(width, chunk_size * action_dim)

    def forward(self, cond: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        x = torch.cat([cond.flatten(1), state], dim=1)
        return self.out(self.body(x)).view(-1, self.chunk_size, self.action_dim)

    def loss(self, cond, state, actions, repeats: int = 1, generator=None) -> torch.Tensor:
        out = self(cond, state)
        motion = F.mse_loss(out[..., :-1], actions[..., :-1])
        gripper = F.binary_cross_entropy_with_logits(out[..., -1], (actions[..., -1] > 0).float())
        return motion + self.gripper_weight * gripper

    @torch.no_grad()
    def sample(self, cond, state, steps: int = 1, generator=None) -> torch.Tensor:
        out = self(cond, state)
        return torch.cat([out[..., :-1], torch.where(out[..., -1:] > 0, 1.0, -1.0)], dim=-1)
