"""Ray start-up: a local `ray.init()` by default, an existing cluster with `--ray-address`."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

log = logging.getLogger(__name__)

# Environment every Ray worker needs (headless rendering, one render thread per simulator).
WORKER_ENV = {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "LP_NUM_THREADS": "1"}


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, env_vars: dict[str, str] | None = None):
    """Connect to Ray for the duration of a job.

    Reuses an already initialized Ray (tests, notebooks). Otherwise starts a local instance with `num_cpus`
    CPUs, or connects to `address` ("auto" or "ray://host:port" or "host:port"), and shuts down at exit.
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    env = {**WORKER_ENV, **(env_vars or {})}
    for name, value in env.items():
        os.environ.setdefault(name, value)
    kwargs = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": True,
        "runtime_env": {"env_vars": env},
    }
    if address:
        ray.init(address=address, **kwargs)
    else:  # "local": always a fresh local instance, never another process's running cluster
        ray.init(address="local", num_cpus=num_cpus, **kwargs)
    resources = ray.cluster_resources()
    log.info("ray: %s CPUs on %d node(s)", resources.get("CPU", 0), len(ray.nodes()))
    try:
        yield ray
    finally:
        ray.shutdown()
