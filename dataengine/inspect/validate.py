"""`dataengine validate`: check every sample of every shard against grounding/v1 and its image header."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import ValidationError

from dataengine.errors import ShardError
from dataengine.images import EXT_TO_FORMAT, IMAGE_EXTS, decode_ok, is_complete, probe_image, sha1_hex
from dataengine.records.grounding import GroundingRecord
from dataengine.shards.reader import iter_samples, list_shards

MAX_PROBLEMS_KEPT = 1000


@dataclass
class Problem:
    shard: str
    key: str | None
    reason: str  # snake_case, doubles as a stat key
    detail: str

    def __str__(self) -> str:
        where = f"{self.shard}:{self.key}" if self.key else self.shard
        return f"{where}: {self.reason}: {self.detail}"


@dataclass
class ValidationReport:
    shards: int = 0
    samples: int = 0
    valid_samples: int = 0
    pairs: int = 0
    items_by_task: Counter = field(default_factory=Counter)
    problems_by_reason: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems_by_reason and self.shards > 0

    def add(self, problem: Problem) -> None:
        self.problems_by_reason[problem.reason] += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "shards": self.shards,
            "samples": self.samples,
            "valid_samples": self.valid_samples,
            "pairs": self.pairs,
            "items_by_task": dict(sorted(self.items_by_task.items())),
            "problems_by_reason": dict(sorted(self.problems_by_reason.items())),
            "problems": [str(p) for p in self.problems],
        }


def check_sample(sample: dict, decode: bool = False) -> tuple[GroundingRecord | None, list[tuple[str, str]]]:
    """Validate one raw sample. Returns the record (None if unparsable) and (reason, detail) problems."""
    problems: list[tuple[str, str]] = []
    key = sample["__key__"]
    raw = sample.get("json")
    if raw is None:
        return None, [("missing_json", "no .json member")]
    try:
        orjson.loads(raw)  # refuses nesting deeper than 1024 instead of exhausting Python's stack
    except orjson.JSONDecodeError as exc:
        return None, [("bad_json", str(exc))]
    try:
        record = GroundingRecord.from_json_bytes(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return None, [("schema_violation", f"{loc}: {first['msg']}")]
    if record.key != key.rsplit("/", 1)[-1]:  # foreign tars may prefix keys with folders
        problems.append(("key_mismatch", f"record key {record.key!r} != member key {key!r}"))
    image_exts = [ext for ext in sample if ext in IMAGE_EXTS]
    if record.image is None:
        if image_exts:
            problems.append(("unexpected_image", f"text-only record but members {image_exts}"))
        return record, problems
    if len(image_exts) != 1:
        problems.append(("missing_image" if not image_exts else "several_images", f"image members: {image_exts}"))
        return record, problems
    ext = image_exts[0]
    data = sample[ext]
    try:
        header = probe_image(data)
    except Exception as exc:
        problems.append(("unreadable_image", str(exc)))
        return record, problems
    if EXT_TO_FORMAT[ext] != header.format:
        problems.append(("format_mismatch", f".{ext} member holds {header.format} bytes"))
    if record.image.format is not None and record.image.format != header.format:
        problems.append(("format_mismatch", f"record says {record.image.format}, bytes are {header.format}"))
    if (header.width, header.height) != (record.image.width, record.image.height):
        problems.append(
            (
                "size_mismatch",
                f"record says {record.image.width}x{record.image.height}, image is {header.width}x{header.height}",
            )
        )
    if sha1_hex(data) != record.image.sha1:
        problems.append(("sha1_mismatch", "image bytes do not match image.sha1"))
    if not is_complete(data, header.format) or (decode and not decode_ok(data)):
        problems.append(("truncated_image", f"{header.format} data is incomplete or does not decode fully"))
    return record, problems


def validate_path(path: str | Path, decode: bool = False) -> ValidationReport:
    """Validate every shard under `path` (a directory of tars written by any tool, or one tar)."""
    root = Path(path)
    report = ValidationReport()
    shards = list_shards(root)
    report.shards = len(shards)
    if not shards:
        report.add(Problem(str(root), None, "no_shards", "no .tar files found"))
        return report
    seen_keys: set[str] = set()
    for shard in shards:
        name = str(shard.relative_to(root)) if root.is_dir() else shard.name
        try:
            for sample in iter_samples(shard, name):
                report.samples += 1
                if sample["__key__"] in seen_keys:
                    report.add(Problem(name, sample["__key__"], "duplicate_key", "key already used in another shard"))
                seen_keys.add(sample["__key__"])
                record, problems = check_sample(sample, decode=decode)
                for reason, detail in problems:
                    report.add(Problem(name, sample["__key__"], reason, detail))
                if record is not None:
                    for item in record.items:
                        report.items_by_task[item.task] += 1
                    report.pairs += record.num_pairs()
                    if not problems:
                        report.valid_samples += 1
        except ShardError as exc:
            report.add(Problem(name, None, "corrupt_shard", str(exc)))
    return report
