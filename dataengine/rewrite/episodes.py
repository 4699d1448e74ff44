"""Rewrite the instructions of an `episode/v1` shard set, in place or into another directory.

1. Read every `episode.json` (only those members; frames are skipped) and rebuild the scene facts from the stored
   layout with the simulator's own `scene_facts`, keeping the stored base instruction.
2. Rewrite all episodes in one call (one cost estimate, one Batch API submission, one cache pass).
3. Write each shard anew: same samples, same members, same order; only `instructions.{attr,semantic,spatial,
   rewriter}` change. The new tar and its index are written under `OUT/_state/rewrite_tmp/` and renamed over
   the target, so a crash leaves every shard either old or new, never torn. The rewrite depends only on the facts,
   the seed and the replies (never on the previous rewrites), so rerunning after a crash gives the same bytes.

Samples whose `episode.json` is missing or unreadable are copied unchanged and counted by reason.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataengine.errors import InputError, JobStateError
from dataengine.rewrite.base import Rewriter, Rewrites, SceneFacts, tally_provenance
from dataengine.runtime.atomic import atomic_write_text
from dataengine.shards import ShardWriter, index_path, iter_samples, list_shards
from dataengine.shards.episode import JSON_MEMBER, iter_episode_json, with_instructions

log = logging.getLogger(__name__)

EPISODE_MEMBER = JSON_MEMBER
RECIPE_FILE = "recipe.resolved.json"
STATS_FILE = "sim_stats.json"
REPORT_FILE = "rewrite_report.json"
STAGING_DIR = Path("_state") / "rewrite_tmp"
BATCH_STATE_FILE = Path("_state") / "rewrite_batch.json"
_SHARD_NAME = re.compile(r"^(?P<prefix>[A-Za-z0-9_][A-Za-z0-9_.-]*)-(?P<number>\d{6})\.tar$")


def run_defaults(src_dir: str | Path) -> dict[str, Any]:
    """The seed and object vocabulary the simulator used, from `recipe.resolved.json` (empty if absent)."""
    recipe_path = Path(src_dir) / RECIPE_FILE
    if not recipe_path.is_file():
        return {}
    recipe = json.loads(recipe_path.read_text(encoding="utf-8"))
    from dataengine.sim.assets import load_catalog

    catalog = load_catalog(recipe.get("catalogs") or None)
    vocabulary = sorted({a.name for a in catalog.objects + catalog.containers})
    return {"seed": int(recipe.get("seed", 0)), "vocabulary": vocabulary}


def facts_from_episode(key: str, doc: dict[str, Any]) -> SceneFacts:
    """The scene facts of a stored episode (the simulator's own conversion), with its stored base instruction."""
    from dataengine.records.layout import Layout
    from dataengine.sim.language import scene_facts

    layout = Layout.model_validate(doc["layout"])
    facts = scene_facts(key, layout, doc["task"]["relation"], doc["task"]["split"])
    return facts.model_copy(update={"base_instruction": doc["instructions"]["base"]})


def collect_facts(shards: list[Path], counts: Counter[str]) -> list[SceneFacts]:
    facts = []
    for shard in shards:
        for key, data in iter_episode_json(shard):
            try:
                facts.append(facts_from_episode(key, json.loads(data)))
            except (ValueError, KeyError, TypeError) as exc:
                counts["unreadable_episode_json"] += 1
                log.warning("%s: episode %s kept unchanged: unreadable episode.json (%s)", shard.name, key, exc)
    return facts


def updated_episode_json(data: bytes, rewrites: Rewrites, rewriter_name: str) -> bytes:
    """The episode.json bytes with new rewrites (the episode codec's `with_instructions`)."""
    fields = {"attr": rewrites.attr, "semantic": rewrites.semantic, "spatial": rewrites.spatial}
    return with_instructions(data, **fields, **rewrites.provenance(rewriter_name))


def _replace_shard(staging_tar: Path, target: Path) -> None:
    """Move a finished tar and its index over the target (index first; both renames are atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged_index = index_path(staging_tar)
    if staged_index.exists():
        index = json.loads(staged_index.read_text(encoding="utf-8"))
        if index.get("shard") != target.name:
            index["shard"] = target.name
            staged_index.write_text(json.dumps(index, separators=(",", ":")) + "\n", encoding="utf-8")
        os.replace(staged_index, index_path(target))
    os.replace(staging_tar, target)


def rewrite_shard(shard: Path, target: Path, staging: Path, by_key: dict[str, Rewrites], name: str,
                  counts: Counter[str]) -> None:  # fmt: skip
    """Write `shard` with new instructions to `target`, through `staging`."""
    match = _SHARD_NAME.match(shard.name)
    prefix = match.group("prefix") if match else re.sub(r"[^A-Za-z0-9_.-]", "_", shard.stem) or "episodes"
    work = staging / shard.stem
    shutil.rmtree(work, ignore_errors=True)
    writer = ShardWriter(work, prefix, max_samples=1 << 40, max_bytes=1 << 62)
    try:
        for sample in iter_samples(shard):
            key = sample["__key__"]
            members = {ext: value for ext, value in sample.items() if not ext.startswith("__")}
            if EPISODE_MEMBER not in members:
                counts["missing_episode_json"] += 1
            elif key in by_key:
                members[EPISODE_MEMBER] = updated_episode_json(members[EPISODE_MEMBER], by_key[key], name)
                counts["episodes_rewritten"] += 1
            writer.write(key, members)
    except BaseException:
        writer.abort()
        raise
    infos = writer.close()
    if not infos:  # an empty shard: nothing to rewrite
        if target != shard:
            shutil.copyfile(shard, target)
        return
    _replace_shard(work / infos[0].name, target)
    shutil.rmtree(work, ignore_errors=True)


def rewrite_episode_shards(
    src_dir: str | Path,
    out_dir: str | Path | None,
    rewriter: Rewriter,
    *,
    on_shard: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Rewrite every episode's instructions; returns the report (also written to `OUT/rewrite_report.json`).
    The folder written is locked for the run; a separate `out_dir` is a job folder of its own (`_state/job.json`
    first, `_state/complete.json` last), so readers refuse it until the rewrite has finished."""
    from dataengine.runtime.jobs import JobState, job_lock, mark_complete

    src = Path(src_dir)
    out = Path(out_dir) if out_dir is not None else src
    if not src.is_dir():
        raise InputError(f"{src} is not a directory; expected an episode shard set (dataengine sim generate)")
    if out.resolve() == src.resolve():
        with job_lock(src, "rewrite"):
            return _rewrite(src, src, rewriter, on_shard)
    state = JobState(out)
    with job_lock(out, "rewrite"):
        previous = json.loads(state.job_file.read_text(encoding="utf-8")) if state.job_file.is_file() else {}
        if out.is_dir() and any(p.name != "_state" for p in out.iterdir()) and previous.get("job") != "rewrite":
            raise JobStateError(f"{out} is not empty and holds no rewrite; choose an empty output directory")
        state.record("rewrite", [p.name for p in list_shards(src)])
        report = _rewrite(src, out, rewriter, on_shard)
        mark_complete(out)
    return report


def _rewrite(src: Path, out: Path, rewriter: Rewriter, on_shard: Callable[[Path], None] | None) -> dict[str, Any]:
    shards = list_shards(src)
    if not shards:
        raise InputError(f"{src} holds no .tar shards; expected an episode shard set (dataengine sim generate)")
    counts: Counter[str] = Counter()
    facts = collect_facts(shards, counts)
    if not facts and not counts:
        raise InputError(f"{src} holds no '{EPISODE_MEMBER}' samples: not an episode/v1 shard set")
    rewrites = rewriter.rewrite(facts)
    by_key = {f.episode_key: r for f, r in zip(facts, rewrites, strict=True)}
    staging = out / STAGING_DIR
    for shard in shards:
        rewrite_shard(shard, out / shard.relative_to(src), staging, by_key, rewriter.name, counts)
        if on_shard is not None:
            on_shard(shard)
    shutil.rmtree(staging, ignore_errors=True)
    if out.resolve() != src.resolve():
        for side in sorted(p for p in src.iterdir() if p.is_file() and not p.name.endswith((".tar", ".idx.json"))):
            if side.name != REPORT_FILE:
                shutil.copyfile(side, out / side.name)
    provenance = tally_provenance(rewrites, rewriter.name)
    _note_rewriter_in_stats(out / STATS_FILE, rewriter.name, provenance)
    report = {"source": str(src), "out": str(out), "shards": len(shards), "episodes": len(facts),
              "counts": dict(sorted(counts.items())), **provenance}  # fmt: skip
    extra = getattr(rewriter, "report", None)
    report["rewriter"] = extra() if callable(extra) else {"rewriter": rewriter.name}
    stats = getattr(rewriter, "stats", None)
    if isinstance(stats, Counter) and "counts" not in report["rewriter"]:
        report["rewriter"]["counts"] = dict(sorted(stats.items()))
    atomic_write_text(out / REPORT_FILE, json.dumps(report, indent=1, sort_keys=True) + "\n")
    return report


def _note_rewriter_in_stats(path: Path, name: str, provenance: dict) -> None:
    if path.is_file():
        stats = json.loads(path.read_text(encoding="utf-8"))
        stats["rewriter"] = name
        stats.update(provenance)
        atomic_write_text(path, json.dumps(stats, indent=1, sort_keys=True))
