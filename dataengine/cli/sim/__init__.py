"""`dataengine sim ...`: the simulator's command group, one module per kind of command.

- `generate.py`: generate | replay | probe (demonstrations, MuJoCo on CPU by default);
- `plan.py`: plan (a cluster budget for a recipe, docs/scale.md);
- `assets.py`: assets import | fixtures (a user's meshes -> the generator's asset catalog);
- `outputs.py`: to-grounding | preview | bench (what generated episodes become, docs/sim_outputs.md);
- `usd.py`: export-usd (the scenes of a recipe as USD stages for Isaac Sim).
"""

from __future__ import annotations

import importlib

import typer

MODULES = ("generate", "plan", "assets", "outputs", "usd")  # the order `dataengine sim --help` lists them in


def register(app: typer.Typer) -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app)
