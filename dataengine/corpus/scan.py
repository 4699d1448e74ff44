"""Pass 1 of a build: read the `.json` members of every input shard (image bytes are skipped, not read) and write
one row per item to parquet: where its sample lies in the tar, its image hash, COCO image id, content hash,
priority and pair count. Invalid records are quarantined with a reason, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import polars as pl
from pydantic import ValidationError

from dataengine.corpus.quotas import item_priorities
from dataengine.images import IMAGE_EXTS, sha1_hex
from dataengine.records.grounding import BoxItem, GroundingRecord, PointItem, TraceItem, item_pairs
from dataengine.runtime.atomic import atomic_output, atomic_write_text
from dataengine.runtime.jobs import Task
from dataengine.shards.reader import iter_tar_samples

SCAN_SCHEMA = {
    "set_id": pl.Int16,
    "shard_id": pl.Int32,
    "offset": pl.Int64,
    "length": pl.Int64,
    "key": pl.String,
    "item_index": pl.Int32,
    "split": pl.String,
    "task": pl.String,
    "group": pl.String,
    "has_image": pl.Boolean,
    "coco_id": pl.Int64,
    "item_hash": pl.UInt64,
    "priority": pl.UInt64,
    "n_pairs": pl.Int32,
    "image_bytes": pl.Int64,
    "item_bytes": pl.Int64,
    "canonical": pl.Boolean,
}
# COCO file names: COCO_train2014_000000123456.jpg, train2017/000000123456.jpg, coco/.../000000123456.jpg
_COCO_NAME_RE = re.compile(r"COCO_(?:train|val|test)20\d\d_0*(\d{1,12})\.(?:jpg|jpeg|png)$", re.IGNORECASE)
_COCO_DIR_RE = re.compile(
    r"(?:^|[/\\])(?:coco[^/\\]*[/\\](?:.*[/\\])?|(?:train|val)20(?:14|17)[/\\])0*(\d{1,12})\.(?:jpg|jpeg|png)$",
    re.IGNORECASE,
)
_COCO_ID_FIELDS = ("coco_image_id", "coco_id")


@dataclass
class RawSample:
    """Members of one sample as found in a tar: byte range, JSON bytes, image extension and size."""

    key: str
    offset: int
    end: int
    json_bytes: bytes | None = None
    image_ext: str | None = None
    image_size: int = 0
    duplicate_members: list[str] = field(default_factory=list)


def iter_raw_samples(shard: Path) -> Iterator[RawSample]:
    """Samples of a tar with their byte ranges, reading JSON members only (image data is seeked over), through the
    one tar reader (`shards.reader.iter_tar_samples`); odd members are recorded for the quarantine, not fatal."""
    for sample in iter_tar_samples(shard, _is_json, strict=False, seekable=True, sparse=True):
        images = [ext for ext in sample.sizes if ext in IMAGE_EXTS]
        duplicates = [*sample.repeated, *images[1:]]
        image_ext = images[0] if images else None
        yield RawSample(
            sample.key,
            sample.offset,
            sample.end,
            sample.data.get("json"),
            image_ext,
            sample.sizes[image_ext] if image_ext else 0,
            duplicates,
        )


def _is_json(ext: str) -> bool:
    return ext == "json"


def coco_image_id(record: dict) -> int | None:
    """The COCO image id of a record: an explicit `coco_image_id` field, else parsed from `image.origin`."""
    image = record.get("image") or {}
    for holder in (image, record, image.get("meta") or {}, record.get("meta") or {}):
        for name in _COCO_ID_FIELDS:
            value = holder.get(name)
            if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
                return int(value)
    origin = str(image.get("origin") or "")
    match = _COCO_NAME_RE.search(origin) or _COCO_DIR_RE.search(origin)
    return int(match.group(1)) if match else None


def _is_canonical(record: GroundingRecord, data: bytes) -> bool:
    """True when the bytes are exactly the record's canonical JSON and orjson (the write phase's encoder)
    reproduces them: the write phase may then merge such records without the model."""
    if record.to_json_bytes() != data:
        return False
    return orjson.dumps(orjson.loads(data), option=orjson.OPT_SORT_KEYS) == data


def _id_fields(record: GroundingRecord) -> dict:
    """The record fields `coco_image_id` looks at, without dumping the whole record."""
    image = record.image
    return {
        **(record.model_extra or {}),
        "image": {**(image.model_extra or {}), "origin": image.origin, "coco_image_id": image.coco_image_id}
        if image
        else None,
    }


def text_group(set_name: str, key: str) -> str:
    """The group id of a text-only sample (it merges with nothing): 40 hex chars like an image sha1."""
    return sha1_hex(f"text\x1f{set_name}\x1f{key}".encode())


def item_content_hash(group: str, item) -> int:
    """Hash of (image, task, query, answer): equal items of one image are duplicates whatever their ids."""
    if isinstance(item, BoxItem):
        body = (item.query, item.boxes)
    elif isinstance(item, PointItem):
        body = (item.query, item.points)
    elif isinstance(item, TraceItem):
        body = (item.query, item.trace)
    else:
        body = tuple((t.from_, t.value) for t in item.conversation)
    text = f"item\x1f{group}\x1f{item.task}\x1f{body!r}"
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def scan_shard(task: Task, out_dir: Path) -> dict:
    """Run-tasks entry: scan one input shard into `<task_id>.parquet` (+ `<task_id>.quarantine.jsonl`). The result
    carries the task's CPU seconds (`build --dry-run` budgets a cluster from them)."""
    cpu0 = time.process_time()
    p = task.payload
    shard, set_id, set_name, shard_id, seed = Path(p["shard"]), p["set_id"], p["set_name"], p["shard_id"], p["seed"]
    rows: list[tuple] = []
    quarantine: list[dict] = []
    licenses: Counter = Counter()
    splits: Counter = Counter()
    samples = 0

    def reject(key: str, reason: str, detail: str) -> None:
        quarantine.append({"set": set_name, "shard": str(shard), "key": key, "reason": reason, "detail": detail})

    for raw in iter_raw_samples(shard):
        samples += 1
        if raw.json_bytes is None:
            reject(raw.key, "missing_json", "no .json member")
            continue
        if raw.duplicate_members:
            reject(raw.key, "duplicate_member", f"members repeated: {raw.duplicate_members}")
            continue
        try:
            record = GroundingRecord.from_json_bytes(raw.json_bytes)
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = "bad_json" if first["type"] == "json_invalid" else "schema_violation"
            reject(raw.key, reason, f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
            continue
        if (record.image is None) != (raw.image_ext is None):
            reason = "missing_image" if raw.image_ext is None else "unexpected_image"
            reject(raw.key, reason, f"record image {'set' if record.image else 'null'}, member {raw.image_ext}")
            continue
        group = record.image.sha1 if record.image else text_group(set_name, raw.key)
        coco_id = coco_image_id(_id_fields(record)) if record.image else None
        canonical = _is_canonical(record, raw.json_bytes)
        licenses[record.license] += 1
        splits[record.split] += 1
        priorities = item_priorities(seed, set_name, raw.key, len(record.items))
        item_bytes = len(raw.json_bytes) // len(record.items)  # an estimate, for the plan's size forecast
        for idx, item in enumerate(record.items):
            rows.append(
                (
                    set_id,
                    shard_id,
                    raw.offset,
                    raw.end - raw.offset,
                    raw.key,
                    idx,
                    record.split,
                    item.task,
                    group,
                    record.image is not None,
                    coco_id,
                    item_content_hash(group, item),
                    priorities[idx],
                    item_pairs(item),
                    raw.image_size,
                    item_bytes,
                    canonical,
                )
            )
    part = out_dir / f"{task.task_id}.parquet"
    with atomic_output(part) as tmp:
        pl.DataFrame(rows, schema=SCAN_SCHEMA, orient="row").write_parquet(tmp, statistics=True)
    if quarantine:
        lines = "".join(json.dumps(q, sort_keys=True) + "\n" for q in quarantine)
        atomic_write_text(out_dir / f"{task.task_id}.quarantine.jsonl", lines)
    return {
        "samples": samples,
        "items": len(rows),
        "quarantined": dict(Counter(q["reason"] for q in quarantine)),
        "licenses": dict(licenses),
        "splits": dict(splits),
        "cpu_s": round(time.process_time() - cpu0, 4),
    }
