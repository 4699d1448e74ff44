"""The `TaskFamily` protocol: everything the generator needs to know about one kind of task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from dataengine.records.layout import Layout
    from dataengine.rewrite.base import SceneFacts
    from dataengine.sim.assets import Catalog
    from dataengine.sim.backends.base import SimBackend
    from dataengine.sim.expert import Plan
    from dataengine.sim.recipe import SimRecipe
    from dataengine.sim.render import RenderedEpisode
    from dataengine.sim.rollout import Trajectory


class TaskFamily(Protocol):
    """One kind of task. Every method is deterministic given its inputs (the rng included); a failed attempt raises
    `sim.sampler.AttemptFailed` with a snake_case reason (a stat key)."""

    name: str

    def sample_layout(self, recipe: SimRecipe, catalog: Catalog, rng: np.random.Generator) -> Layout:
        """One random scene; the objects' `role`s say what the instruction names (e.g. pick, place, distractor)."""
        ...

    def plan(self, backend: SimBackend, layout: Layout, recipe: SimRecipe) -> Plan:
        """The scripted expert's per-step targets from the backend's current state."""
        ...

    def execute(
        self, backend: SimBackend, layout: Layout, plan: Plan, *, check: bool = True, noise: np.ndarray | None = None
    ) -> Trajectory:
        """Run the plan in physics, recording every step; with `check`, AttemptFailed on the first failure."""
        ...

    def success(self, backend: SimBackend, layout: Layout) -> str | None:
        """The success predicate on the backend's current state: None on success, else the failure reason."""
        ...

    def relation(self, layout: Layout, recipe: SimRecipe) -> str:
        """The spatial relation the instruction uses (e.g. in / on)."""
        ...

    def instruction(self, layout: Layout, relation: str) -> str:
        """The base (template) instruction of the scene."""
        ...

    def scene_facts(self, episode_key: str, layout: Layout, relation: str, split: str) -> SceneFacts:
        """What the rewriters may say about the scene, the base instruction included (its instruction roles)."""
        ...

    def labels(
        self,
        layout: Layout,
        plan: Plan,
        trajectory: Trajectory,
        rendered: RenderedEpisode,
        recipe: SimRecipe,
        base_dir: str | None,
    ) -> dict[str, np.ndarray]:
        """Per-step, per-camera label arrays (boxes, visibility, points, traces) of a rendered episode."""
        ...
