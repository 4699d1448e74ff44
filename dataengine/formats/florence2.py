"""Florence-2: the phrase followed by `<loc_*>` tokens, 1000 bins per axis.

Box: `label<loc_x1><loc_y1><loc_x2><loc_y2>` (more boxes append four tokens each), point and trace:
`label<loc_x><loc_y>...`. bin = floor(x / W * 1000) clamped to 0..999; decode (bin + 0.5) * W / 1000, so the
error is at most half a bin (W / 2000 px).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dataengine.formats.base import COORDS_PER_TARGET, AnswerStyle, chunk
from dataengine.geometry import from_bins, to_bins

BINS = 1000
_LOC = re.compile(r"<loc_(\d+)>")


class Florence2Style(AnswerStyle):
    name = "florence2"

    def frame_size(self, width: int, height: int) -> tuple[float, float]:
        return float(BINS), float(BINS)

    def encode(self, values_px: Sequence[float], width: int, height: int) -> list[float]:
        return [float(b) for b in to_bins(values_px, width, height, BINS)]

    def decode(self, values: Sequence[float], width: int, height: int) -> list[float]:
        return from_bins(values, width, height, BINS)

    def format(self, task: str, encoded: list[list[float]], label: str | None) -> str:
        locs = "".join(f"<loc_{int(v)}>" for c in encoded for v in c)
        return f"{label or ''}{locs}"

    def extract(self, task: str, text: str) -> list[list[float]]:
        return chunk([float(v) for v in _LOC.findall(text)], COORDS_PER_TARGET[task])
