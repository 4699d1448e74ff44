"""The converter interface: a small reader per source that plans partitions and yields canonical records.

A converter never writes files. `plan()` cuts the input into partitions fixed by the input alone (never by the
worker count); `read(partition, stats)` yields, for one partition, `Sample`s (a grounding/v1 record as a dict plus
the untouched image bytes) and `Reject`s (a source record that cannot be used, with a snake_case reason). The
shared runner (`dataengine.converters.runner`) validates, shards, quarantines and reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dataengine.converters.files import DEFAULT_MAX_ANNOTATION_MB, DEFAULT_MAX_IMAGE_MB, InputFiles, InputLimits
from dataengine.errors import InputError


@dataclass(frozen=True)
class ConvertOptions:
    """What the user asked for; JSON-able so tasks can rebuild their converter on any Ray worker."""

    input_path: str
    images_dir: str | None = None
    split_by: str | None = None
    splits: tuple[str, ...] | None = None
    limit: int | None = None
    keep_text_only: bool = False
    follow_symlinks: bool = False
    max_image_mb: float = DEFAULT_MAX_IMAGE_MB
    max_annotation_mb: float = DEFAULT_MAX_ANNOTATION_MB
    verify_images: bool = False  # decode each JPEG once to catch truncation hidden by an appended end marker

    def limits(self) -> InputLimits:
        return InputLimits(self.follow_symlinks, self.max_image_mb, self.max_annotation_mb)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["splits"] = list(self.splits) if self.splits is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvertOptions:
        splits = data.get("splits")
        return cls(**{**data, "splits": tuple(splits) if splits is not None else None})


@dataclass
class Sample:
    """One output sample: a grounding/v1 record as a plain dict (validated by the runner), the exact image bytes
    (None for a text-only record) and the ids of the source records it holds (for quarantine lines)."""

    record: dict[str, Any]
    image_bytes: bytes | None
    source_ids: list[str]


@dataclass
class Reject:
    """A source record (or one item of it) that was not converted: source id, snake_case reason, detail."""

    source_id: str
    reason: str
    detail: str = ""
    scope: str = "record"  # "record": nothing of it was written; "item": the rest of the record was


@dataclass
class TaskStats:
    """Counters a converter fills while reading one partition; the runner adds what it wrote."""

    read: int = 0
    skipped: Counter = field(default_factory=Counter)  # filtered on purpose (split filter, text-only rows)
    counts: Counter = field(default_factory=Counter)  # e.g. clipped_boxes, sampled_points
    decisions: dict[str, Any] = field(default_factory=dict)  # e.g. PixMo's coordinate scale per file

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def decide(self, name: str, key: str, value: Any) -> None:
        self.decisions.setdefault(name, {})[key] = value


Output = Sample | Reject


class Converter:
    """Base class of every source reader. Subclasses set the class attributes and implement the three methods."""

    name: ClassVar[str]  # CLI source name, e.g. "refcoco+"
    slug: ClassVar[str]  # filename-safe form, prefix of task ids and shard names, e.g. "refcocoplus"
    license: ClassVar[str]
    layout: ClassVar[str]  # expected input layout, shown by `dataengine convert --help`
    split_schemes: ClassVar[tuple[str, ...]] = ()  # accepted --split-by values (first is the default)

    def __init__(self, options: ConvertOptions) -> None:
        self.options = options
        self.input_path = Path(options.input_path)
        self.files = InputFiles([options.input_path, options.images_dir], options.limits())
        self.splits_seen: set[str] = set()  # every split name `wants_split` was asked about (for error messages)

    @property
    def split_by(self) -> str | None:
        if not self.split_schemes:
            return None
        return self.options.split_by or self.split_schemes[0]

    def check(self) -> None:
        """Raise InputError when the input itself is unusable (run once on the driver, before any work)."""
        if self.options.split_by is not None and self.options.split_by not in self.split_schemes:
            allowed = ", ".join(self.split_schemes) or "none (this source has a single split scheme)"
            raise InputError(f"{self.name}: --split-by {self.options.split_by!r} is not valid; use {allowed}")
        if not self.input_path.exists():
            raise InputError(f"{self.name}: input {self.input_path} does not exist. Expected:\n{self.layout}")

    def plan(self) -> list[dict[str, Any]]:
        """Partitions of the input (JSON-able payloads), in a fixed order; honours options.limit."""
        raise NotImplementedError

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:
        """Samples and rejects of one partition, in a deterministic order."""
        raise NotImplementedError

    def record(self, key: str, split: str, image: dict[str, Any] | None, items: list[dict]) -> dict[str, Any]:
        """A grounding/v1 record dict from this source (its name and licence), validated later by the runner."""
        return {
            "key": key,
            "source": self.name,
            "split": split,
            "license": self.license,
            "image": image,
            "items": items,
        }

    def fingerprint_files(self) -> list[Path]:
        """Input files whose identity (path, size, mtime) a resumed job must find unchanged."""
        return []

    def wants_split(self, split: str) -> bool:
        self.splits_seen.add(split)
        return self.options.splits is None or split in self.options.splits
