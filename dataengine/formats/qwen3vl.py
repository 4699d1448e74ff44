"""Qwen3-VL (and Qwen2-VL's scale): Qwen's JSON notation with integers on a 0..1000 grid.

Box `[{"bbox_2d": [x1, y1, x2, y2], "label": ...}]`, point `[{"point_2d": [x, y], "label": ...}]`, trace
`[[x, y], ...]`; v = round(x / W * 1000), independent of the processor's resize.
"""

from __future__ import annotations

from dataengine.formats.base import AnswerStyle
from dataengine.formats.qwen25vl import json_extract, json_hint, json_objects

GRID = 1000.0


class Qwen3VLStyle(AnswerStyle):
    name = "qwen3-vl"

    def frame_size(self, width: int, height: int) -> tuple[float, float]:
        return GRID, GRID

    def format(self, task: str, encoded: list[list[float]], label: str | None) -> str:
        return json_objects(task, encoded, label, self)

    def extract(self, task: str, text: str) -> list[list[float]]:
        return json_extract(task, text)

    def hint(self, task: str, labelled: bool = True) -> str:
        return json_hint(task, "coordinates from 0 to 1000", labelled)
