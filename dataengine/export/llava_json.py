"""`dataengine export llava-json`: grounding/v1 shards -> the LLaVA / Qwen-VL fine-tuning layout.

Output (what InternVLA-M1's `LazySupervisedDataset` reads, with `data_path` = OUT):

    OUT/annotations.jsonl   one line per item:
        {"id": "<key>-<item index>", "images": ["images/<sha1>.<ext>"],
         "conversations": [{"from": "human", "value": "<image>\\n<question>"}, {"from": "gpt", "value": "<answer>"}]}
    OUT/images/<sha1>.<ext> the untouched image bytes, one file per distinct image (named by the SHA-1 of its bytes)
    OUT/export.json         the resolved options and the counts (written, skipped by reason)

One conversation per item: box/point/trace items are rendered with an answer style and a question template
chosen from (key, item index, seed); vqa items pass through with exactly one `<image>` tag, at the start of the
first human turn (none for text-only records, which also get no "images"). Items the style cannot express and
bad records are skipped and counted under snake_case reasons. Same shards and options give identical files.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dataengine.errors import InputError
from dataengine.formats import AnswerStyle, get_style, load_templates, render_record_item
from dataengine.images import EXT_TO_FORMAT, IMAGE_EXTS, probe_image, sha1_hex
from dataengine.records.grounding import GroundingRecord, VqaItem
from dataengine.runtime.atomic import atomic_output, atomic_write_bytes, atomic_write_text
from dataengine.shards.reader import iter_shard_set, list_shards

log = logging.getLogger(__name__)

ANNOTATIONS_NAME = "annotations.jsonl"
IMAGES_DIR = "images"
EXPORT_INFO_NAME = "export.json"
IMAGE_TAG = "<image>"
_IMAGE_TAG_RE = re.compile(re.escape(IMAGE_TAG) + r"\n?")


@dataclass
class LlavaExportReport:
    """What an export wrote and what it skipped (reason -> count)."""

    shards: int = 0
    records: int = 0
    conversations: int = 0
    images: int = 0  # distinct images copied
    images_deduplicated: int = 0  # records whose image was already copied by this export
    conversations_by_task: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shards": self.shards,
            "records": self.records,
            "conversations": self.conversations,
            "images": self.images,
            "images_deduplicated": self.images_deduplicated,
            "conversations_by_task": dict(sorted(self.conversations_by_task.items())),
            "skipped": dict(sorted(self.skipped.items())),
        }


def vqa_turns(item: VqaItem, with_image: bool) -> list[dict[str, str]] | None:
    """The item's turns with every `<image>` tag removed, then one `<image>\\n` in front of the first human turn
    (when the record has an image). None when the conversation does not start with a human turn."""
    turns = [{"from": t.from_, "value": _strip_image_tags(t.value)} for t in item.conversation]
    if turns[0]["from"] != "human":
        return None
    if with_image:
        turns[0]["value"] = f"{IMAGE_TAG}\n{turns[0]['value']}"
    return turns


def _strip_image_tags(text: str) -> str:
    return _IMAGE_TAG_RE.sub("", text).strip() if IMAGE_TAG in text else text


class _Exporter:
    def __init__(
        self, out_dir: Path, style: AnswerStyle, seed: int, templates: Mapping[str, Sequence[str]] | None, hint: bool
    ) -> None:
        self.out_dir = out_dir
        self.style = style
        self.seed = seed
        self.templates = templates
        self.hint = hint
        self.report = LlavaExportReport()
        self.seen_keys: set[str] = set()
        self.seen_images: set[str] = set()

    def skip(self, reason: str, where: str, count: int = 1) -> None:
        self.report.skipped[reason] += count
        log.debug("skipped %s: %s", where, reason)

    def rows(self, sample: dict) -> list[dict]:
        """Conversation rows of one raw WebDataset sample (may be empty; skips are counted)."""
        where = f"{sample.get('__shard__')}:{sample['__key__']}"
        try:
            record = GroundingRecord.from_json_bytes(sample["json"])
        except KeyError:
            self.skip("missing_json", where)
            return []
        except ValidationError:
            self.skip("invalid_record", where)
            return []
        if record.key in self.seen_keys:
            self.skip("duplicate_key", where, len(record.items))
            return []
        self.seen_keys.add(record.key)
        self.report.records += 1
        image_rel = None
        if record.image is not None:
            image_rel = self.image_path(record, sample, where)
            if image_rel is None:
                return []
        rows = []
        for index, item in enumerate(record.items):
            row = self.item_row(record, index, item, image_rel, where)
            if row is not None:
                rows.append(row)
                self.report.conversations_by_task[item.task] += 1
        return rows

    def image_path(self, record: GroundingRecord, sample: dict, where: str) -> str | None:
        """Copy the image bytes untouched to images/<sha1>.<ext> (once per distinct image); its relative path."""
        exts = sorted(ext for ext in sample if ext in IMAGE_EXTS)
        if not exts:
            self.skip("missing_image", where, len(record.items))
            return None
        ext = exts[0]
        data = sample[ext]
        sha1 = sha1_hex(data)
        if sha1 != record.image.sha1:
            self.skip("image_sha1_mismatch", where, len(record.items))
            return None
        try:
            header = probe_image(data)
        except InputError:
            self.skip("unreadable_image", where, len(record.items))
            return None
        if (header.width, header.height) != (record.image.width, record.image.height):
            self.skip("image_size_mismatch", where, len(record.items))
            return None
        ext = "jpg" if EXT_TO_FORMAT[ext] == "jpeg" else ext
        rel = f"{IMAGES_DIR}/{sha1}.{ext}"
        if sha1 in self.seen_images:
            self.report.images_deduplicated += 1
            return rel
        self.seen_images.add(sha1)
        self.report.images += 1
        path = self.out_dir / rel
        if not (path.exists() and sha1_hex(path.read_bytes()) == sha1):  # content-addressed: reuse a good copy
            atomic_write_bytes(path, data, fsync=False)  # checked by content on reuse
        return rel

    def item_row(self, record: GroundingRecord, index: int, item, image_rel: str | None, where: str) -> dict | None:
        if isinstance(item, VqaItem):
            turns = vqa_turns(item, with_image=image_rel is not None)
            if turns is None:
                self.skip("vqa_starts_with_gpt", where)
                return None
        else:
            if not self.style.supports(item.task):
                self.skip(f"unsupported_{item.task}", where)
                return None
            try:
                question, answer = render_record_item(
                    record, index, self.style, seed=self.seed, templates=self.templates, hint=self.hint
                )
            except InputError:  # e.g. an aspect ratio the style's resize refuses
                self.skip("image_size_unsupported", where)
                return None
            turns = [{"from": "human", "value": f"{IMAGE_TAG}\n{question}"}, {"from": "gpt", "value": answer}]
        row: dict[str, Any] = {"id": f"{record.key}-{index}"}
        if image_rel is not None:
            row["images"] = [image_rel]
        row["conversations"] = turns
        return row


def export_llava_json(
    shards_path: str | Path,
    out_dir: str | Path,
    *,
    style: str = "qwen2.5-vl",
    style_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    templates: str | Path | None = None,
    hint: bool = True,
    overwrite: bool = False,
) -> LlavaExportReport:
    """Export every grounding/v1 sample under `shards_path` to `out_dir` (see the module docstring).

    `style` and `style_options` pick the answer style (`dataengine.formats.get_style`); `templates` is an optional
    JSON/YAML file of question templates; `hint` appends the style's notation sentence to each question.
    Refuses an `out_dir` that already holds an export unless `overwrite` is set.
    """
    out_dir = Path(out_dir)
    answer_style = get_style(style, **dict(style_options or {}))
    template_table = load_templates(templates) if templates is not None else None
    shards = list_shards(shards_path)
    if not shards:
        raise InputError(f"no .tar shards under {shards_path}")
    annotations = out_dir / ANNOTATIONS_NAME
    if annotations.exists() and not overwrite:
        raise InputError(f"{annotations} already exists; pass --overwrite to replace the export")
    (out_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    (out_dir / EXPORT_INFO_NAME).unlink(missing_ok=True)  # written last: its presence says the export is whole

    exporter = _Exporter(out_dir, answer_style, seed, template_table, hint)
    exporter.report.shards = len(shards)
    with atomic_output(annotations) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for sample in iter_shard_set(shards_path):
            for row in exporter.rows(sample):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                exporter.report.conversations += 1

    report = exporter.report
    info = {
        "format": "llava-json",
        "annotations": ANNOTATIONS_NAME,
        "images_dir": IMAGES_DIR,
        "style": answer_style.name,
        "style_options": answer_style.options(),
        "seed": seed,
        "templates": "builtin" if templates is None else Path(templates).name,
        "hint": hint,
        **report.to_dict(),
    }
    atomic_write_text(out_dir / EXPORT_INFO_NAME, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return report
