"""Grounding samples for the spatial loss: one (image, question, answer) chat turn per visit of a record.

Each visit picks one item of the record (deterministically from key, epoch and seed), renders it with the answer
style and the question templates of `dataengine.formats`, and prepares the image for the backbone. Records can be
restricted to some `split` values, and a hash of the key holds a fraction of them out for evaluation.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from dataengine.errors import RecordError
from dataengine.formats import AnswerStyle, render_record_item, stable_index
from dataengine.records.grounding import BoxItem, GroundingRecord, PointItem, TraceItem, VqaItem
from dataengine.shards.grounding import decode_sample
from dataengine.train.shard_index import ShardEntry
from dataengine.train.streams import SkipSample

HOLDOUT_BINS = 1_000_000


def is_held_out(key: str, fraction: float) -> bool:
    """Whether a record key falls in the evaluation holdout (a stable hash of the key)."""
    return fraction > 0 and stable_index(HOLDOUT_BINS, "holdout", key) < fraction * HOLDOUT_BINS


def apply_holdout(entries: list[ShardEntry], fraction: float, keep: str) -> list[ShardEntry]:
    """Give held-out keys 0 units (keep="train") or only held-out keys 1 unit (keep="eval"); no reads needed."""
    for entry in entries:
        held = [is_held_out(k, fraction) for k in entry.keys]
        entry.units = [int(h) if keep == "eval" else int(not h) for h in held]
    return [e for e in entries if sum(e.units)]


def decode_image(data: bytes, key: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise RecordError(f"{key}: image does not decode ({exc})") from exc
    return image


@dataclass
class _Prepared:
    record: GroundingRecord
    image_bytes: bytes
    items: list[int]  # indexes of usable items


class GroundingUnits:
    """`UnitTransform` for grounding shards: prepare = parse the record, item = render one QA turn."""

    def __init__(
        self,
        style: AnswerStyle,
        prepare_image: Callable[[Image.Image], np.ndarray],
        *,
        seed: int = 0,
        splits: Sequence[str] | None = None,
        templates: Mapping[str, Sequence[str]] | None = None,
        include_vqa: bool = False,
        with_targets: bool = False,
    ) -> None:
        self.style, self.prepare_image, self.seed = style, prepare_image, seed
        self.splits = set(splits) if splits else None
        self.templates, self.include_vqa, self.with_targets = templates, include_vqa, with_targets

    def _usable(self, item) -> bool:
        if isinstance(item, BoxItem | PointItem | TraceItem):
            return self.style.supports(item.task)
        return self.include_vqa and isinstance(item, VqaItem)

    def prepare(self, raw: dict) -> _Prepared:
        sample = decode_sample(raw)
        record = sample.record
        if self.splits is not None and record.split not in self.splits:
            raise SkipSample(record.key)
        if record.image is None or sample.image_bytes is None:
            raise SkipSample(record.key)
        usable = [i for i, it in enumerate(record.items) if self._usable(it)]
        if not usable:
            raise SkipSample(record.key)
        return _Prepared(record, sample.image_bytes, usable)

    def item(self, prepared: _Prepared, unit: int, epoch: int) -> dict:
        record = prepared.record
        if self.with_targets:  # evaluation: unit u is the record's u-th usable item (see `count_item_units`)
            index = prepared.items[unit]
        else:  # training: one item per visit, chosen from (key, epoch, seed)
            index = prepared.items[stable_index(len(prepared.items), "visit", record.key, epoch, self.seed)]
        item = record.items[index]
        width, height = record.image.width, record.image.height
        if isinstance(item, VqaItem):
            turns = item.conversation
            pair = next(i for i in range(len(turns) - 1) if turns[i].from_ == "human" and turns[i + 1].from_ == "gpt")
            question, answer = turns[pair].value.replace("<image>", "").strip(), turns[pair + 1].value
        else:
            question, answer = render_record_item(record, index, self.style, seed=self.seed, templates=self.templates)
        out = {
            "image": self.prepare_image(decode_image(prepared.image_bytes, record.key)),
            "prompt": question,
            "answer": answer,
            "__key__": record.key,
        }
        if self.with_targets:
            coords = {"box": "boxes", "point": "points", "trace": "trace"}.get(item.task)
            out["target"] = {
                "task": item.task,
                "coords": getattr(item, coords) if coords else None,
                "width": width,
                "height": height,
                "meta": item.meta,
            }
        return out


def count_item_units(entries: list[ShardEntry], units: GroundingUnits) -> list[ShardEntry]:
    """Evaluation streams score every usable item: one unit per item (reads each record once; eval sets are small)."""
    from dataengine.train.shard_index import ShardReader
    from dataengine.train.streams import SkipSample

    reader = ShardReader(entries)
    try:
        for s, entry in enumerate(entries):
            counts = []
            for j in range(len(entry)):
                if entry.units and entry.units[j] == 0:
                    counts.append(0)
                    continue
                try:
                    counts.append(len(units.prepare(reader.read(s, j)).items))
                except (SkipSample, RecordError, ValueError):
                    counts.append(0)
            entry.units = counts
    finally:
        reader.close()
    return [e for e in entries if sum(e.units)]
