"""Pass 3 of a build: one task per bucket (a range of image hashes) writes the final shards.

For each image group of its bucket, in hash order, the task reads the input samples the plan names (one seek and
read per sample), checks the image bytes against their SHA-1, merges the selected items of every source into one
record, optionally downscales, and writes the sample. Memory holds one group at a time. Outputs: the shards
`<task_id>-NNNNNN.tar` (+ index), and in `_state/parts/` the manifest part and quarantined groups.

Records are validated once, in the scan. When every input record of a group was already in canonical form
(`GroundingRecord.to_json_bytes()`, as converters write it) and nothing is resized, the merged record is valid by
construction and its JSON is written directly in the same canonical form; otherwise it goes through the model.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from pathlib import Path

import orjson
import polars as pl
from pydantic import ValidationError

from dataengine.corpus.plan import read_bucket
from dataengine.corpus.resize import resize_sample
from dataengine.images import EXT_TO_FORMAT, IMAGE_EXTS, sha1_hex
from dataengine.records.grounding import TARGET_FIELDS, GroundingRecord, item_pairs
from dataengine.runtime.atomic import atomic_output, atomic_write_text
from dataengine.runtime.jobs import STATE_DIR, JobState, Task
from dataengine.shards.grounding import MANIFEST_SCHEMA, encode_members
from dataengine.shards.index import parse_sample
from dataengine.shards.writer import ShardWriter

# The foundation's manifest columns plus provenance: the input sample key, its split and the item's index there.
CORPUS_MANIFEST_SCHEMA = {
    **MANIFEST_SCHEMA,
    "source_split": pl.String,
    "source_key": pl.String,
    "source_item": pl.Int32,
}
SETS_FILE = "sets.json"
_PLAN_COLUMNS = ["group", "set_id", "shard_id", "offset", "length", "key", "item_index", "n_pairs", "canonical"]


class _Inputs:
    """Open input shards by id, read sample byte ranges and split them into members."""

    def __init__(self, shard_paths: list[str]) -> None:
        self.paths = shard_paths
        self.fds: dict[int, int] = {}

    def read(self, shard_id: int, offset: int, length: int) -> dict:
        fd = self.fds.get(shard_id)
        if fd is None:
            fd = self.fds[shard_id] = os.open(self.paths[shard_id], os.O_RDONLY)
        chunk = os.pread(fd, length, offset)
        if len(chunk) != length:
            raise OSError(f"{self.paths[shard_id]}: short read at {offset} (input changed since the scan?)")
        return parse_sample(chunk, Path(self.paths[shard_id]).name)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def merged_license(licenses: list[str]) -> str:
    """One licence, or the distinct licences joined by AND (each parenthesized when it has spaces)."""
    unique = list(dict.fromkeys(licenses))
    return unique[0] if len(unique) == 1 else " AND ".join(f"({x})" if " " in x else x for x in unique)


def canonical_json(record: dict) -> bytes:
    """The bytes `GroundingRecord.to_json_bytes()` gives for a record dict built from canonical records: orjson
    with sorted keys, the encoder `to_json_bytes` uses (the scan also checks that orjson reproduces each input
    record's bytes, so this stays true if the model's encoder changes)."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def _n_targets(item: dict, n_pairs: int) -> int:
    """Targets of an item dict: boxes, points or trace points; pairs for vqa (as `records.item_targets`)."""
    name = TARGET_FIELDS.get(item["task"])
    return len(item[name]) if name else n_pairs


