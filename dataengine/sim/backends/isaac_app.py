"""Isaac Sim bootstrap, pinned to ONE major version: Isaac Sim 5.1 (`isaacsim` 5.1.x on Python 3.11).

Why 5.x: this project runs on Python 3.11, which is exactly what Isaac Sim 5.0/5.1 wheels are built for (4.5 needs
3.10, 6.x needs 3.12 and deprecates `isaacsim.core.api`, `isaacsim.sensors.camera` and the Franka examples used
here). The PyPI `isaacsim` package is a 1 kB stub that downloads the real wheels from pypi.nvidia.com at install.

`SimulationApp` must be created before any other `omni` / `isaacsim.*` import, once per process; everything in
this module imports lazily so that `import dataengine` never touches Isaac Sim.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
from typing import Any

from dataengine.errors import MissingDependencyError

log = logging.getLogger(__name__)

ISAAC_SIM_PINNED_MAJOR = 5
ISAAC_SIM_PINNED = "5.1.0"
ISAAC_SIM_INSTALL_HINT = (
    f"pip install 'isaacsim[all,extscache]=={ISAAC_SIM_PINNED}' --extra-index-url https://pypi.nvidia.com "
    "(Python 3.11, Linux x86_64 with GLIBC >= 2.35, an NVIDIA RTX GPU with a recent driver; accept the "
    "Omniverse EULA with OMNI_KIT_ACCEPT_EULA=YES). See docs/isaac.md."
)

_APP: Any = None


class IsaacSimUnavailableError(MissingDependencyError):
    """Isaac Sim is not installed here, or not the pinned major version."""

    def __init__(self, detail: str) -> None:
        Exception.__init__(
            self,
            f"The Isaac Sim backend needs Isaac Sim {ISAAC_SIM_PINNED_MAJOR}.x: {detail}. "
            f"Install it on an RTX node with: {ISAAC_SIM_INSTALL_HINT}",
        )
        self.package = "isaacsim"
        self.extra = "isaac"


def isaac_sim_version() -> str | None:
    """The installed `isaacsim` distribution version, or None (no import of Isaac Sim itself)."""
    if importlib.util.find_spec("isaacsim") is None:
        return None
    try:
        return importlib.metadata.version("isaacsim")
    except importlib.metadata.PackageNotFoundError:  # a source build on sys.path: trust it
        return "unknown"


def require_isaac_sim() -> str:
    """Fail at once, before any work, unless the pinned Isaac Sim is importable. Returns its version."""
    version = isaac_sim_version()
    if version is None:
        raise IsaacSimUnavailableError("the 'isaacsim' package is not installed in this Python environment")
    major = version.split(".")[0]
    if version != "unknown" and major != str(ISAAC_SIM_PINNED_MAJOR):
        raise IsaacSimUnavailableError(
            f"found isaacsim {version}; this backend uses the {ISAAC_SIM_PINNED_MAJOR}.x API"
        )
    return version


def simulation_app(headless: bool = True, renderer: str = "RayTracedLighting", extra: dict | None = None):
    """The process's one `SimulationApp` (started on first use; the EULA is accepted through the environment)."""
    global _APP
    if _APP is None:
        require_isaac_sim()
        os.environ.setdefault("OMNI_KIT_ACCEPT_EULA", "YES")
        from isaacsim import SimulationApp

        config = {"headless": headless, "renderer": renderer, "anti_aliasing": 0, **(extra or {})}
        log.info("starting Isaac Sim (%s)", config)
        _APP = SimulationApp(config)
    return _APP
