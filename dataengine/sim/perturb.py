"""Recovery demonstrations: the noise a perturbed episode adds to the joint targets it executes (`perturb` in a sim
recipe, see `PerturbSpec`).

Whether episode `i` is perturbed is drawn once per episode (not per attempt), so the perturbed share of a run is
the recipe's `episode_fraction` whatever the retries; the noise itself is drawn per attempt. Both come from their
own seeded streams, so recipes without `perturb` draw exactly what they always drew.
"""

from __future__ import annotations

import math

import numpy as np

from dataengine.sim.recipe import PerturbSpec

_EPISODE_STREAM = 2_000_003
_NOISE_STREAM = 2_000_029


def episode_is_perturbed(spec: PerturbSpec | None, seed: int, index: int) -> bool:
    if spec is None or spec.episode_fraction <= 0:
        return False
    return bool(np.random.default_rng([seed, index, _EPISODE_STREAM]).random() < spec.episode_fraction)


def joint_noise(
    spec: PerturbSpec, phases: list[tuple[str, int, int]], steps: int, seed: int, index: int, attempt: int
) -> np.ndarray:
    """(steps, 7) Ornstein-Uhlenbeck noise with stationary std `joint_noise_rad`, zero outside `spec.phases`; it
    starts from zero at the beginning of every perturbed phase, so it never jumps in."""
    rng = np.random.default_rng([seed, index, attempt, _NOISE_STREAM])
    decay = math.exp(-1.0 / spec.correlation_steps)
    kick = spec.joint_noise_rad * math.sqrt(1.0 - decay**2)
    noise = np.zeros((steps, 7))
    for name, start, end in phases:
        if name not in spec.phases:
            continue
        state = np.zeros(7)
        for t in range(start, min(end, steps)):
            state = decay * state + kick * rng.standard_normal(7)
            noise[t] = state
    return noise
