"""`dataengine build`: a recipe in, a deduplicated, leakage-guarded, nested corpus out.

Phases, each a fixed list of tasks with completion markers (`runtime.jobs.run_tasks`), so `--resume` after a
crash at any moment yields the bytes an uninterrupted build would have:
1. inputs: converted shards are used as they are; raw inputs and fixtures are converted into the cache;
2. scan (`scan.py`): one task per input shard reads the records' JSON into item rows;
3. plan (`plan.py`): filters, holdouts, dedup and quotas, one hash-range partition at a time -> `selected-*.parquet`;
4. write (`write.py`): one task per hash bucket writes the final shards;
5. finish (`finalize.py`): manifest, stats, quarantine, recipe lock and dataset card.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dataengine import __version__
from dataengine.corpus.cluster_plan import budget, measure_write
from dataengine.corpus.finalize import finalize
from dataengine.corpus.inputs import (
    HashCache,
    ResolvedInput,
    RunOptions,
    check_inputs,
    resolve_input,
)
from dataengine.corpus.plan import PlanSummary, RecordSet, make_plan
from dataengine.corpus.quotas import SourceDemand, allocate_quotas
from dataengine.corpus.recipe import LoadedRecipe, load_recipe
from dataengine.corpus.scan import scan_shard
from dataengine.corpus.write import SETS_FILE, write_bucket
from dataengine.errors import InputError, JobStateError, RecipeError
from dataengine.runtime.atomic import atomic_write_text
from dataengine.runtime.capacity import Cluster
from dataengine.runtime.jobs import STATE_DIR, Task, job_lock, mark_complete, run_tasks
from dataengine.runtime.progress import RunningTotals
from dataengine.shards.reader import list_shards

log = logging.getLogger(__name__)
BUILD_FILE = "build.json"


@dataclass
class BuildContext:
    """Everything the phases share."""

    loaded: LoadedRecipe
    out: Path
    cache: Path
    workers: int | None
    ray_address: str | None
    resume: bool
    show_progress: bool
    inputs: dict[str, dict] = field(default_factory=dict)  # label -> fingerprint (for the lock)
    scan_tasks: list[Task] = field(default_factory=list)
    scan_results: list[dict] = field(default_factory=list)
    plan_cpu_s: float = 0.0  # CPU seconds of the last plan made (the driver's own work)

    @property
    def state(self) -> Path:
        return self.out / STATE_DIR


def build_corpus(
    recipe_path: str | Path,
    out: str | Path,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    resume: bool = False,
    dry_run: bool = False,
    cache_dir: str | Path | None = None,
    command: str | None = None,
    show_progress: bool = True,
    cluster: Cluster | None = None,
) -> dict:
    """Build the corpus of `recipe_path` into `out`; returns stats (the dry-run plan with `dry_run`; with `cluster`
    too, its time and disk there)."""
    loaded = load_recipe(recipe_path)
    check_inputs(loaded)
    out = Path(out).resolve()
    cache = Path(cache_dir).resolve() if cache_dir else out / STATE_DIR / "cache"
    if dry_run:
        return dry_run_plan(loaded, out, cache, workers=workers, ray_address=ray_address, cluster=cluster)
    ctx = BuildContext(loaded, out, cache, workers, ray_address, resume, show_progress)
    with job_lock(out, "build", resume=resume):
        build_info = _begin(ctx, command)
        started = time.monotonic()
        with _ray(workers, ray_address):
            sets = resolve_sets(ctx)
            summary = _scan_and_plan(ctx, sets, ctx.state)
            if summary.samples == 0:
                raise InputError(f"recipe {loaded.recipe.name!r} selects no items: check splits, tasks and holdouts")
            results = _write(ctx, summary)
        stats = finalize(ctx, sets, summary, results, build_info["command"])
        elapsed = time.monotonic() - started
        timing = {"seconds": round(elapsed, 3), "pairs_per_second": round(stats["pairs"] / max(elapsed, 1e-9), 1)}
        atomic_write_text(ctx.state / "timing.json", json.dumps(timing, indent=1))
        mark_complete(out)
    return {**stats, "timing": timing}


@contextlib.contextmanager
def _ray(workers: int | None, ray_address: str | None):
    """One Ray session for every phase (conversion, scan, write); none for inline runs (`workers=0`)."""
    if workers == 0:
        yield
        return
    from dataengine.runtime.ray_runtime import ray_session

    with ray_session(ray_address, num_cpus=workers):
        yield


def _begin(ctx: BuildContext, command: str | None) -> dict:
    """Refuse a non-empty OUT without --resume, or a resume of another recipe; record the first command."""
    build_file = ctx.state / BUILD_FILE
    recipe_sha = ctx.loaded.sha256
    if build_file.exists():
        info = json.loads(build_file.read_text(encoding="utf-8"))
        if not ctx.resume:
            raise JobStateError(f"{ctx.out} already holds a corpus build; pass --resume to continue it")
        if info["recipe_sha256"] != recipe_sha:
            raise JobStateError(
                f"{ctx.out} holds a build of another recipe ({info['recipe']} {info['recipe_sha256'][:12]}); "
                "resume needs the same recipe and variables, or choose an empty output directory"
            )
        return info
    if ctx.out.exists() and any(p.name != STATE_DIR for p in ctx.out.iterdir()):
        raise JobStateError(f"{ctx.out} is not empty and holds no build; choose an empty output directory")
    info = {
        "recipe": ctx.loaded.recipe.name,
        "recipe_sha256": recipe_sha,
        "command": command or f"dataengine build {ctx.loaded.path.name} --out {ctx.out.name}",
        "engine_version": __version__,
    }
    atomic_write_text(build_file, json.dumps(info, indent=1, sort_keys=True))
    return info


def resolve_sets(ctx: BuildContext, dry_run: bool = False) -> list[RecordSet] | None:
    """Resolve every source and holdout input to converted shards (converting into the cache when needed)."""
    recipe = ctx.loaded.recipe
    if not dry_run:
        ctx.cache.mkdir(parents=True, exist_ok=True)
    hashes = HashCache(ctx.cache)
    labelled = [(s.name, "source", s.from_) for s in recipe.sources]
    labelled += [(h.name, "holdout", h.from_) for h in recipe.holdouts if h.from_ is not None]
    sets: list[RecordSet] = []
    next_shard = 0
    missing = False
    try:
        for set_id, (name, role, spec) in enumerate(labelled):
            label = name if role == "source" else f"holdout-{name}"
            run = RunOptions(ctx.workers, ctx.ray_address, ctx.show_progress)
            resolved: ResolvedInput | None = resolve_input(spec, label, ctx.cache, hashes, run, dry_run)
            if resolved is None:
                missing = True
                continue
            ctx.inputs[label] = resolved.fingerprint
            shards = [str(p) for p in list_shards(resolved.shard_dir)]
            if not shards:
                raise InputError(f"{label}: no shards in {resolved.shard_dir}")
            sets.append(RecordSet(set_id, name, role, str(resolved.shard_dir), shards, next_shard))
            next_shard += len(shards)
    finally:
        if not dry_run:
            hashes.save()
    return None if missing else sets


def _digest(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _scan_and_plan(ctx: BuildContext, sets: list[RecordSet], where: Path) -> PlanSummary:
    recipe = ctx.loaded.recipe
    tasks = [
        Task(
            f"scan-{s.set_id:03d}-{i:05d}",
            {
                "shard": shard,
                "set_id": s.set_id,
                "set_name": s.name,
                "shard_id": s.first_shard_id + i,
                "seed": recipe.seed,
            },
        )
        for s in sets
        for i, shard in enumerate(s.shards)
    ]
    scan_dir = where / "scan"
    fingerprint = _digest({"inputs": ctx.inputs, "seed": recipe.seed, "engine": __version__, "tasks": len(tasks)})
    ctx.scan_results = run_tasks(
        scan_shard,
        tasks,
        scan_dir,
        job_name="scan",
        fingerprint=fingerprint,
        workers=ctx.workers,
        ray_address=ctx.ray_address,
        resume=(scan_dir / STATE_DIR / "job.json").exists(),  # the build-level guard in _begin already ran
        show_progress=ctx.show_progress,
    )
    ctx.scan_tasks = tasks
    check_splits(recipe, sets, tasks, ctx.scan_results)
    plan_dir = where / "plan"
    plan_fp = _digest({"scan": fingerprint, "recipe": ctx.loaded.sha256})
    done = plan_dir / "done.json"
    if done.exists() and json.loads(done.read_text(encoding="utf-8"))["fingerprint"] == plan_fp:
        return _load_summary(plan_dir)
    shutil.rmtree(plan_dir, ignore_errors=True)
    plan_dir.mkdir(parents=True)
    names = [s.name for s in sets]
    shard_paths = [shard for s in sets for shard in s.shards]
    atomic_write_text(plan_dir / SETS_FILE, json.dumps({"names": names, "shards": shard_paths}))
    cpu0 = time.process_time()
    make_plan(recipe, sets, [scan_dir / f"{t.task_id}.parquet" for t in tasks], plan_dir)
    ctx.plan_cpu_s = time.process_time() - cpu0
    atomic_write_text(done, json.dumps({"fingerprint": plan_fp}))
    return _load_summary(plan_dir)  # the same object whether the plan was just made or made before a crash


def check_splits(recipe, sets: list[RecordSet], tasks: list[Task], results: list[dict]) -> None:
    """Refuse a source whose `splits` name none of the splits its records have (a typo would select nothing);
    warn about named splits a source or holdout lacks."""
    found: dict[int, set[str]] = {}
    for task, result in zip(tasks, results, strict=True):
        found.setdefault(task.payload["set_id"], set()).update(result.get("splits", {}))
    by_name = {s.name: found.get(s.set_id, set()) for s in sets if s.role == "source"}
    for source in recipe.sources:
        if source.splits is None:
            continue
        have = by_name.get(source.name, set())
        missing = [s for s in source.splits if s not in have]
        if len(missing) == len(source.splits):
            raise RecipeError(
                f"source {source.name!r}: splits {missing} occur in none of its records (its splits: "
                f"{sorted(have)}); check the spelling in the recipe"
            )
        if missing:
            log.warning("source %r: splits %s are not in its records (it has %s)", source.name, missing, sorted(have))
    for holdout in recipe.holdouts:
        have = set().union(*(by_name.get(name, set()) for name in holdout.sources)) if holdout.sources else set()
        if holdout.splits and holdout.sources and not set(holdout.splits) & have:
            log.warning("holdout %r: none of the splits %s occur in %s", holdout.name, holdout.splits, holdout.sources)


def _load_summary(plan_dir: Path) -> PlanSummary:
    return PlanSummary(**json.loads((plan_dir / "summary.json").read_text(encoding="utf-8")))


def _write_payload(recipe, plan_dir: Path, summary: PlanSummary) -> dict:
    """What every write task of this plan gets (plus its bucket)."""
    return {
        "plan_dir": str(plan_dir),
        "max_samples": recipe.shards.max_samples,
        "max_bytes": recipe.shards.max_bytes,
        "max_image_side": recipe.max_image_side,
        "output_split": recipe.output_split,
        "n_buckets": summary.n_buckets,
        "n_partitions": summary.n_partitions,
    }


def _write(ctx: BuildContext, summary: PlanSummary) -> list[dict]:
    recipe = ctx.loaded.recipe
    payload = _write_payload(recipe, ctx.state / "plan", summary)
    tasks = [Task(f"{recipe.output_split}-{b:05d}", {**payload, "bucket": b}) for b in range(summary.n_buckets)]
    fingerprint = _digest({"recipe": ctx.loaded.sha256, "inputs": ctx.inputs, "plan": summary.to_dict()})
    started, planned = time.monotonic(), max(1, summary.pairs)
    first_done: list[int] = []

    totals = RunningTotals(lambda r: {"pairs": r["pairs"]})

    def describe(results: list[dict]) -> str:
        done = totals.update(results)["pairs"]
        if not first_done:
            first_done.append(done - results[-1]["pairs"] if results else 0)
        rate = (done - first_done[0]) / max(time.monotonic() - started, 1e-6)
        eta = (planned - done) / rate if rate > 0 else float("inf")
        return f"{done:,}/{planned:,} pairs  {rate:,.0f} pairs/s  eta {eta:,.0f}s"

    return run_tasks(
        write_bucket,
        tasks,
        ctx.out,
        job_name="build",
        fingerprint=fingerprint,
        workers=ctx.workers,
        ray_address=ctx.ray_address,
        resume=ctx.resume,
        describe=describe,
        show_progress=ctx.show_progress,
    )


def dry_run_plan(
    loaded: LoadedRecipe,
    out: Path,
    cache: Path,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    cluster: Cluster | None = None,
) -> dict:
    """The plan without writing to OUT: exact when every input is already converted (the scan runs in a
    temporary folder), else an estimate from weights that names the inputs still to convert. With `cluster`, an
    exact plan also gets a `budget`: time, work, disk and Ray settings of the build on that cluster, from the
    costs measured by the scan, the plan and the write of a slice of one bucket (`corpus.cluster_plan`)."""
    recipe = loaded.recipe
    with tempfile.TemporaryDirectory(prefix="dataengine-dry-run-") as tmp:
        ctx = BuildContext(
            loaded, out, cache if cache.exists() else Path(tmp) / "cache", workers, ray_address, False, False
        )
        sets = resolve_sets(ctx, dry_run=True)
        if sets is None:
            demands = [
                SourceDemand(s.name, recipe.target_pairs or 0, s.effective_weight, s.pairs) for s in recipe.sources
            ]
            quotas = allocate_quotas(recipe.target_pairs, demands) if recipe.target_pairs else {}
            unconverted = [s.name for s in recipe.sources if s.name not in ctx.inputs]
            return {
                "exact": False,
                "recipe": recipe.name,
                "target_pairs": recipe.target_pairs,
                "quotas": quotas,
                "unconverted": unconverted,
            }
        with _ray(workers, ray_address):
            summary = _scan_and_plan(ctx, sets, Path(tmp))
        result = {"exact": True, "recipe": recipe.name, **summary.to_dict(), "expected_shards": summary.n_buckets}
        if cluster is not None and summary.samples:
            plan_dir = Path(tmp) / "plan"
            write = measure_write(plan_dir, summary, _write_payload(recipe, plan_dir, summary), Path(tmp))
            input_bytes = sum(Path(shard).stat().st_size for s in sets if s.role == "source" for shard in s.shards)
            result["budget"] = budget(
                summary, ctx.scan_results, input_bytes, Path(tmp) / "scan", plan_dir, ctx.plan_cpu_s, write, cluster,
                f"dataengine build {loaded.path} --out {out}"
                + ("" if cache == out / STATE_DIR / "cache" else f" --cache {cache}")
                + " --ray-address auto",
            )  # fmt: skip
    return result
