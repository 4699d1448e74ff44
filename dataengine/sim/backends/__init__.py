"""Simulator backends behind one interface (`base.SimBackend`). `get_backend(name)` picks one by name."""

from __future__ import annotations

from dataengine.errors import RecipeError
from dataengine.sim.backends.base import CameraFrame, CameraParams, IkResult, RobotReading, SimBackend, SimState

BACKENDS = ("mujoco", "isaac")


def get_backend(name: str = "mujoco", **options) -> SimBackend:
    """A fresh backend instance. MuJoCo is the default; other backends are imported only when asked for."""
    if name == "mujoco":
        from dataengine.sim.backends.mujoco import MujocoBackend

        return MujocoBackend(**options)
    if name == "isaac":
        try:
            from dataengine.sim.backends.isaac import IsaacBackend  # type: ignore[import-not-found]
        except ImportError as exc:
            raise RecipeError(
                "the 'isaac' backend is not available in this installation (dataengine/sim/backends/isaac.py "
                f"or Isaac Sim is missing: {exc})"
            ) from exc
        return IsaacBackend(**options)
    raise RecipeError(f"unknown simulator backend {name!r}; valid: {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "CameraFrame",
    "CameraParams",
    "IkResult",
    "RobotReading",
    "SimBackend",
    "SimState",
    "get_backend",
]
