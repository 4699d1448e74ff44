"""`dataengine sim plan`: what `sim generate` of N episodes costs on a given cluster, from a calibration.

The job is one `run_tasks` phase of ceil(N / episodes_per_shard) chunk tasks (see `sim.generate`), then the
manifest merge on the driver. MuJoCo tasks take one CPU each; Isaac tasks one CPU and one RTX GPU
(`backends.placement`), and cost what one episode takes on its GPU (wall seconds of the calibration) rather than
CPU seconds. The range of core-hours is the calibration mean +- 2 standard errors (few episodes: a wide range).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

from dataengine.errors import RecipeError
from dataengine.runtime.capacity import Cluster, Phase, estimate_job, ray_settings
from dataengine.sim.backends.placement import RTX_RESOURCE, backend_remote_options
from dataengine.sim.calibrate import SimCalibration, cost_fingerprint
from dataengine.sim.generate import WORKER_MAX_CALLS
from dataengine.sim.recipe import SimRecipe

MIN_TASK_TIMEOUT_S = 600  # a suggested --task-timeout: 4x the longest chunk, at least 10 min, whole minutes
MERGE_S_PER_ROW = 10e-6  # manifest merge on the driver, measured by bench/orchestration.py (docs/benchmarks.md)


def check_calibration(cal: SimCalibration, recipe: SimRecipe, render: bool, rewriter: str) -> None:
    expected = cost_fingerprint(recipe, render, rewriter)
    if cal.cost_fingerprint != expected:
        raise RecipeError(
            f"the calibration was measured for another configuration (recipe {cal.recipe!r}, backend {cal.backend}, "
            f"render {cal.render}, rewriter {cal.rewriter}; cost fingerprint {cal.cost_fingerprint} != {expected}): "
            "render settings, task, backend and rewriter change what an episode costs; calibrate this recipe "
            "(omit --calibration)"
        )


def plan_generate(
    recipe: SimRecipe,
    episodes: int,
    cluster: Cluster,
    cal: SimCalibration,
    *,
    out: str = "/shared/OUT",
    recipe_path: str = "RECIPE",
) -> dict:
    """The budget of generating `episodes` episodes of `recipe` on `cluster` (a JSON-able dict)."""
    options = backend_remote_options(recipe.backend)
    gpus_per_task = options.get("num_gpus", 0)
    if gpus_per_task and cluster.gpus_per_node < gpus_per_task:
        raise RecipeError(f"the {recipe.backend} backend runs one task per RTX GPU: give --gpus-per-node")
    per_shard = recipe.episodes_per_shard
    tasks = math.ceil(episodes / per_shard)
    cost = cal.wall_s_per_episode if gpus_per_task else cal.cpu_s_per_episode
    spread = cal.cpu_s_stdev * (cal.wall_s_per_episode / max(cal.cpu_s_per_episode, 1e-9) if gpus_per_task else 1)
    lost_rate = cal.lost_episodes / cal.episodes
    written = round(episodes * (1 - lost_rate))
    shard_bytes = int(written * cal.sample_bytes_per_episode + tasks * cal.shard_overhead_bytes)
    state_bytes = int(written * (cal.marker_bytes_per_episode + cal.manifest_bytes_per_episode))
    phase = Phase(
        name="generate",
        tasks=tasks,
        task_cost_s=per_shard * cost,
        longest_task_cost_s=per_shard * cost + 2 * spread * math.sqrt(per_shard),
        cpus_per_task=1.0,
        gpus_per_task=float(gpus_per_task),
        worker_start_s=cal.worker_start_s / WORKER_MAX_CALLS,
        serial_s=written * MERGE_S_PER_ROW,
        output_bytes=shard_bytes,
        rows_held_by_driver=written,
    )
    job = estimate_job([phase], cluster)
    rel_err = 2 * (spread / max(cost, 1e-9)) / math.sqrt(cal.episodes)
    slots = job.phases[0].slots
    in_flight_bytes = int(slots * per_shard * cal.sample_bytes_per_episode)
    storage = shard_bytes + state_bytes + in_flight_bytes
    longest_s = phase.longest_task_cost_s / cluster.core_speed + cal.worker_start_s  # a fresh worker's first chunk
    timeout_s = max(MIN_TASK_TIMEOUT_S, 60 * math.ceil(4 * longest_s / 60))
    command = (
        f"dataengine sim generate {recipe_path} --episodes {episodes} --out {out} --ray-address auto "
        f"--task-timeout {timeout_s}"
    )
    ray = ray_settings(
        cluster,
        worker_rss_bytes=cal.peak_rss_bytes,
        result_bytes_per_task=int(per_shard * cal.marker_bytes_per_episode),
        storage_bytes=storage,
        storage_files=3 * tasks + 4,
        wall_s=job.wall_s,
        job_command=command,
        gpu_resource=RTX_RESOURCE if gpus_per_task else None,
    )
    attempts = episodes * cal.attempts_per_episode
    failed = {k: round(v / cal.episodes * episodes) for k, v in sorted(cal.failed_attempts.items())}
    return {
        "recipe": recipe.name,
        "backend": recipe.backend,
        "episodes": episodes,
        "episodes_per_task": per_shard,
        "tasks": tasks,
        "calibration": asdict(cal),
        "cost_basis": "wall s per episode on one GPU" if gpus_per_task else "CPU s per episode on one core",
        "cost_s_per_episode": cost,
        "estimate": job.to_dict(),
        "core_hours_range": [round(job.core_hours * (1 - rel_err), 2), round(job.core_hours * (1 + rel_err), 2)],
        "bytes": {
            "shards": shard_bytes,
            "per_episode": round(shard_bytes / max(1, written)),
            "state": state_bytes,
            "in_flight": in_flight_bytes,
            "total": storage,
        },
        "failures": {
            "attempts": round(attempts),
            "failed_attempts": failed,
            "expected_lost_episodes": round(episodes * lost_rate),
            "episodes_to_request_for_all": math.ceil(episodes / (1 - lost_rate)) if lost_rate < 1 else None,
            "expected_preemptions": job.expected_preemptions,
            "expected_retried_tasks": job.expected_retried_tasks,
            "p_task_exhausts_retries": job.p_task_exhausts_retries,
        },
        "ray": ray.to_dict(),
        "longest_task_s": round(longest_s, 1),
        "task_timeout_s": timeout_s,
        "out": out,
        "recipe_path": recipe_path,
    }


def plan_text(plan: dict) -> list[str]:
    """The plan as lines for the terminal."""
    from dataengine.runtime.capacity import human_bytes, human_seconds

    est, cal, b, f, ray = plan["estimate"], plan["calibration"], plan["bytes"], plan["failures"], plan["ray"]
    c = est["cluster"]
    gpus = f" x {c['gpus_per_node']} GPUs" if c["gpus_per_node"] else ""
    phase = est["phases"][0]
    lo, hi = plan["core_hours_range"]
    lines = [
        f"sim generate {plan['recipe']} ({plan['backend']}): {plan['episodes']:,} episodes in {plan['tasks']:,} "
        f"tasks of {plan['episodes_per_task']}",
        f"cluster: {c['nodes']} nodes x {c['cpus_per_node']} CPUs{gpus} (core speed x{c['core_speed']:g} of the "
        f"calibration machine; {phase['slots']:,} tasks at once, {c['head_reserved_cpus']} CPU kept for the driver)",
        f"calibration: {cal['episodes']} episodes on {cal['machine'].get('cpu') or 'unknown CPU'} ({cal['date']}): "
        f"{plan['cost_s_per_episode']:.2f} {plan['cost_basis']} (stdev {cal['cpu_s_stdev']:.2f}), "
        f"{cal['attempts_per_episode']:.2f} attempts per episode, worker start-up {cal['worker_start_s']:.1f} s",
        f"wall time: {human_seconds(est['wall_s'])} ({phase['waves']:,} waves of {human_seconds(phase['task_s'])} "
        f"tasks; bound by {phase['bound']})",
        f"work: {est['core_hours']:,.1f} core-hours (range {lo:,.1f}-{hi:,.1f})"
        + (f", {est['gpu_hours']:,.1f} GPU-hours" if est["gpu_hours"] else "")
        + f"; billed: {est['billed_core_hours']:,.1f} core-hours"
        + (f", {est['billed_gpu_hours']:,.1f} GPU-hours" if est["billed_gpu_hours"] else "")
        + f" ({est['core_hours'] / max(est['billed_core_hours'], 1e-9):.0%} used)",
        f"output: {human_bytes(b['per_episode'])} per episode, {human_bytes(b['shards'])} of shards, "
        f"{human_bytes(b['state'])} of markers and manifest, {human_bytes(b['in_flight'])} in flight; "
        f"shared storage needs {human_bytes(b['total'])} free, {ray['storage_files']:,} files, "
        f"~{ray['write_mb_per_s']:.1f} MB/s of writes",
        f"failures: ~{f['attempts']:,} attempts ("
        + (", ".join(f"{k} {v:,}" for k, v in f["failed_attempts"].items()) or "no failed attempts in calibration")
        + f"); ~{f['expected_lost_episodes']:,} episodes lost (no success in the recipe's attempts)"
        + (
            f": request {f['episodes_to_request_for_all']:,} for {plan['episodes']:,}"
            if f["expected_lost_episodes"]
            else ""
        ),
        f"retries: {f['expected_preemptions']:.2f} expected preemptions -> ~{f['expected_retried_tasks']:.1f} tasks "
        f"rerun ({est['phases'][0]['lost_core_hours']:.2f} core-hours lost); P(a task exhausts its retries) = "
        f"{f['p_task_exhausts_retries']:.1e}",
        f"driver: ~{human_bytes(est['driver_rss_bytes'])} of memory (holds every manifest row until the merge)",
        "ray: start the head, then every other node, then the job (on the head, OUT on storage every node mounts at "
        "the same path):",
        f"  {ray['head_command']}",
        f"  {ray['worker_command']}",
        f"  {ray['job_command']}",
        f"  each node needs ~{human_bytes(ray['node_memory_bytes'])} of RAM (workers at "
        f"{human_bytes(cal['peak_rss_bytes'])} each, object store {human_bytes(ray['object_store_bytes'])}, Ray)",
        f"  --task-timeout {plan['task_timeout_s']}: 4x the longest chunk (~{human_seconds(plan['longest_task_s'])}); "
        "a chunk still running then is taken as hung, its worker killed and the chunk run again",
    ]
    if c["gpus_per_node"] and not est["gpu_hours"]:
        lines.append(f"note: {plan['backend']} tasks use no GPU: the nodes' GPUs would sit idle (billed above)")
    return lines


def load_or_calibrate(
    recipe: SimRecipe, calibration: Path | None, episodes: int, render: bool, rewriter: str
) -> SimCalibration:
    """The calibration file's costs (checked against the recipe), or a calibration run on this machine."""
    from dataengine.errors import MissingDependencyError
    from dataengine.sim.backends.placement import check_backend_available
    from dataengine.sim.calibrate import calibrate

    if calibration is not None:
        cal = SimCalibration.load(calibration)
        check_calibration(cal, recipe, render, rewriter)
        return cal
    try:
        check_backend_available(recipe.backend)
    except MissingDependencyError as exc:
        raise RecipeError(
            f"{exc}\nTo plan without it here: calibrate on a machine that has it (dataengine sim plan RECIPE "
            "--episodes 1 --save-calibration cal.json) and pass --calibration cal.json"
        ) from None
    return calibrate(recipe, episodes, render=render, rewriter=rewriter)
