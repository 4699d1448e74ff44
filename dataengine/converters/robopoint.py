"""RoboPoint (`robopoint_1432k.json`, LLaVA-format rows) -> pixel `point` / `box` items, other turns as `vqa`.

Each human -> gpt pair whose answer is a list of normalized tuples (`[(0.461, 0.527), ...]`, (x, y) in 0..1)
becomes a `point` item in pixels of the image (x * W, y * H); 4-tuples become a `box` item. The question keeps its
words but loses `<image>` and the trailing answer-format instruction (exports render their own). Remaining pairs
stay together as one `vqa` item. The 1.7 GB JSON is never loaded whole: it is cut into byte ranges by a streaming
scan and each task decodes its range.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

from dataengine.converters.base import Converter, ImagesOption, Output, Reject, Sample, TaskStats, TextOnlyOption
from dataengine.converters.common import (
    ImageProblem,
    coco_image_id,
    image_info,
    make_key,
    read_image_under,
    slug,
    strip_format_instruction,
    strip_image_token,
)
from dataengine.converters.jsonarray import array_spans, iter_span
from dataengine.converters.llava_onevision import ROLE_NAMES
from dataengine.errors import InputError
from dataengine.geometry import clip_box_xyxy, clip_point, from_norm

ROWS_PER_PARTITION = 5_000
NORM_TOLERANCE = 0.005  # normalized values this far outside 0..1 are clipped (rounding in the source)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TUPLE = rf"\(\s*{_NUMBER}\s*(?:,\s*{_NUMBER}\s*)+\)"
TUPLE_LIST_RE = re.compile(rf"^\s*\[\s*{_TUPLE}(?:\s*,\s*{_TUPLE})*\s*,?\s*\]\s*\.?\s*$")
_TUPLE_RE = re.compile(r"\(([^()]*)\)")


def parse_tuple_list(text: str) -> list[list[float]] | None:
    """`[(0.461, 0.527), (0.498, 0.521)]` -> [[0.461, 0.527], [0.498, 0.521]]; None when the answer is not a
    list of tuples of one arity 2 or 4."""
    if not TUPLE_LIST_RE.match(text):
        return None
    tuples = [[float(v) for v in inner.split(",")] for inner in _TUPLE_RE.findall(text)]
    arity = {len(t) for t in tuples}
    return tuples if arity in ({2}, {4}) else None


class RoboPointOptions(ImagesOption, TextOnlyOption):
    """robopoint options: the image folder and whether rows without an image are kept."""


class RoboPointConverter(Converter):
    name = "robopoint"
    slug = "robopoint"
    license = "apache-2.0 (wentao-yuan/robopoint-data); COCO/GQA/VG/OCR-VQA/TextVQA images under their terms"
    layout = (
        "--input: robopoint_1432k.json (a JSON list of {id, image, conversations}) or the folder holding it. "
        "--images: the folder where the images/*.tar.gz archives were extracted (default <input folder>/images); "
        "`image` paths are relative to it."
    )
    Options = RoboPointOptions

    @property
    def json_path(self) -> Path:
        if self.input_path.is_file():
            return self.input_path
        named = self.input_path / "robopoint_1432k.json"
        if named.is_file():
            return named
        candidates = sorted(self.input_path.glob("*.json"))
        return candidates[0] if len(candidates) == 1 else named

    def images_root(self) -> Path:
        if self.source_options.images_dir:
            return Path(self.source_options.images_dir)
        return self.json_path.parent / "images"

    def check(self) -> None:
        super().check()
        if not self.json_path.is_file():
            raise InputError(
                f"{self.name}: no robopoint_1432k.json (or single .json) at {self.input_path}.\n{self.layout}"
            )
        if not self.images_root().is_dir():
            raise InputError(f"{self.name}: image folder {self.images_root()} does not exist; pass --images")

    def fingerprint_files(self) -> list[Path]:
        return [self.json_path]

    def plan(self) -> list[dict[str, Any]]:
        spans = array_spans(self.files.annotation(self.json_path), ROWS_PER_PARTITION, limit=self.options.limit)
        return [{"span": span} for span in spans]

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:
        span = partition["span"]
        images_root = self.images_root()
        for offset, row in enumerate(iter_span(self.files.annotation(self.json_path), span)):
            stats.read += 1
            yield from self._row_sample(span["first"] + offset, row, images_root, stats)

    def _row_sample(self, index: int, row: Any, images_root: Path, stats: TaskStats) -> Iterator[Output]:
        if not isinstance(row, dict):
            yield Reject(f"#{index}", "malformed_row", f"row is {type(row).__name__}, not a dict")
            return
        row_id = row.get("id") if isinstance(row.get("id"), str) else str(row.get("id", ""))
        source_id = f"#{index}:{row_id}"
        turns = row.get("conversations")
        pairs = _pairs(turns)
        if pairs is None:
            yield Reject(source_id, "bad_conversation", "conversations is not a list of human/gpt turns with text")
            return
        if not pairs:
            yield Reject(source_id, "no_qa_pair", "no human turn followed by a gpt turn")
            return
        image = row.get("image")
        record = self.record(make_key(self.slug, f"{index:07d}", slug(row_id, 40)), "train", None, [])
        if not image:
            if not self.source_options.keep_text_only:
                stats.skip("text_only")
                return
            record["items"] = [_vqa_item([t for pair in pairs for t in pair], source_id)]
            stats.count("text_only_kept")
            yield Sample(record, None, [source_id])
            return
        try:
            rel, data = read_image_under(self.files, images_root, image if isinstance(image, str) else "")
            info = image_info(data, rel, coco_image_id=coco_image_id(rel))
        except ImageProblem as exc:
            yield Reject(source_id, exc.reason, str(exc))
            return
        record["image"] = info
        items, vqa_turns = [], []
        for turn_index, (human, gpt) in enumerate(pairs):
            item_id = f"{source_id}/turn={turn_index}"
            tuples = parse_tuple_list(gpt["value"])
            if tuples is None:
                vqa_turns += [human, gpt]
                continue
            item, problem = _coordinate_item(human["value"], tuples, info, item_id, stats)
            if problem:
                yield Reject(item_id, problem[0], problem[1], scope="item")
            else:
                items.append(item)
        if vqa_turns:
            items.append(_vqa_item(vqa_turns, source_id))
        if not items:
            yield Reject(source_id, "no_usable_item", "every pair was rejected")
            return
        record["items"] = items
        yield Sample(record, data, [source_id])


def _pairs(turns: Any) -> list[tuple[dict, dict]] | None:
    """Human -> gpt pairs of a conversation (the `<image>` token removed); None when malformed."""
    if not isinstance(turns, list):
        return None
    cleaned = []
    for turn in turns:
        role = ROLE_NAMES.get(turn.get("from")) if isinstance(turn, dict) else None
        if role is None or not isinstance(turn.get("value"), str):
            return None
        cleaned.append({"from": role, "value": strip_image_token(turn["value"])[0]})
    return [(a, b) for a, b in pairwise(cleaned) if a["from"] == "human" and b["from"] == "gpt"]


def _vqa_item(turns: list[dict], source_id: str) -> dict:
    return {"task": "vqa", "conversation": turns, "source_id": source_id}


def _coordinate_item(question: str, tuples, info: dict, item_id: str, stats: TaskStats):
    """A point (2-tuples) or box (4-tuples) item in pixels, or (None, (reason, detail))."""
    width, height = info["width"], info["height"]
    flat = [v for t in tuples for v in t]
    if min(flat) < -NORM_TOLERANCE or max(flat) > 1 + NORM_TOLERANCE:
        return None, ("coordinate_out_of_range", f"normalized values must lie in 0..1, got {min(flat)}..{max(flat)}")
    query, removed = strip_format_instruction(question)
    if not query:
        return None, ("empty_query", "nothing is left of the question once the format instruction is removed")
    meta = {"answer_format": "robopoint_normalized"}
    if removed:
        meta["format_instruction_removed"] = True
    if len(tuples[0]) == 2:
        points = [clip_point(p, width, height) for p in from_norm(tuples, width, height)]
        return {
            "task": "point",
            "query": query,
            "query_kind": "instruction",
            "points": points,
            "source_id": item_id,
            "meta": meta,
        }, None
    boxes = []
    for x1, y1, x2, y2 in tuples:
        box, clipped = clip_box_xyxy([x1 * width, y1 * height, x2 * width, y2 * height], width, height)
        if box is None:
            return None, ("empty_box", f"box {[x1, y1, x2, y2]} has no area")
        if clipped:
            stats.count("clipped_boxes")
        boxes.append(box)
    return {
        "task": "box",
        "query": query,
        "query_kind": "instruction",
        "boxes": boxes,
        "source_id": item_id,
        "meta": meta,
    }, None
