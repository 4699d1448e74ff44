"""The one runner every source uses: plan partitions -> Ray tasks -> shards + quarantine -> merged report.

Each task rebuilds its converter from the registry, reads its partition, validates every record against
grounding/v1, writes `OUT/<task_id>-NNNNNN.tar` shards and its manifest and quarantine parts under
`OUT/_state/parts/`, and returns its counters. The driver merges the parts in task order into
`OUT/manifest.parquet`, `OUT/quarantine.jsonl` and `OUT/convert_report.json`. Partitions depend only on the input,
and every task's output only on its partition, so the output is byte-identical for any number of workers and
after `resume`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dataengine.converters.base import ConvertOptions, Reject, TaskStats
from dataengine.converters.common import gc_paused
from dataengine.converters.files import InputLimits
from dataengine.converters.registry import get_converter
from dataengine.converters.registry import source_options as converter_options
from dataengine.converters.report import REPORT_NAME, build_report, merge_quarantine
from dataengine.errors import InputError
from dataengine.images import jpeg_fully_coded, stable_text
from dataengine.records.grounding import GroundingRecord
from dataengine.runtime.atomic import atomic_write_text
from dataengine.runtime.jobs import STATE_DIR, JobState, Task, job_lock, mark_complete, run_tasks
from dataengine.runtime.progress import RunningTotals
from dataengine.shards.grounding import MANIFEST_NAME, GroundingShardWriter, merge_manifests, write_manifest

log = logging.getLogger(__name__)

SHARD_MAX_SAMPLES = 10_000
SHARD_MAX_BYTES = 1 << 30
QUARANTINE_NAME = "quarantine.jsonl"


def run_conversion(
    source: str,
    input_path: str | Path,
    out_dir: str | Path,
    *,
    source_options: dict[str, Any] | None = None,
    images_dir: str | Path | None = None,
    split_by: str | None = None,
    keep_text_only: bool = False,
    splits: list[str] | tuple[str, ...] | None = None,
    limit: int | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    resume: bool = False,
    limits: InputLimits | None = None,
    verify_images: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Convert one source into grounding/v1 shards under `out_dir`; returns the report (also saved as
    `convert_report.json`). `source_options` are the converter's own options (its `Options` model; `images_dir`,
    `split_by` and `keep_text_only` are shortcuts for the options of that name). `workers=0` runs inline; otherwise
    tasks run on Ray (local unless `ray_address`). Raises InputError when the input or an option is unusable; bad
    records are quarantined, never fatal. `limits`: which files may be read and how large (`converters.files`;
    default: inside the input folders, 256 MB an image). `verify_images` decodes every JPEG once
    (`images.jpeg_fully_coded`, ~2 ms a COCO image) to quarantine files cut short whose end marker was put back,
    which the header checks cannot see."""
    converter_cls = get_converter(source)
    limits = limits or InputLimits()
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be a positive number, got {limit}")
    shortcuts = {"images_dir": images_dir, "split_by": split_by, "keep_text_only": keep_text_only or None}
    values = {k: str(v) if k == "images_dir" else v for k, v in shortcuts.items() if v is not None}
    clash = sorted(set(values) & set(source_options or {}))
    if clash:
        raise InputError(f"{source}: options {clash} given twice")
    options = ConvertOptions(
        input_path=str(Path(input_path).expanduser().resolve()),
        splits=tuple(splits) if splits else None,
        limit=limit,
        follow_symlinks=limits.follow_symlinks,
        max_image_mb=limits.max_image_mb,
        max_annotation_mb=limits.max_annotation_mb,
        verify_images=verify_images,
        source=converter_options(source, {**values, **(source_options or {})}),
    )
    out = Path(out_dir)
    JobState(out).check_owner(resume)  # refuse a folder that is not ours before reading any input
    converter = converter_cls(options)
    converter.check()
    with gc_paused():
        partitions = converter.plan()
    if not partitions:
        detail = "with the given options"
        if options.splits and converter.splits_seen:
            detail = (
                f"with --splits {', '.join(options.splits)}; its splits are {', '.join(sorted(converter.splits_seen))}"
            )
        raise InputError(f"{source}: nothing to convert in {options.input_path} {detail}")
    width = max(5, len(str(len(partitions) - 1)))
    tasks = [
        Task(f"{converter_cls.slug}-{i:0{width}d}", {"source": source, "options": options.to_payload(), "partition": p})
        for i, p in enumerate(partitions)
    ]
    log.info("%s: %d partitions from %s", source, len(tasks), options.input_path)
    with job_lock(out, f"convert {source}", resume=resume):
        return _convert(source, converter, options, tasks, out, workers, ray_address, resume, show_progress)


