"""grounding/v1 samples on top of the generic shard writer and reader, plus the item manifest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from dataengine.errors import RecordError
from dataengine.images import EXT_TO_FORMAT, FORMAT_TO_EXT, IMAGE_EXTS
from dataengine.records.grounding import GroundingRecord, item_pairs, item_targets
from dataengine.runtime.atomic import atomic_output
from dataengine.shards.reader import Sample, iter_shard_set
from dataengine.shards.writer import ShardInfo, ShardWriter

MANIFEST_NAME = "manifest.parquet"
MANIFEST_SCHEMA = {
    "key": pl.String,
    "shard": pl.String,
    "item_index": pl.Int32,
    "source": pl.String,
    "split": pl.String,
    "task": pl.String,
    "image_sha1": pl.String,
    "width": pl.Int32,
    "height": pl.Int32,
    "n_targets": pl.Int32,
    "n_pairs": pl.Int32,
}


@dataclass
class GroundingSample:
    """A decoded grounding sample: the record, the untouched image bytes (None for text-only) and its shard."""

    record: GroundingRecord
    image_bytes: bytes | None
    image_ext: str | None
    shard: str = ""


def sample_members(record: GroundingRecord, image_bytes: bytes | None) -> dict[str, bytes]:
    """Encode one sample: its WebDataset members, `json` plus the image under its format's extension."""
    if record.image is not None:
        if image_bytes is None:
            raise RecordError(f"{record.key}: record has an image but no image bytes were given")
        if record.image.format is None:
            raise RecordError(f"{record.key}: image.format must be set when writing")
    elif image_bytes is not None:
        raise RecordError(f"{record.key}: image bytes given for a text-only record")
    return encode_members(record.to_json_bytes(), record.image.format if record.image else None, image_bytes)


def encode_members(json_bytes: bytes, image_format: str | None, image_bytes: bytes | None) -> dict[str, bytes]:
    """The members of a sample whose record JSON is already encoded (the corpus writer's merged records)."""
    members = {"json": json_bytes}
    if image_format is not None:
        members[FORMAT_TO_EXT[image_format]] = image_bytes
    return members


def manifest_rows(record: GroundingRecord, shard: str) -> list[dict]:
    """One manifest row per item."""
    image = record.image
    return [
        {
            "key": record.key,
            "shard": shard,
            "item_index": idx,
            "source": record.source,
            "split": record.split,
            "task": item.task,
            "image_sha1": image.sha1 if image else None,
            "width": image.width if image else None,
            "height": image.height if image else None,
            "n_targets": item_targets(item),
            "n_pairs": item_pairs(item),
        }
        for idx, item in enumerate(record.items)
    ]


def manifest_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=MANIFEST_SCHEMA, orient="row") if rows else pl.DataFrame(schema=MANIFEST_SCHEMA)


def write_manifest(rows: list[dict], path: str | Path) -> Path:
    """Write manifest rows to parquet (temporary name, then rename)."""
    with atomic_output(path) as tmp:
        manifest_frame(rows).write_parquet(tmp, statistics=False)
    return Path(path)


def merge_manifests(parts: list[Path], path: str | Path) -> Path:
    """Concatenate manifest parts in the given order into one parquet, streaming."""
    with atomic_output(path) as tmp:
        if parts:
            pl.scan_parquet([str(p) for p in parts]).sink_parquet(tmp, statistics=False, maintain_order=True)
        else:
            manifest_frame([]).write_parquet(tmp, statistics=False)
    return Path(path)


class GroundingShardWriter:
    """Writes grounding samples to shards and collects the manifest rows of what it wrote."""

    def __init__(self, out_dir: str | Path, prefix: str, **shard_options) -> None:
        self.out_dir = Path(out_dir)
        self.shards = ShardWriter(out_dir, prefix, **shard_options)
        self.rows: list[dict] = []
        self.samples = 0
        self.pairs = 0

    def __enter__(self) -> GroundingShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.shards.abort()

    def write(self, record: GroundingRecord, image_bytes: bytes | None) -> str:
        shard = self.shards.write(record.key, sample_members(record, image_bytes))
        self.rows.extend(manifest_rows(record, shard))
        self.samples += 1
        self.pairs += record.num_pairs()
        return shard

    def close(self) -> list[ShardInfo]:
        return self.shards.close()


def decode_sample(sample: Sample) -> GroundingSample:
    """Parse a raw WebDataset sample into a GroundingSample (raises on an invalid record)."""
    if "json" not in sample:
        raise RecordError(f"sample {sample['__key__']!r} has no .json member")
    record = GroundingRecord.from_json_bytes(sample["json"])
    image_exts = [ext for ext in sample if ext in IMAGE_EXTS]
    ext = image_exts[0] if image_exts else None
    if record.image is not None and record.image.format is None and ext is not None:
        record.image.format = EXT_TO_FORMAT[ext]
    return GroundingSample(record, sample.get(ext) if ext else None, ext, sample.get("__shard__", ""))


def iter_grounding(path: str | Path) -> Iterator[GroundingSample]:
    """Every grounding sample under a directory of shards (or one tar), in shard order."""
    for sample in iter_shard_set(path):
        yield decode_sample(sample)
