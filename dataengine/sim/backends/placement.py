"""Where each backend runs on Ray, and the checks that refuse a job before any work when it cannot run.

MuJoCo runs on any CPU. Isaac Sim needs an RTX GPU (RT cores: A100 / H100 / H200 cannot render), which Ray cannot
tell apart from other GPUs, so RTX nodes declare a custom resource when they join the cluster:

    ray start --address=HEAD:6379 --num-gpus=<GPUs> --resources='{"rtx": <GPUs>}'

and Isaac tasks ask for `{"num_gpus": 1, "resources": {"rtx": 1}}`: one task per RTX GPU, never on a CPU-only or
datacenter-GPU node (Ray also sets CUDA_VISIBLE_DEVICES to that task's GPU).
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
        from dataengine.errors import require

        require("mujoco", "sim", "The MuJoCo simulator backend")
    elif name == "isaac":
        from dataengine.sim.backends.isaac_app import require_isaac_sim

        require_isaac_sim()
    else:
        raise RecipeError(f"unknown simulator backend {name!r}; valid: {', '.join(BACKEND_NAMES)}")


def missing_resources(cluster_resources: dict[str, float], remote_options: dict[str, Any]) -> dict[str, float]:
    """Resources a task asks for that the whole cluster does not have (name -> amount asked)."""
    wanted = dict(remote_options.get("resources") or {})
    if remote_options.get("num_gpus"):
        wanted["GPU"] = remote_options["num_gpus"]
    return {k: v for k, v in wanted.items() if cluster_resources.get(k, 0) < v}


def check_ray_placement(cluster_resources: dict[str, float], remote_options: dict[str, Any]) -> None:
    """Refuse a job whose tasks no node of the cluster could run (Ray would otherwise wait forever)."""
    missing = missing_resources(cluster_resources, remote_options)
    if missing:
        asked = ", ".join(f"{k}={v:g}" for k, v in sorted(missing.items()))
        raise RecipeError(
            f"no node in the Ray cluster offers {asked} (cluster: {dict(sorted(cluster_resources.items()))}). "
            f"Isaac Sim workers run only on RTX nodes started with "
            f"`ray start --address=<head>:6379 --num-gpus=N --resources='{{\"{RTX_RESOURCE}\": N}}'`; "
            "use --backend mujoco on CPU-only clusters."
        )