def _convert(source, converter, options, tasks, out, workers, ray_address, resume, show_progress) -> dict[str, Any]:
    """The job itself, with the output folder locked: tasks, then the merged manifest, quarantine and report."""
    results = run_tasks(
        convert_partition,
        tasks,
        out,
        job_name=f"convert {source}",
        fingerprint=_fingerprint(source, options, converter.fingerprint_files(), len(tasks)),
        workers=workers,
        ray_address=ray_address,
        resume=resume,
        describe=_describer(),
        show_progress=show_progress,
    )
    parts_dir = out / STATE_DIR / "parts"
    merge_manifests([parts_dir / f"{t.task_id}.manifest.parquet" for t in tasks], out / MANIFEST_NAME)
    merge_quarantine([parts_dir / f"{t.task_id}.quarantine.jsonl" for t in tasks], out / QUARANTINE_NAME)
    report = build_report(converter, options, results)
    atomic_write_text(out / REPORT_NAME, json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    mark_complete(out)
    return report


def convert_partition(task: Task, out_dir: Path) -> dict[str, Any]:
    """Ray task body: read one partition, write its shards, manifest part and quarantine part."""
    payload = task.payload
    options = ConvertOptions.from_payload(payload["options"])
    converter = get_converter(payload["source"])(options)
    stats = TaskStats()
    for reason, n in payload["partition"].get("skipped_in_plan", {}).items():  # filtered before partitioning
        stats.skip(reason, n)
    quarantine: list[dict[str, Any]] = []
    per_split: dict[str, Counter] = {}
    items_by_task: Counter = Counter()
    written_keys: set[str] = set()

    def reject(source_id: str, reason: str, detail: str, scope: str = "record") -> None:
        detail = stable_text(detail)  # byte-identical quarantine files from run to run
        quarantine.append(
            {"source": converter.name, "source_id": source_id, "reason": reason, "detail": detail, "scope": scope}
        )

    writer = GroundingShardWriter(out_dir, task.task_id, max_samples=SHARD_MAX_SAMPLES, max_bytes=SHARD_MAX_BYTES)
    with writer, gc_paused():
        for output in converter.read(payload["partition"], stats):
            if isinstance(output, Reject):
                reject(output.source_id, output.reason, output.detail, output.scope)
                continue
            try:
                record = GroundingRecord.model_validate(output.record)
            except ValidationError as exc:
                first = exc.errors()[0]
                detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
                for source_id in output.source_ids:
                    reject(source_id, "schema_violation", detail)
                continue
            if _cut_short(options, record, output.image_bytes):
                for source_id in output.source_ids:
                    reject(source_id, "truncated_image", "the JPEG's coded data ends before its last block")
                continue
            if record.key in written_keys:  # a converter bug or odd data: never let one sample replace another
                for source_id in output.source_ids:
                    reject(source_id, "duplicate_key", f"key {record.key!r} was already written by this task")
                continue
            written_keys.add(record.key)
            pairs_before = writer.pairs
            writer.write(record, output.image_bytes)
            split = per_split.setdefault(record.split, Counter())
            split["samples"] += 1
            split["items"] += len(record.items)
            split["pairs"] += writer.pairs - pairs_before
            items_by_task.update(item.task for item in record.items)
    shards = writer.close()
    parts_dir = out_dir / STATE_DIR / "parts"
    write_manifest(writer.rows, parts_dir / f"{task.task_id}.manifest.parquet")
    lines = "".join(json.dumps(q, ensure_ascii=False, sort_keys=True) + "\n" for q in quarantine)
    atomic_write_text(parts_dir / f"{task.task_id}.quarantine.jsonl", lines)
    return {
        "task_id": task.task_id,
        "read": stats.read,
        "samples": writer.samples,
        "pairs": writer.pairs,
        "items_by_task": dict(items_by_task),
        "quarantined": dict(Counter(q["reason"] for q in quarantine)),
        "skipped": dict(stats.skipped),
        "counts": dict(stats.counts),
        "decisions": stats.decisions,
        "per_split": {k: dict(v) for k, v in per_split.items()},
        "shards": [{"name": s.name, "samples": s.samples, "bytes": s.bytes} for s in shards],
    }


def _cut_short(options: ConvertOptions, record: GroundingRecord, image: bytes | None) -> bool:
    """With --verify-images: a JPEG whose coded data stops before its last block (an end marker put back)."""
    if not options.verify_images or image is None or record.image is None or record.image.format != "jpeg":
        return False
    return not jpeg_fully_coded(image)


def _fingerprint(source: str, options: ConvertOptions, files: list[Path], n_tasks: int) -> str:
    """Identity of a conversion job: source, options, input files (path, size, mtime) and the task count."""
    identity: dict[str, Any] = {"source": source, "options": options.to_dict(), "tasks": n_tasks, "files": []}
    for path in sorted(files):
        try:
            st = path.stat()
            identity["files"].append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            identity["files"].append([str(path), None, None])
    blob = json.dumps(identity, sort_keys=True).encode("utf-8")
    return hashlib.sha1(blob, usedforsecurity=False).hexdigest()


def _describer() -> Callable[[list[dict]], str]:
    totals = RunningTotals(lambda r: {"samples": r.get("samples", 0), "q": sum(r.get("quarantined", {}).values())})

    def describe(results: list[dict]) -> str:
        counts = totals.update(results)
        return f"{counts['samples']} samples, {counts['q']} quarantined"

    return describe