class _Bucket:
    """Counters and outputs of one write task."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.items_by: Counter = Counter()  # (source, source split, task) -> items
        self.pairs_by: Counter = Counter()
        self.quarantine: list[dict] = []
        self.manifest: list[tuple] = []

    def reject(self, group: str, reason: str, detail: str) -> None:
        self.quarantine.append({"key": group, "reason": reason, "detail": detail})


def write_bucket(task: Task, out_dir: Path) -> dict:
    """Run-tasks entry: write the shards of one bucket; returns its counts (deterministic)."""
    p = task.payload
    plan_dir = Path(p["plan_dir"])
    sets = json.loads((plan_dir / SETS_FILE).read_text(encoding="utf-8"))
    JobState(out_dir).clean_outputs(task.task_id)  # what an interrupted attempt left (a Ray retry)
    rows = read_bucket(plan_dir, p["bucket"], p["n_buckets"], p["n_partitions"]).select(_PLAN_COLUMNS)
    inputs = _Inputs(sets["shards"])
    bucket = _Bucket()
    writer = ShardWriter(out_dir, task.task_id, max_samples=p["max_samples"], max_bytes=p["max_bytes"])
    try:
        for group, group_rows in itertools.groupby(rows.iter_rows(), key=lambda r: r[0]):
            sample = _merge_group(group, list(group_rows), inputs, sets["names"], p, bucket)
            if sample is not None:
                _write_sample(writer, p["output_split"], bucket, *sample)
        infos = writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        inputs.close()
    _write_parts(out_dir / STATE_DIR / "parts", task.task_id, bucket)
    c = bucket.counts
    return {
        "samples": c["samples"],
        "items": c["items"],
        "pairs": c["pairs"],
        "merged_samples": c["merged_samples"],
        "multi_source_samples": c["multi_source_samples"],
        "resized_images": c["resized_images"],
        "items_dropped_by_resize": c["items_dropped_by_resize"],
        "quarantined": dict(sorted(Counter(q["reason"] for q in bucket.quarantine).items())),
        "breakdown": [[*k, n, bucket.pairs_by[k]] for k, n in sorted(bucket.items_by.items())],
        "shards": [[i.name, i.samples, i.bytes] for i in infos],
    }


def _write_parts(parts: Path, task_id: str, bucket: _Bucket) -> None:
    part = parts / f"{task_id}.parquet"
    frame = pl.DataFrame(bucket.manifest, schema=CORPUS_MANIFEST_SCHEMA, orient="row")
    with atomic_output(part) as tmp:
        frame.write_parquet(tmp, statistics=False)
    if bucket.quarantine:
        lines = "".join(json.dumps(q, sort_keys=True) + "\n" for q in bucket.quarantine)
        atomic_write_text(parts / f"{task_id}.quarantine.jsonl", lines)


def _write_sample(writer, split, bucket, record: dict, json_bytes: bytes, image_bytes, provenance) -> None:
    image = record["image"]
    shard = writer.write(record["key"], encode_members(json_bytes, image["format"] if image else None, image_bytes))
    sha1, width, height = (image["sha1"], image["width"], image["height"]) if image else (None, None, None)
    for index, (item, (src_key, src_split, src_item, n_pairs)) in enumerate(
        zip(record["items"], provenance, strict=True)
    ):
        source, task = item["source"], item["task"]
        bucket.manifest.append(
            (record["key"], shard, index, source, split, task, sha1, width, height, _n_targets(item, n_pairs),
             n_pairs, src_split, src_key, src_item)
        )  # fmt: skip
        bucket.items_by[(source, src_split, task)] += 1
        bucket.pairs_by[(source, src_split, task)] += n_pairs
        bucket.counts["pairs"] += n_pairs
    bucket.counts["samples"] += 1
    bucket.counts["items"] += len(record["items"])


def _merge_group(group: str, rows: list[tuple], inputs: _Inputs, names: list[str], p: dict, bucket: _Bucket):
    """(record dict, JSON bytes, image bytes, provenance per item) for one image group, or None (quarantined)."""
    refs = list(dict.fromkeys((r[2], r[3], r[4]) for r in rows))
    loaded = {}
    for ref in refs:
        members = inputs.read(*ref)
        loaded[ref] = (orjson.loads(members["json"]), members)
    first_record, first_members = loaded[refs[0]]
    image = first_record.get("image")
    image_bytes = None
    if image is not None:
        ext = next((e for e in first_members if e in IMAGE_EXTS), None)
        image_bytes = first_members.get(ext) if ext else None
        if image_bytes is None or sha1_hex(image_bytes) != group:
            bucket.reject(group, "sha1_mismatch", f"input bytes at {refs[0]} do not hash to the image sha1")
            return None
        if not image.get("format"):
            image = {**image, "format": EXT_TO_FORMAT[ext]}
    items, provenance, sources, licenses = [], [], [], []
    for _group, set_id, shard_id, offset, length, key, item_index, n_pairs, _canonical in rows:
        record = loaded[(shard_id, offset, length)][0]
        name = names[set_id]
        items.append({**record["items"][item_index], "source": name, "source_split": record["split"]})
        provenance.append((key, record["split"], item_index, n_pairs))
        sources.append(name)
        licenses.append(record["license"])
    canonical = all(r[8] for r in rows)
    if p["max_image_side"] and image is not None:
        resized = resize_sample(image, image_bytes, items, p["max_image_side"])
        if resized is not None:
            image, image_bytes, scaled = resized
            kept = [i for i, it in enumerate(scaled) if it is not None]
            bucket.counts["resized_images"] += 1
            bucket.counts["items_dropped_by_resize"] += len(scaled) - len(kept)
            items, provenance = [scaled[i] for i in kept], [provenance[i] for i in kept]
            sources = [sources[i] for i in kept]
            canonical = False
            if not items:
                bucket.reject(group, "no_items_after_resize", "every box collapsed")
                return None
    unique_sources = list(dict.fromkeys(sources))
    record = {
        "schema": "grounding/v1",
        "key": group,
        "source": unique_sources[0],
        "sources": unique_sources,
        "split": p["output_split"],
        "license": merged_license(licenses),
        "image": image,
        "items": items,
    }
    if canonical:
        json_bytes = canonical_json(record)
    else:
        try:
            model = GroundingRecord.model_validate(record)
        except ValidationError as exc:
            first = exc.errors()[0]
            bucket.reject(group, "invalid_merged_record", f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
            return None
        json_bytes = model.to_json_bytes()
        record = orjson.loads(json_bytes)
        provenance = [(*prov[:3], item_pairs(it)) for prov, it in zip(provenance, model.items, strict=True)]
    bucket.counts["merged_samples"] += len(refs) > 1
    bucket.counts["multi_source_samples"] += len(unique_sources) > 1
    return record, json_bytes, image_bytes, provenance


__all__ = ["CORPUS_MANIFEST_SCHEMA", "SETS_FILE", "canonical_json", "merged_license", "write_bucket"]
