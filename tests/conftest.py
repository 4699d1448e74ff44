"""Shared test set-up: headless rendering and quiet Ray before anything imports mujoco or ray."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest


@pytest.fixture(scope="session")
def every_source(tmp_path_factory):
    """{source: folder of converted shards} for every converter's fixture (tests/fixtures/every_source.py)."""
    from tests.fixtures.every_source import convert_every_source
    from tests.simout_helpers import simout_episodes

    return convert_every_source(tmp_path_factory.mktemp("every_source"), simout_episodes(tmp_path_factory))
