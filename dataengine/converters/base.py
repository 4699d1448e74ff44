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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dataengine.converters.files import DEFAULT_MAX_ANNOTATION_MB, DEFAULT_MAX_IMAGE_MB, InputFiles, InputLimits
from dataengine.errors import InputError


class SourceOptions(BaseModel):
    """A converter's own options (`Converter.Options`; the base takes none). Given as `--option NAME=VALUE` on the
    command line (plus the shortcuts `--images`, `--split-by`, `--keep-text-only`) and under `options:` of a recipe
    source; unknown names and bad values are refused before any work. `ROOTS` names the fields that are folders
    the converter reads from besides `--input` (files are only read inside those, see `converters.files`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ROOTS: ClassVar[tuple[str, ...]] = ()


class ImagesOption(SourceOptions):
    images_dir: str | None = Field(default=None, description="the image folder (--images)")
    ROOTS: ClassVar[tuple[str, ...]] = ("images_dir",)

    @field_validator("images_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return str(Path(value).expanduser().resolve()) if value is not None else None


class SplitByOption(SourceOptions):
    split_by: str | None = Field(default=None, description="split scheme (--split-by; the converter's split_schemes)")


class TextOnlyOption(SourceOptions):
    keep_text_only: bool = Field(default=False, description="keep rows without an image (--keep-text-only)")


# Report keys of convert_report/v1 and job fingerprints: always present, with these defaults, for every source
V1_OPTION_DEFAULTS: dict[str, Any] = {"images_dir": None, "split_by": None, "keep_text_only": False}


@dataclass(frozen=True)
class ConvertOptions:
    """What the user asked for; JSON-able so tasks can rebuild their converter on any Ray worker. `source` holds
    the converter's own options as given (validated by its `Options` model; defaults left out)."""

    input_path: str
    splits: tuple[str, ...] | None = None
    limit: int | None = None
    follow_symlinks: bool = False
    max_image_mb: float = DEFAULT_MAX_IMAGE_MB
    max_annotation_mb: float = DEFAULT_MAX_ANNOTATION_MB
    verify_images: bool = False  # decode each JPEG once to catch truncation hidden by an appended end marker
    source: dict[str, Any] = field(default_factory=dict)

    def limits(self) -> InputLimits:
        return InputLimits(self.follow_symlinks, self.max_image_mb, self.max_annotation_mb)

    def to_dict(self) -> dict[str, Any]:
        """The options as the report and the job fingerprint record them: one flat mapping."""
        data = self.to_payload()
        source = data.pop("source")
        return {**data, **V1_OPTION_DEFAULTS, **source}

    def to_payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["splits"] = list(self.splits) if self.splits is not None else None
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> ConvertOptions:
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
    Options: ClassVar[type[SourceOptions]] = SourceOptions  # this source's own options
    split_schemes: ClassVar[tuple[str, ...]] = ()  # accepted split_by values (first is the default)

    def __init__(self, options: ConvertOptions) -> None:
        self.options = options
        self.input_path = Path(options.input_path)
        self.source_options = self.parse_options(options.source)
        roots = [getattr(self.source_options, name) for name in self.Options.ROOTS]
        self.files = InputFiles([options.input_path, *roots], options.limits())
        self.splits_seen: set[str] = set()  # every split name `wants_split` was asked about (for error messages)

    @classmethod
    def parse_options(cls, values: dict[str, Any]) -> SourceOptions:
        """This source's options validated (InputError naming the bad or unknown ones and the valid names)."""
        try:
            return cls.Options.model_validate(values)
        except ValidationError as exc:
            valid = ", ".join(cls.Options.model_fields) or "none"
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
            raise InputError(f"{cls.name}: bad source option ({problems}); its options: {valid}") from None

    @property
    def split_by(self) -> str | None:
        if not self.split_schemes:
            return None
        return getattr(self.source_options, "split_by", None) or self.split_schemes[0]

    def check(self) -> None:
        """Raise InputError when the input itself is unusable (run once on the driver, before any work)."""
        split_by = getattr(self.source_options, "split_by", None)
        if split_by is not None and split_by not in self.split_schemes:
            allowed = ", ".join(self.split_schemes) or "none (this source has a single split scheme)"
            raise InputError(f"{self.name}: --split-by {split_by!r} is not valid; use {allowed}")
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
