"""Where each backend runs on Ray, and the check that refuses a backend that cannot start here.

MuJoCo runs on any CPU. Isaac Sim needs an RTX GPU (RT cores: A100 / H100 / H200 cannot render), which Ray cannot
tell apart from other GPUs, so RTX nodes declare a custom resource when they join the cluster:

    ray start --address=HEAD:6379 --num-gpus=<GPUs> --resources='{"rtx": <GPUs>}'

and Isaac tasks ask for `{"num_gpus": 1, "resources": {"rtx": 1}}`: one task per RTX GPU, never on a CPU-only or
datacenter-GPU node (Ray also sets CUDA_VISIBLE_DEVICES to that task's GPU). `runtime.jobs.run_tasks` refuses at
once a job whose resources no node offers.
"""

from __future__ import annotations

from typing import Any

from dataengine.errors import RecipeError

RTX_RESOURCE = "rtx"
BACKEND_NAMES = ("mujoco", "isaac")


def backend_remote_options(name: str) -> dict[str, Any]:
    """Ray task options a backend's workers need, to merge into `run_tasks(remote_options=...)`."""
    if name == "mujoco":
        return {}
    if name == "isaac":
        return {"num_gpus": 1, "resources": {RTX_RESOURCE: 1}}
    raise RecipeError(f"unknown simulator backend {name!r}; valid: {', '.join(BACKEND_NAMES)}")


def check_backend_available(name: str) -> None:
    """Raise at once (MissingDependencyError with the install command) when the backend cannot start here.
    Cheap: looks for the packages without starting a simulator."""
    if name == "mujoco":
        from dataengine.sim.mujoco_env import import_mujoco

        import_mujoco()  # never a plain import: the GL backend must be chosen before mujoco's first import
    elif name == "isaac":
        from dataengine.sim.backends.isaac_app import require_isaac_sim

        require_isaac_sim()
    else:
        raise RecipeError(f"unknown simulator backend {name!r}; valid: {', '.join(BACKEND_NAMES)}")
