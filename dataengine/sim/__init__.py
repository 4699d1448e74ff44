"""Simulated pick-and-place demonstrations: layouts, expert, validation, rendering, labels, episode shards.

Entry points: `generate.generate(recipe, out_dir, ...)` (the `dataengine sim generate` job), `replay.replay(path)`,
`spec.load_recipe(path)`, and the backend interface in `backends/base.py` (`get_backend(name)`).
Importing this package does not import MuJoCo.
"""

from dataengine.sim.layout import LAYOUT_SCHEMA, Layout, Look, RenderQuality, SceneObject

__all__ = ["LAYOUT_SCHEMA", "Layout", "Look", "RenderQuality", "SceneObject"]
