"""InternVL: `<ref>label</ref><box>[[x1, y1, x2, y2], ...]</box>` with integers on a 0..1000 grid.

Points and traces are `[[x, y], ...]` on the same grid (InternVL documents boxes only; this follows the
0..1000 point notation of Qwen2-VL-era models). v = round(x / W * 1000).
"""

from __future__ import annotations

import re

from dataengine.formats.base import COORDS_PER_TARGET, AnswerStyle, find_groups

_REF = re.compile(r"<ref>.*?</ref>", re.DOTALL)

GRID = 1000.0


class InternVLStyle(AnswerStyle):
    name = "internvl"

    def frame_size(self, width: int, height: int) -> tuple[float, float]:
        return GRID, GRID

    def format(self, task: str, encoded: list[list[float]], label: str | None) -> str:
        body = "[" + ", ".join(self.bracket(c) for c in encoded) + "]"
        if task != "box":
            return body
        ref = "" if label is None else f"<ref>{label}</ref>"
        return f"{ref}<box>{body}</box>"

    def extract(self, task: str, text: str) -> list[list[float]]:
        return find_groups(_REF.sub("", text), COORDS_PER_TARGET[task])  # labels may hold digits
