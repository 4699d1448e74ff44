"""Pass 3 of a build: one task per bucket (a range of image hashes) writes the final shards.

For each image group of its bucket, in hash order, the task reads the input samples the plan names (one seek and
read per sample), checks the image bytes against their SHA-1, merges the selected items of every source into one
record, optionally downscales, and writes the sample. Memory holds one group at a time. Outputs: the shards
`<task_id>-NNNNNN.tar` (+ index), and in `_state/parts/` the manifest part and quarantined groups.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import tarfile
from collections import Counter
from pathlib import Path

import polars as pl
from pydantic import ValidationError

from dataengine.corpus.plan import read_bucket
from dataengine.corpus.resize import resize_sample
from dataengine.images import EXT_TO_FORMAT, FORMAT_TO_EXT, IMAGE_EXTS, sha1_hex
from dataengine.records.grounding import GroundingRecord
from dataengine.runtime.jobs import STATE_DIR, Task
from dataengine.shards.grounding import MANIFEST_SCHEMA, manifest_rows
from dataengine.shards.reader import split_member_name
from dataengine.shards.writer import ShardWriter

# The foundation's manifest columns plus provenance: the input sample key, its split and the item's index there.
CORPUS_MANIFEST_SCHEMA = {
    **MANIFEST_SCHEMA,
    "source_split": pl.String,
    "source_key": pl.String,
    "source_item": pl.Int32,
}
SETS_FILE = "sets.json"


class _Inputs:
    """Open input shards by id, read sample byte ranges and split them into members."""

    def __init__(self, shard_paths: list[str]) -> None:
        self.paths = shard_paths
        self.fds: dict[int, int] = {}

    def read(self, shard_id: int, offset: int, length: int) -> dict[str, bytes]:
        fd = self.fds.get(shard_id)
        if fd is None:
            fd = self.fds[shard_id] = os.open(self.paths[shard_id], os.O_RDONLY)
        chunk = os.pread(fd, length, offset)
        if len(chunk) != length:
            raise OSError(f"{self.paths[shard_id]}: short read at {offset} (input changed since the scan?)")
        members: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(chunk), mode="r:") as tar:
            for member in tar:
                parts = split_member_name(member.name) if member.isfile() else None
                if parts is not None:
                    fileobj = tar.extractfile(member)
                    members[parts[1]] = fileobj.read() if fileobj is not None else b""
        return members

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def clean_task_outputs(out_dir: Path, task_id: str) -> None:
    """Remove what an interrupted attempt of this task left (a Ray retry starts from nothing)."""
    for folder in (out_dir, out_dir / STATE_DIR / "parts"):
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name.startswith((task_id + "-", task_id + ".")) and path.is_file():
                    path.unlink()


def _license(licenses: list[str]) -> str:
    unique = list(dict.fromkeys(licenses))
    return unique[0] if len(unique) == 1 else " AND ".join(f"({x})" if " " in x else x for x in unique)


def write_bucket(task: Task, out_dir: Path) -> dict:
    """Run-tasks entry: write the shards of one bucket; returns its counts (deterministic)."""
    p = task.payload
    plan_dir = Path(p["plan_dir"])
    sets = json.loads((plan_dir / SETS_FILE).read_text(encoding="utf-8"))
    clean_task_outputs(out_dir, task.task_id)
    rows = read_bucket(plan_dir, p["bucket"])
    inputs = _Inputs(sets["shards"])
    names = sets["names"]
    counts: Counter = Counter()
    items_by: Counter = Counter()  # (source, source split, task) -> items
    pairs_by: Counter = Counter()
    quarantine: list[dict] = []
    manifest: list[dict] = []
    writer = ShardWriter(out_dir, task.task_id, max_samples=p["max_samples"], max_bytes=p["max_bytes"])
    try:
        for group, group_rows in itertools.groupby(rows.iter_rows(named=True), key=lambda r: r["group"]):
            sample = _merge_group(group, list(group_rows), inputs, names, p, counts, quarantine)
            if sample is None:
                continue
            record, image_bytes, source_keys = sample
            members = {"json": record.to_json_bytes()}
            if record.image is not None:
                members[FORMAT_TO_EXT[record.image.format]] = image_bytes
            shard = writer.write(record.key, members)
            for row, item, (src_key, src_split, src_item) in zip(
                manifest_rows(record, shard), record.items, source_keys, strict=True
            ):
                row.update(source=item.source, source_split=src_split, source_key=src_key, source_item=src_item)
                manifest.append(row)
                items_by[(item.source, src_split, item.task)] += 1
                pairs_by[(item.source, src_split, item.task)] += row["n_pairs"]
                counts["pairs"] += row["n_pairs"]
            counts["samples"] += 1
            counts["items"] += len(record.items)
        infos = writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        inputs.close()
    parts = out_dir / STATE_DIR / "parts"
    part = parts / f"{task.task_id}.parquet"
    tmp = part.with_name(part.name + ".tmp")
    pl.DataFrame(manifest, schema=CORPUS_MANIFEST_SCHEMA, orient="row").write_parquet(tmp, statistics=False)
    tmp.replace(part)
    if quarantine:
        qpath = parts / f"{task.task_id}.quarantine.jsonl"
        qtmp = qpath.with_name(qpath.name + ".tmp")
        qtmp.write_text("".join(json.dumps(q, sort_keys=True) + "\n" for q in quarantine), encoding="utf-8")
        qtmp.replace(qpath)
    breakdown = [[*k, n, pairs_by[k]] for k, n in sorted(items_by.items())]
    return {
        "samples": counts["samples"],
        "items": counts["items"],
        "pairs": counts["pairs"],
        "merged_samples": counts["merged_samples"],
        "multi_source_samples": counts["multi_source_samples"],
        "resized_images": counts["resized_images"],
        "items_dropped_by_resize": counts["items_dropped_by_resize"],
        "quarantined": dict(sorted(Counter(q["reason"] for q in quarantine).items())),
        "breakdown": breakdown,
        "shards": [[i.name, i.samples, i.bytes] for i in infos],
    }


def _merge_group(group, rows, inputs, names, p, counts, quarantine):
    """One output sample from every selected item of one image group, or None (quarantined)."""
    refs = list(dict.fromkeys((r["shard_id"], r["offset"], r["length"]) for r in rows))
    loaded = {}
    for ref in refs:
        members = inputs.read(*ref)
        loaded[ref] = (json.loads(members["json"]), members)
    first_record, first_members = loaded[refs[0]]
    image = first_record.get("image")
    image_bytes = None
    if image is not None:
        ext = next((e for e in first_members if e in IMAGE_EXTS), None)
        image_bytes = first_members.get(ext) if ext else None
        if image_bytes is None or sha1_hex(image_bytes) != group:
            quarantine.append({"key": group, "reason": "sha1_mismatch", "detail": f"input {refs[0]} bytes"})
            return None
        image = {**image, "format": image.get("format") or EXT_TO_FORMAT[ext]}
    items, source_keys, sources, licenses = [], [], [], []
    for r in rows:
        record = loaded[(r["shard_id"], r["offset"], r["length"])][0]
        name = names[r["set_id"]]
        item = {**record["items"][r["item_index"]], "source": name, "source_split": record["split"]}
        items.append(item)
        source_keys.append((r["key"], record["split"], r["item_index"]))
        sources.append(name)
        licenses.append(record["license"])
    if p["max_image_side"] and image is not None:
        resized = resize_sample(image, image_bytes, items, p["max_image_side"])
        if resized is not None:
            image, image_bytes, scaled = resized
            kept = [i for i, it in enumerate(scaled) if it is not None]
            counts["resized_images"] += 1
            counts["items_dropped_by_resize"] += len(scaled) - len(kept)
            items = [scaled[i] for i in kept]
            source_keys = [source_keys[i] for i in kept]
            sources = [sources[i] for i in kept]
            if not items:
                quarantine.append({"key": group, "reason": "no_items_after_resize", "detail": ""})
                return None
    unique_sources = list(dict.fromkeys(sources))
    out = {
        "schema": "grounding/v1",
        "key": group,
        "source": unique_sources[0],
        "sources": unique_sources,
        "split": p["output_split"],
        "license": _license(licenses),
        "image": image,
        "items": items,
    }
    try:
        record = GroundingRecord.model_validate(out)
    except ValidationError as exc:
        first = exc.errors()[0]
        detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        quarantine.append({"key": group, "reason": "invalid_merged_record", "detail": detail})
        return None
    counts["merged_samples"] += len(refs) > 1
    counts["multi_source_samples"] += len(unique_sources) > 1
    return record, image_bytes, source_keys
