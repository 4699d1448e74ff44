"""`dataengine build --dry-run`: the build's time, disk and Ray settings on a given cluster, from measured costs.

The dry run scans every input shard (each scan task reports its CPU seconds) and makes the plan on the driver
(its CPU seconds: polars may use several threads, so on a big head node the plan's wall time is shorter), both in
a temporary folder; then it writes a slice of the first bucket (`WRITE_SLICE_SAMPLES` samples: buckets are hash
ranges, so a finer bucket count gives a slice of the same data) and times that, per sample. From
these: a scan phase (one task per input shard), the plan (driver), a write phase (one task per bucket) and the
finish (manifest, card; driver, seconds: not modelled). Conversion of raw inputs is not in it: a dry run of a
recipe with unconverted inputs says which, and a build (or `dataengine convert`) converts them first.
"""

from __future__ import annotations

import math
import resource
import time
from pathlib import Path

from dataengine.corpus.plan import PlanSummary
from dataengine.runtime.capacity import Cluster, Phase, estimate_job, ray_settings
from dataengine.runtime.jobs import STATE_DIR, Task

WRITE_SLICE_SAMPLES = 300


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def measure_write(plan_dir: Path, summary: PlanSummary, payload: dict, tmp: Path) -> dict:
    """Write a slice of about WRITE_SLICE_SAMPLES samples of the first non-empty bucket inline and time it."""
    from dataengine.corpus.write import write_bucket

    per_bucket = summary.samples / max(1, summary.n_buckets)
    k = max(1, math.ceil(per_bucket / WRITE_SLICE_SAMPLES))
    for bucket in range(min(8, summary.n_buckets * k)):
        out = tmp / f"write-slice-{bucket}"
        (out / STATE_DIR / "parts").mkdir(parents=True)
        task = Task(
            "slice",
            {**payload, "plan_dir": str(plan_dir), "bucket": bucket, "n_buckets": summary.n_buckets * k,
             "n_partitions": summary.n_partitions},
        )  # fmt: skip
        t0, c0 = time.perf_counter(), time.process_time()
        result = write_bucket(task, out)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        if result["samples"]:
            return {
                "samples": result["samples"],
                "items": result["items"],
                "cpu_s": round(cpu, 4),
                "wall_s": round(wall, 4),
                "bytes": _folder_bytes(out) - _folder_bytes(out / STATE_DIR),
                "manifest_bytes": _folder_bytes(out / STATE_DIR / "parts"),
            }
    return {"samples": 0, "items": 0, "cpu_s": 0.0, "wall_s": 0.0, "bytes": 0, "manifest_bytes": 0}


