"""Moved to `dataengine.sim.recipe`; this alias keeps imports of branches in flight working (delete it once
issue 13's training work has landed)."""

from dataengine.sim.recipe import *  # noqa: F403
