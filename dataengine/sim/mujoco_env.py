"""Import MuJoCo the one right way: headless EGL rendering and one llvmpipe thread per worker process.

`MUJOCO_GL` must be set before the first `import mujoco` (mink imports it too), so every module that needs MuJoCo
calls `import_mujoco()` instead of importing it directly.
"""

from __future__ import annotations

import logging
import os

from dataengine.errors import require

log = logging.getLogger(__name__)

_GL_LOGGED = False


def import_mujoco():
    """Set `MUJOCO_GL=egl` (headless: works with or without a display) and `LP_NUM_THREADS=1` unless the user set
    them, and return the mujoco module. Call it before anything imports mujoco: a mujoco imported without it picks
    GLFW, which needs a display, and rendering then fails with an OpenGL error."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("LP_NUM_THREADS", "1")
    if os.environ["MUJOCO_GL"] == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    return require("mujoco", "sim", "The MuJoCo simulator backend")


def log_gl_renderer_once(description: str) -> None:
    """Log the GL renderer string the first time a renderer starts in this process."""
    global _GL_LOGGED
    if not _GL_LOGGED:
        _GL_LOGGED = True
        log.info("MuJoCo rendering with MUJOCO_GL=%s on %s", os.environ.get("MUJOCO_GL"), description)