def budget(
    summary: PlanSummary,
    scan_results: list[dict],
    input_bytes: int,
    scan_dir: Path,
    plan_dir: Path,
    plan_cpu_s: float,
    write: dict,
    cluster: Cluster,
    command: str,
) -> dict:
    """Time, work, disk, failures and Ray settings of the build on `cluster` (a JSON-able dict)."""
    scan_cpu = [r.get("cpu_s", 0.0) for r in scan_results]
    per_sample = write["cpu_s"] / write["samples"] if write["samples"] else 0.0
    per_bucket = summary.samples / max(1, summary.n_buckets)
    phases = [
        Phase("scan", len(scan_cpu), sum(scan_cpu) / max(1, len(scan_cpu)), max(scan_cpu, default=0.0)),
        Phase("plan", 0, 0.0, serial_s=plan_cpu_s),
        Phase(
            "write",
            summary.n_buckets,
            per_sample * per_bucket,
            per_sample * (per_bucket + 3 * math.sqrt(per_bucket)),  # bucket sizes vary like counts of a hash range
            output_bytes=summary.est_bytes,
        ),
    ]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    job = estimate_job(phases, cluster, driver_base_bytes=peak)
    scan_bytes, plan_bytes = _folder_bytes(scan_dir), _folder_bytes(plan_dir)
    manifest = int(write["manifest_bytes"] / max(1, write["items"]) * summary.items)
    state = scan_bytes + plan_bytes + manifest
    shards = max(summary.n_buckets, math.ceil(summary.samples / 10_000))
    ray = ray_settings(
        cluster,
        worker_rss_bytes=peak,
        result_bytes_per_task=4096,
        storage_bytes=summary.est_bytes + state,
        storage_files=2 * shards + 2 * summary.n_buckets + 3 * len(scan_cpu) + 8,
        wall_s=job.wall_s,
        job_command=command,
    )
    quarantined: dict[str, int] = {}
    for r in scan_results:
        for reason, n in r.get("quarantined", {}).items():
            quarantined[reason] = quarantined.get(reason, 0) + n
    return {
        "estimate": job.to_dict(),
        "measured": {
            "scan_cpu_s": round(sum(scan_cpu), 3),
            "scan_samples": sum(r.get("samples", 0) for r in scan_results),
            "plan_cpu_s": round(plan_cpu_s, 3),
            "write_slice": write,
            "write_cpu_s_per_sample": round(per_sample, 6),
        },
        "bytes": {
            "output": summary.est_bytes,
            "state": state,
            "scan_parts": scan_bytes,
            "plan": plan_bytes,
            "manifest": manifest,
            "inputs_read": input_bytes,
            "total": summary.est_bytes + state,
        },
        "failures": {
            "quarantined_in_scan": dict(sorted(quarantined.items())),
            "expected_preemptions": job.expected_preemptions,
            "expected_retried_tasks": job.expected_retried_tasks,
            "p_task_exhausts_retries": job.p_task_exhausts_retries,
        },
        "ray": ray.to_dict(),
    }


def budget_text(b: dict) -> list[str]:
    from dataengine.runtime.capacity import human_bytes, human_seconds

    est, m, by, f, ray = b["estimate"], b["measured"], b["bytes"], b["failures"], b["ray"]
    c = est["cluster"]
    lines = [
        f"on {c['nodes']} nodes x {c['cpus_per_node']} CPUs (core speed x{c['core_speed']:g} of this machine): "
        f"{human_seconds(est['wall_s'])} wall, {est['core_hours']:,.2f} core-hours of work, "
        f"{est['billed_core_hours']:,.2f} billed",
    ]
    for p in est["phases"]:
        if p["tasks"]:
            lines.append(
                f"  {p['name']}: {p['tasks']:,} tasks, {p['slots']:,} at once, {p['waves']:,} waves of "
                f"{human_seconds(p['task_s'])}: {human_seconds(p['wall_s'])} (bound by {p['bound']})"
            )
        else:
            lines.append(f"  {p['name']}: on the driver, {human_seconds(p['wall_s'])}")
    lines += [
        f"  measured here: scan {m['scan_cpu_s']:.2f} CPU s for {m['scan_samples']:,} input samples; plan "
        f"{m['plan_cpu_s']:.2f} CPU s on the driver; write {m['write_cpu_s_per_sample'] * 1e6:,.0f} CPU us per "
        f"output sample ({m['write_slice']['samples']:,} samples written as a sample)",
        f"disk: {human_bytes(by['output'])} of shards + {human_bytes(by['state'])} of state (scan "
        f"{human_bytes(by['scan_parts'])}, plan {human_bytes(by['plan'])}, manifest {human_bytes(by['manifest'])}); "
        f"reads {human_bytes(by['inputs_read'])} of inputs; needs {human_bytes(by['total'])} free, "
        f"~{ray['write_mb_per_s']:.1f} MB/s of writes",
        "failures: "
        + (", ".join(f"{k} {v:,}" for k, v in f["quarantined_in_scan"].items()) or "no record")
        + f" quarantined in the scan; {f['expected_preemptions']:.2f} expected preemptions -> "
        f"~{f['expected_retried_tasks']:.1f} tasks rerun",
        "ray:",
        f"  {ray['head_command']}",
        f"  {ray['worker_command']}",
        f"  {ray['job_command']}",
    ]
    return lines
