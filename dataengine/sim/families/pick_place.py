"""Pick-and-place, the first task family: pick one object and put it into (or onto) a container, with distractors.

Layout sampling (`sim.sampler`), the top-down expert (`sim.expert`), execution with grasp / transport checks
(`sim.rollout`), the geometric success predicate (`sim.predicates`), the template instruction and scene facts
(`sim.language`) and the label arrays (`sim.labels`) are its parts; this class is where the generator meets them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


class PickPlace:
    name = "pick_place"

    def sample_layout(self, recipe: SimRecipe, catalog: Catalog, rng: np.random.Generator) -> Layout:
        from dataengine.sim.sampler import sample_layout

        return sample_layout(recipe, catalog, rng)

    def plan(self, backend: SimBackend, layout: Layout, recipe: SimRecipe) -> Plan:
        from dataengine.sim.expert import plan_pick_place

        return plan_pick_place(backend, layout, recipe.task.expert)

    def execute(
        self, backend: SimBackend, layout: Layout, plan: Plan, *, check: bool = True, noise: np.ndarray | None = None
    ) -> Trajectory:
        from dataengine.sim.rollout import execute

        return execute(backend, layout, plan, check=check, noise=noise)

    def success(self, backend: SimBackend, layout: Layout) -> str | None:
        from dataengine.sim.predicates import check_success

        return check_success(backend, layout)

    def relation(self, layout: Layout, recipe: SimRecipe) -> str:
        from dataengine.sim.language import relation_for

        return relation_for(layout, recipe.task.relation_by_container)

    def instruction(self, layout: Layout, relation: str) -> str:
        from dataengine.sim.language import base_instruction

        return base_instruction(layout, relation)

    def scene_facts(self, episode_key: str, layout: Layout, relation: str, split: str) -> SceneFacts:
        from dataengine.sim.language import scene_facts

        return scene_facts(episode_key, layout, relation, split)

    def labels(
        self,
        layout: Layout,
        plan: Plan,
        trajectory: Trajectory,
        rendered: RenderedEpisode,
        recipe: SimRecipe,
        base_dir: str | None,
    ) -> dict[str, np.ndarray]:
        from dataengine.sim.labels import compute_labels

        grasp_step = next(b for n, _, b in plan.phases if n == "close") - 1
        return compute_labels(
            layout, trajectory, rendered, plan.grasp_point_m, grasp_step, plan.place_point_m, recipe.trace_horizon,
            base_dir,
        )  # fmt: skip
