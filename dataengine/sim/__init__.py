"""Simulated pick-and-place demonstrations: layouts, expert, validation, rendering, labels, episode shards.

Entry points: `generate.generate(recipe, out_dir, ...)` (the `dataengine sim generate` job), `replay.replay(path)`,
`recipe.load_recipe(path)`, and the backend interface in `backends/base.py` (`get_backend(name)`). The scene
description (`Layout`) is a record: `dataengine.records.layout`. Importing this package does not import MuJoCo.
"""
