"""Shared set-up of the simulator-output tests (`tests/test_simout_*.py`).

`simout_episodes(tmp_path_factory)` generates a few fast-preset episodes (non-square 160x120 frames, two cameras,
segmentation stored) once per pytest session, whichever test module asks first. `lerobot_python()` finds the
interop environment that holds LeRobot's own reader (see `tests/interop/setup_lerobot_venv.sh`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes/sim/pick_place_demo.yaml"
EPISODES = 3
WIDTH, HEIGHT = 160, 120
INTEROP_ENV = "DATAENGINE_LEROBOT_PYTHON"
DEFAULT_INTEROP_PYTHON = REPO / ".venv-lerobot" / "bin" / "python"


def simout_episodes(tmp_path_factory) -> Path:
    """A `sim generate` output folder with EPISODES rendered episodes (2 shards), generated once per session."""
    out = tmp_path_factory.getbasetemp() / "simout_episodes"
    done = out / "_simout_done"
    if done.exists():
        return out
    pytest.importorskip("mujoco")
    pytest.importorskip("mink")
    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe

    render = {"preset": "fast", "cameras": ["front", "wrist"], "width": WIDTH, "height": HEIGHT, "segmentation": True}
    recipe = load_recipe(DEMO, episodes=EPISODES, episodes_per_shard=2, render=render)
    generate(recipe, out, workers=0, show_progress=False)
    done.write_text("ok")
    return out


def interop_required() -> bool:
    flags = (os.environ.get("CI", ""), os.environ.get("DATAENGINE_REQUIRE_INTEROP", ""))
    return any(v.strip().lower() in ("1", "true", "yes") for v in flags)


def lerobot_python() -> Path:
    """The interop python, or skip (fail under CI=1 / DATAENGINE_REQUIRE_INTEROP=1) with how to create it."""
    path = Path(os.environ.get(INTEROP_ENV) or DEFAULT_INTEROP_PYTHON)
    if path.is_file():
        return path
    message = (
        f"LeRobot interop python not found at {path}. Create it with `bash tests/interop/setup_lerobot_venv.sh` "
        f"(makes .venv-lerobot/ in the repo root) or point {INTEROP_ENV} at a python that has `lerobot-dataset`."
    )
    if interop_required():
        pytest.fail(message + " (required because CI / DATAENGINE_REQUIRE_INTEROP is set)")
    pytest.skip(message)


def lerobot_doctor() -> Path:
    """`lerobot-doctor` of the interop environment (beside its python), or skip / fail like `lerobot_python`."""
    path = lerobot_python().parent / "lerobot-doctor"
    if path.is_file():
        return path
    message = f"lerobot-doctor not found at {path}; rerun `bash tests/interop/setup_lerobot_venv.sh` (it installs it)"
    if interop_required():
        pytest.fail(message + " (required because CI / DATAENGINE_REQUIRE_INTEROP is set)")
    pytest.skip(message)
