"""`dataengine sim generate`: a deterministic work list of episode chunks run on Ray, one shard per chunk.

Chunk k holds episodes [k * n, (k + 1) * n) of the recipe (n = `episodes_per_shard`) and writes
`OUT/episodes-<k>-000000.tar` (+ index). Completion markers, retries and resume come from
`dataengine.runtime.jobs.run_tasks`; a chunk's output depends only on (recipe, seed, indexes), so any number of
workers, a crash and a resume all give the same bytes. After the job: `manifest.parquet` (one row per episode),
`sim_stats.json` (attempts and failures by reason, CPU seconds of physics and rendering, what the scenes drew:
`sim.scene_stats`), the resolved recipe and the dataset card `README.md` (`sim.card`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dataengine.runtime.atomic import atomic_output, atomic_write_text
from dataengine.runtime.jobs import Task, job_lock, mark_complete, run_tasks
from dataengine.runtime.progress import RunningTotals
from dataengine.sim.backends.placement import backend_remote_options, check_backend_available
from dataengine.sim.recipe import SimRecipe

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.parquet"
STATS_NAME = "sim_stats.json"
RECIPE_NAME = "recipe.resolved.json"
WORKER_MAX_CALLS = 8  # recycle worker processes (renderer memory) after this many chunks
_WORKER_CACHE: dict[str, object] = {}


def chunk_tasks(recipe: SimRecipe, render: bool, rewriter: str) -> list[Task]:
    n = recipe.episodes_per_shard
    recipe_json = recipe.model_dump(mode="json")
    return [
        Task(
            task_id=f"episodes-{k:06d}",
            payload={
                "recipe": recipe_json,
                "start": start,
                "stop": min(start + n, recipe.episodes),
                "render": render,
                "rewriter": rewriter,
            },
        )
        for k, start in enumerate(range(0, recipe.episodes, n))
    ]


def _worker_backend(name: str):
    key = f"backend:{name}"
    if key not in _WORKER_CACHE:
        from dataengine.sim.backends import get_backend

        _WORKER_CACHE[key] = get_backend(name)
    return _WORKER_CACHE[key]


def run_chunk(task: Task, out_dir: Path) -> dict:
    """Find, render, label and write the episodes of one chunk. Returns manifest rows and statistics."""
    from dataengine.rewrite.base import tally_provenance
    from dataengine.shards import ShardWriter
    from dataengine.sim.assets import load_catalog
    from dataengine.sim.episode_members import build_members, episode_key
    from dataengine.sim.families import get_family
    from dataengine.sim.language import rewrite_all
    from dataengine.sim.render import render_episode
    from dataengine.sim.scene_stats import as_json, episode_counts, merge
    from dataengine.sim.search import EpisodeNotFound, find_episode, look_seed

    payload = task.payload
    recipe = SimRecipe.model_validate(payload["recipe"])
    catalog = load_catalog(recipe.catalogs or None)
    backend = _worker_backend(recipe.backend)
    backend.catalog_dir = catalog.base_dir  # relative mesh files in the layouts resolve against it
    family = get_family(recipe.task.family)
    failures: Counter = Counter()
    found, lost, renders = [], [], []
    cpu_physics = cpu_render = 0.0
    backend_info = {"name": backend.name}
    for index in range(payload["start"], payload["stop"]):
        try:
            episode = find_episode(recipe, catalog, backend, index)
        except EpisodeNotFound as exc:
            failures.update(exc.failures)
            lost.append({"episode_index": index, "failures": dict(exc.failures)})
            continue
        failures.update(episode.failures)
        cpu_physics += episode.cpu_s
        found.append(episode)
        if payload["render"]:  # the backend still holds this episode's scene: render it now
            cpu0 = time.process_time()
            rendered = render_episode(
                backend, recipe, episode.layout, episode.trajectory, look_seed(recipe.seed, index)
            )
            labels = family.labels(episode.layout, episode.plan, episode.trajectory, rendered, recipe, catalog.base_dir)
            if not recipe.render.segmentation:
                rendered.segmentation = {}  # labels are made; masks are (T, H, W) per camera: do not hold a chunk's
            renders.append((rendered, labels))
            cpu_render += time.process_time() - cpu0
            backend_info = {"name": backend.name, "gl_renderer": backend.gl_info()}
        else:
            renders.append((None, None))
    keys = [episode_key(recipe.name, e.index) for e in found]
    relations = [family.relation(e.layout, recipe) for e in found]
    facts = [family.scene_facts(k, e.layout, r, recipe.split) for k, e, r in zip(keys, found, relations, strict=True)]
    vocabulary = sorted({a.name for a in catalog.objects + catalog.containers})
    rewrites = rewrite_all(payload["rewriter"], facts, recipe.seed, vocabulary) if found else []
    provenance = tally_provenance(rewrites, payload["rewriter"])
    scene: dict = {}
    for episode, (rendered, _) in zip(found, renders, strict=True):
        merge(scene, episode_counts(episode.layout, rendered.look if rendered else None, recipe))
    rows = []
    writer = ShardWriter(out_dir, task.task_id, max_samples=1_000_000, max_bytes=1 << 40)
    try:
        for i, episode in enumerate(found):
            rendered, labels = renders[i]
            base = facts[i].base_instruction
            members = build_members(
                recipe, keys[i], episode, rewrites[i], base, relations[i], payload["rewriter"], rendered, labels,
                backend_info,
            )  # fmt: skip
            shard = writer.write(keys[i], members)
            rows.append(_manifest_row(keys[i], shard, episode, relations[i], base, recipe))
    except BaseException:
        writer.abort()
        raise
    infos = writer.close()
    return {
        "episodes": rows,
        "lost": lost,
        "attempts": sum(e.attempt + 1 for e in found) + sum(sum(x["failures"].values()) for x in lost),
        "successes": len(found),
        "perturbed": sum(e.perturbed for e in found),
        "failures": dict(sorted(failures.items())),
        "cpu_physics_s": round(cpu_physics, 4),
        "cpu_render_s": round(cpu_render, 4),
        "shards": [i.name for i in infos],
        "scene_counts": as_json(scene),
        **provenance,
    }


def _manifest_schema():
    import polars as pl

    return {
        "key": pl.Utf8,
        "shard": pl.Utf8,
        "episode_index": pl.Int64,
        "pick_asset": pl.Utf8,
        "place_asset": pl.Utf8,
        "relation": pl.Utf8,
        "distractors": pl.Int64,
        "num_steps": pl.Int64,
        "attempts": pl.Int64,
        "instruction": pl.Utf8,
        "split": pl.Utf8,
        "success": pl.Boolean,
    }


def _manifest_row(key: str, shard: str, episode, relation: str, instruction: str, recipe: SimRecipe) -> dict:
    layout = episode.layout
    return {
        "key": key,
        "shard": shard,
        "episode_index": episode.index,
        "pick_asset": layout.pick.asset_id,
        "place_asset": layout.place.asset_id,
        "relation": relation,
        "distractors": len(layout.by_role("distractor")),
        "num_steps": episode.trajectory.steps,
        "attempts": episode.attempt + 1,
        "instruction": instruction,
        "split": recipe.split,
        "success": True,
    }


def progress_describer() -> Callable[[list[dict]], str]:
    """The progress text of one job: episodes found, attempts and the top failure reasons (running totals)."""
    totals = RunningTotals(lambda r: {" ok": r["successes"], " attempts": r["attempts"], **r["failures"]})

    def describe(results: list[dict]) -> str:
        counts = totals.update(results)
        failures = Counter({k: v for k, v in counts.items() if not k.startswith(" ")})
        top = ", ".join(f"{k} {v}" for k, v in failures.most_common(3))
        return f"{counts[' ok']} ok / {counts[' attempts']} attempts" + (f" ({top})" if top else "")

    return describe


def generate(
    recipe: SimRecipe,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    resume: bool = False,
    render: bool = True,
    rewriter: str | None = None,
    show_progress: bool = True,
    on_progress=None,
    task_timeout_s: float | None = None,
) -> dict:
    """Run the whole job; returns the statistics written to `sim_stats.json`. `on_progress(results_so_far)` is
    called after each finished chunk (benchmarks sample memory there); a chunk still running `task_timeout_s`
    after it was submitted is taken as hung and run again (`run_tasks`)."""
    out_dir = Path(out_dir)
    check_backend_available(recipe.backend)  # fail at once, before Ray or any work, with the install hint
    rewriter = rewriter or recipe.rewriter
    tasks = chunk_tasks(recipe, render, rewriter)
    fingerprint = f"{recipe.fingerprint()}-render{int(render)}-{rewriter}-{recipe.backend}"
    wall0 = time.perf_counter()
    job_name = f"sim generate {recipe.name}"
    describe = progress_describer()
    with job_lock(out_dir, job_name, resume=resume):
        results = run_tasks(
            run_chunk,
            tasks,
            out_dir,
            job_name=job_name,
            fingerprint=fingerprint,
            workers=workers,
            ray_address=ray_address,
            resume=resume,
            remote_options={"max_calls": WORKER_MAX_CALLS, **backend_remote_options(recipe.backend)},
            describe=describe if on_progress is None else lambda r: (on_progress(r), describe(r))[1],
            show_progress=show_progress,
            task_timeout_s=task_timeout_s,
        )
        stats = _write_outputs(recipe, out_dir, results, rewriter, render)
        mark_complete(out_dir)
    stats["wall_s"] = round(time.perf_counter() - wall0, 3)
    return stats


def _summed(results: list[dict], name: str) -> dict[str, int]:
    total: Counter = Counter()
    for r in results:
        total.update(r.get(name, {}))
    return dict(sorted(total.items()))


def _write_outputs(recipe: SimRecipe, out_dir: Path, results: list[dict], rewriter: str, render: bool) -> dict:
    import polars as pl

    from dataengine.sim.card import CARD_NAME, render_sim_card
    from dataengine.sim.scene_stats import as_json, merge, summary

    MANIFEST_SCHEMA = _manifest_schema()
    rows = [row for r in results for row in r["episodes"]]
    # rows from completion markers come back with sorted keys: fix the column order and types explicitly
    frame = pl.DataFrame([{k: row[k] for k in MANIFEST_SCHEMA} for row in rows], schema=MANIFEST_SCHEMA)
    with atomic_output(out_dir / MANIFEST_NAME) as tmp:
        frame.write_parquet(tmp)
    failures: Counter = Counter()
    for r in results:
        failures.update(r["failures"])
    stats = {
        "recipe": recipe.name,
        "episodes_requested": recipe.episodes,
        "episodes_written": len(rows),
        "episodes_lost": [x for r in results for x in r["lost"]],
        "attempts": sum(r["attempts"] for r in results),
        "failures": dict(sorted(failures.items())),
        "cpu_physics_s": round(sum(r["cpu_physics_s"] for r in results), 3),
        "cpu_render_s": round(sum(r["cpu_render_s"] for r in results), 3),
        "rendered": render,
        "rewriter": rewriter,
        **{name: _summed(results, name) for name in ("rewrites_by_rewriter", "fallbacks_by_reason")},
        "shards": [s for r in results for s in r["shards"]],
    }
    scene: dict = {}
    for r in results:  # chunks finished before scene statistics existed have none
        merge(scene, r.get("scene_counts", {}))
    stats["scene"] = summary(as_json(scene), len(rows))
    if recipe.perturb is not None:
        stats["episodes_perturbed"] = sum(r.get("perturbed", 0) for r in results)
    atomic_write_text(out_dir / STATS_NAME, json.dumps(stats, indent=1, sort_keys=True))
    atomic_write_text(out_dir / RECIPE_NAME, json.dumps(recipe.resolved(), indent=1, sort_keys=True))
    atomic_write_text(out_dir / CARD_NAME, render_sim_card(recipe, stats, render))
    return stats
