"""Qwen2.5-VL: JSON objects with absolute integer pixels of the smart-resized image.

Box: `[{"bbox_2d": [x1, y1, x2, y2], "label": "cup"}]`, point: `[{"point_2d": [x, y], "label": "cup"}]`, one
object per target; trace: `[[x1, y1], [x2, y2], ...]` in order. The frame is `smart_resize(H, W)` with the
processor's min/max pixels (configurable; defaults are the released checkpoints' 3136 and 12845056), because the
model answers in pixels of the image it was fed after the processor.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from dataengine.errors import InputError
from dataengine.formats.base import COORDS_PER_TARGET, AnswerStyle, blank_json_strings, find_groups
from dataengine.geometry import QWEN_FACTOR, QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, smart_resize

_cached_smart_resize = lru_cache(maxsize=4096)(smart_resize)  # corpora repeat a few image sizes
JSON_KEYS = {"box": "bbox_2d", "point": "point_2d"}


def json_objects(task: str, encoded: list[list[float]], label: str | None, style: AnswerStyle) -> str:
    """Qwen's JSON notation: a list of `{"bbox_2d"|"point_2d": [...], "label": ...}`; traces a list of [x, y]."""
    if task == "trace":
        return "[" + ", ".join(style.bracket(p) for p in encoded) + "]"
    key = JSON_KEYS[task]
    label_part = "" if label is None else ', "label": ' + json.dumps(label, ensure_ascii=False)
    return "[" + ", ".join(f'{{"{key}": {style.bracket(c)}{label_part}}}' for c in encoded) + "]"


def json_extract(task: str, text: str) -> list[list[float]]:
    """Bracketed groups outside JSON strings (labels may hold digits and brackets)."""
    return find_groups(blank_json_strings(text), COORDS_PER_TARGET[task])


def json_hint(task: str, scale: str, labelled: bool = True) -> str:
    label = ', "label": "..."' if labelled else ""
    if task == "box":
        return f'Answer in JSON as [{{"bbox_2d": [x1, y1, x2, y2]{label}}}] with {scale}.'
    if task == "point":
        return f'Answer in JSON as [{{"point_2d": [x, y]{label}}}] with {scale}.'
    return f"Answer with the trajectory as a JSON list [[x1, y1], [x2, y2], ...] with {scale}."


class Qwen25VLStyle(AnswerStyle):
    name = "qwen2.5-vl"
    default_min_pixels = QWEN_MIN_PIXELS
    default_max_pixels = QWEN_MAX_PIXELS

    def __init__(self, min_pixels: int | None = None, max_pixels: int | None = None, factor: int = QWEN_FACTOR) -> None:
        self.min_pixels = int(self.default_min_pixels if min_pixels is None else min_pixels)
        self.max_pixels = int(self.default_max_pixels if max_pixels is None else max_pixels)
        self.factor = int(factor)
        if self.factor <= 0 or self.min_pixels <= 0 or self.max_pixels < self.min_pixels:
            raise InputError(
                f"{self.name}: need factor > 0 and 0 < min_pixels <= max_pixels, got factor={self.factor}, "
                f"min_pixels={self.min_pixels}, max_pixels={self.max_pixels}"
            )

    def options(self) -> dict[str, Any]:
        return {"min_pixels": self.min_pixels, "max_pixels": self.max_pixels, "factor": self.factor}

    def frame_size(self, width: int, height: int) -> tuple[float, float]:
        resized_h, resized_w = _cached_smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)
        return float(resized_w), float(resized_h)

    def format(self, task: str, encoded: list[list[float]], label: str | None) -> str:
        return json_objects(task, encoded, label, self)

    def extract(self, task: str, text: str) -> list[list[float]]:
        return json_extract(task, text)

    def hint(self, task: str, labelled: bool = True) -> str:
        return json_hint(task, "pixel coordinates", labelled)
