"""Find one validated episode: sample, plan and execute attempts (physics only) with the recipe's task family
(`sim.families`) until one succeeds.

Attempt `a` of episode `i` draws everything from `default_rng([seed, i, a])`, so the episode found depends only on
(recipe, seed, index), never on which worker ran it or what it ran before.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from dataengine.records.layout import Layout
from dataengine.sim.assets import Catalog
from dataengine.sim.backends.base import SimBackend
from dataengine.sim.expert import Plan
from dataengine.sim.families import get_family
from dataengine.sim.perturb import episode_is_perturbed, joint_noise
from dataengine.sim.recipe import SimRecipe
from dataengine.sim.rollout import Trajectory
from dataengine.sim.sampler import AttemptFailed


@dataclass
class FoundEpisode:
    index: int
    attempt: int
    layout: Layout
    plan: Plan
    trajectory: Trajectory
    failures: Counter = field(default_factory=Counter)
    cpu_s: float = 0.0
    perturbed: bool = False


class EpisodeNotFound(Exception):
    def __init__(self, index: int, failures: Counter) -> None:
        super().__init__(f"episode {index}: no success in {sum(failures.values())} attempts ({dict(failures)})")
        self.index = index
        self.failures = failures


def attempt_rng(seed: int, index: int, attempt: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, attempt])


def look_seed(seed: int, index: int) -> list[int]:
    """Seed of the render-time look of an episode (separate from the physics attempts)."""
    return [seed, index, 1_000_003]


def first_sampled_layout(recipe: SimRecipe, catalog: Catalog, index: int) -> tuple[Layout, int, Counter]:
    """The first layout the family's sampler accepts for episode `index`, without physics: (layout, attempt, the
    reasons of the rejected attempts). Raises EpisodeNotFound when every attempt is rejected."""
    family = get_family(recipe.task.family)
    failures: Counter = Counter()
    for attempt in range(recipe.max_attempts_per_episode):
        try:
            return family.sample_layout(recipe, catalog, attempt_rng(recipe.seed, index, attempt)), attempt, failures
        except AttemptFailed as exc:
            failures[exc.reason] += 1
    raise EpisodeNotFound(index, failures)


def find_episode(recipe: SimRecipe, catalog: Catalog, backend: SimBackend, index: int) -> FoundEpisode:
    """Loop over attempts until one passes every check. Raises EpisodeNotFound after the recipe's maximum."""
    cpu0 = time.process_time()
    failures: Counter = Counter()
    perturbed = episode_is_perturbed(recipe.perturb, recipe.seed, index)
    family = get_family(recipe.task.family)
    for attempt in range(recipe.max_attempts_per_episode):
        rng = attempt_rng(recipe.seed, index, attempt)
        try:
            layout = family.sample_layout(recipe, catalog, rng)
            backend.load(layout, control_hz=recipe.control_hz, quality=recipe.render.quality)
            plan = family.plan(backend, layout, recipe)
            noise = None
            if perturbed:
                steps = len(plan.arm_targets_rad)
                noise = joint_noise(recipe.perturb, plan.phases, steps, recipe.seed, index, attempt)
            trajectory = family.execute(backend, layout, plan, noise=noise)
        except AttemptFailed as exc:
            failures[exc.reason] += 1
            continue
        cpu_s = time.process_time() - cpu0
        return FoundEpisode(index, attempt, layout, plan, trajectory, failures, cpu_s, perturbed)
    raise EpisodeNotFound(index, failures)
