"""Normalized: plain JSON lists of fractions of the image size (0..1), 3 decimals by default.

One box: `[x1, y1, x2, y2]`; several: `[[x1, y1, x2, y2], ...]`; points and traces: `[[x, y], ...]`.
"""

from __future__ import annotations

from typing import Any

from dataengine.errors import InputError
from dataengine.formats.base import AnswerStyle


def plain_lists(style: AnswerStyle, task: str, encoded: list[list[float]], sep: str = ", ") -> str:
    """A single box as a bare list, anything else as a list of lists."""
    if task == "box" and len(encoded) == 1:
        return style.bracket(encoded[0], sep)
    return "[" + sep.join(style.bracket(c, sep) for c in encoded) + "]"


class NormalizedStyle(AnswerStyle):
    name = "normalized"

    def __init__(self, decimals: int = 3) -> None:
        if not 1 <= int(decimals) <= 8:
            raise InputError(f"{self.name}: decimals must be 1..8, got {decimals}")
        self.decimals = int(decimals)

    def options(self) -> dict[str, Any]:
        return {"decimals": self.decimals}

    def frame_size(self, width: int, height: int) -> tuple[float, float]:
        return 1.0, 1.0

    def format(self, task: str, encoded: list[list[float]], label: str | None) -> str:
        return plain_lists(self, task, encoded)

    def hint(self, task: str, labelled: bool = True) -> str:
        shape = {"box": "[x1, y1, x2, y2]", "point": "[[x, y], ...]", "trace": "[[x1, y1], [x2, y2], ...] in order"}
        return f"Answer with {shape[task]}, coordinates normalized to 0-1 of the image width and height."
