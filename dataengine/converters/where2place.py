"""Where2Place (RoboPoint's free-space benchmark) -> `point` items sampled inside each answer mask, split test.

Question i of `point_questions.jsonl` is scored against `masks/{i:02d}.jpg` (the official scorer's rule). The mask
is a JPEG, so it is thresholded at half intensity; POINTS_PER_MASK pixel centres are drawn from it with a seed fixed
per question (`geometry.sample_points_in_mask`), and the mask file, seed and threshold go into the item's `meta`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from dataengine.converters.base import Converter, Output, Reject, Sample, TaskStats
from dataengine.converters.common import (
    ImageProblem,
    image_info,
    make_key,
    read_image_file,
    read_image_under,
    strip_format_instruction,
    strip_image_token,
)
from dataengine.converters.files import InputFiles
from dataengine.errors import InputError
from dataengine.geometry import sample_points_in_mask

QUESTIONS_FILE = "point_questions.jsonl"
POINTS_PER_MASK = 8
SAMPLING_SEED = 20240614  # + the question's line index
MASK_THRESHOLD = 128  # JPEG masks: a pixel is free space when its intensity is at least half
ROWS_PER_PARTITION = 50


class Where2PlaceConverter(Converter):
    name = "where2place"
    slug = "where2place"
    license = "apache-2.0 (wentao-yuan/where2place)"
    layout = (
        "--input: the Where2Place folder holding point_questions.jsonl ({question_id, image, text, category} per "
        "line), images/ and masks/<line index:02d>.jpg."
    )

    @property
    def questions_path(self) -> Path:
        return self.input_path / QUESTIONS_FILE

    def check(self) -> None:
        super().check()
        missing = [
            p for p in (self.questions_path, self.input_path / "images", self.input_path / "masks") if not p.exists()
        ]
        if missing:
            raise InputError(f"{self.name}: missing {', '.join(str(p) for p in missing)}.\n{self.layout}")

    def fingerprint_files(self) -> list[Path]:
        return [self.questions_path]

    def plan(self) -> list[dict[str, Any]]:
        lines = self.files.read_annotation(self.questions_path).splitlines()
        rows = []
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rows.append({"index": index, "row": orjson.loads(line)})
            except orjson.JSONDecodeError as exc:
                rows.append({"index": index, "row": None, "error": str(exc)})
        if not self.wants_split("test"):
            return [{"rows": [], "skipped_in_plan": {"split_not_selected": len(rows)}}]
        if self.options.limit is not None:
            rows = rows[: self.options.limit]
        return [{"rows": rows[i : i + ROWS_PER_PARTITION]} for i in range(0, len(rows), ROWS_PER_PARTITION)]

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:
        for entry in partition["rows"]:
            stats.read += 1
            yield from self._question_sample(entry["index"], entry["row"], entry.get("error"), stats)

    def _question_sample(self, index: int, row: Any, error: str | None, stats: TaskStats) -> Iterator[Output]:
        source_id = f"line={index}"
        if not isinstance(row, dict):
            yield Reject(source_id, "malformed_row", error or f"line {index} is not a JSON object")
            return
        source_id = f"question_id={row.get('question_id', index)}"
        text = row.get("text")
        query = strip_format_instruction(strip_image_token(text)[0])[0] if isinstance(text, str) else ""
        if not query:
            yield Reject(source_id, "empty_query", f"text is {text!r}")
            return
        mask_rel = f"masks/{index:02d}.jpg"
        try:
            image_rel, data = read_image_under(
                self.files, self.input_path / "images", row.get("image") if isinstance(row.get("image"), str) else ""
            )
            rel = "images/" + image_rel
            info = image_info(data, rel)
            mask = _load_mask(self.files, self.input_path / mask_rel)
        except ImageProblem as exc:
            yield Reject(source_id, exc.reason, str(exc))
            return
        if mask.shape != (info["height"], info["width"]):
            detail = f"{mask_rel} is {mask.shape[1]}x{mask.shape[0]}, image is {info['width']}x{info['height']}"
            yield Reject(source_id, "mask_size_mismatch", detail)
            return
        seed = SAMPLING_SEED + index
        points = sample_points_in_mask(mask, POINTS_PER_MASK, seed)
        if not points:
            yield Reject(source_id, "empty_mask", f"{mask_rel} has no pixel >= {MASK_THRESHOLD}")
            return
        stats.count("sampled_points", len(points))
        meta = {"mask": mask_rel, "seed": seed, "mask_threshold": MASK_THRESHOLD, "sampled_points": len(points)}
        if isinstance(row.get("category"), str):
            meta["category"] = row["category"]
        item = {
            "task": "point",
            "query": query,
            "query_kind": "instruction",
            "points": points,
            "source_id": source_id,
            "meta": meta,
        }
        record = self.record(make_key(self.slug, f"{index:04d}"), "test", info, [item])
        yield Sample(record, data, [source_id])


def _load_mask(files: InputFiles, path: Path) -> np.ndarray:
    """A binary (H, W) mask from a (JPEG) mask image: any channel at or above MASK_THRESHOLD."""
    from PIL import Image

    try:
        data = read_image_file(files, path)
    except ImageProblem as exc:
        raise ImageProblem("missing_mask_file" if exc.reason == "missing_image_file" else exc.reason, str(exc)) from exc
    try:
        with Image.open(io.BytesIO(data)) as im:
            pixels = np.asarray(im)
    except Exception as exc:  # PIL raises several types for garbage
        raise ImageProblem("unreadable_mask", f"{path}: {exc}") from exc
    return (pixels >= MASK_THRESHOLD).any(axis=2) if pixels.ndim == 3 else pixels >= MASK_THRESHOLD
