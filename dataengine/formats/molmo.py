"""Molmo / PixMo: XML-like point tags in percent of the image (0..100, 1 decimal).

One point: `<point x="61.5" y="40.6" alt="label">label</point>`; several: `<points x1=".." y1=".." x2=".."
y2=".." alt="label">label</points>`, sorted by (x, y) as Molmo's formatter does. A trace is a `<points>` tag in
path order. Molmo has no box notation: `supports("box")` is False and rendering a box raises.
"""

from __future__ import annotations

import html
import re

from dataengine.formats.base import NUMBER, AnswerStyle

_NUMBER = re.compile(NUMBER)
_TAG = re.compile(r"<points?\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r"""([A-Za-z_][\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_COORD_NAME = re.compile(r"([xy])(\d*)", re.IGNORECASE)


class MolmoStyle(AnswerStyle):
    name = "molmo"
    tasks = frozenset({"point", "trace"})
    decimals = 1

    def frame_size(self, width: int, height: int) -> tuple[float, float]:
        return 100.0, 100.0

    def order(self, task: str, coords_px: list[list[float]]) -> list[list[float]]:
        return sorted(coords_px) if task == "point" else coords_px  # Molmo lists points sorted by (x, y)

    def format(self, task: str, encoded: list[list[float]], label: str | None) -> str:
        text = label or ""
        alt = html.escape(label or "", quote=True)
        if task == "point" and len(encoded) == 1:
            x, y = encoded[0]
            return f'<point x="{self.num(x)}" y="{self.num(y)}" alt="{alt}">{text}</point>'
        attrs = " ".join(f'x{i}="{self.num(x)}" y{i}="{self.num(y)}"' for i, (x, y) in enumerate(encoded, start=1))
        return f'<points {attrs} alt="{alt}">{text}</points>'

    def extract(self, task: str, text: str) -> list[list[float]]:
        points: list[list[float]] = []
        for tag in _TAG.finditer(text):
            coords: dict[str, dict[str, float]] = {}
            for name, *values in _ATTR.findall(tag.group(1)):
                coord = _COORD_NAME.fullmatch(name)
                value = next((v for v in values if v), "")
                if coord and _NUMBER.fullmatch(value.strip()):
                    coords.setdefault(coord.group(2), {})[coord.group(1).lower()] = float(value)
            for index in sorted(coords, key=lambda k: int(k) if k else 0):
                xy = coords[index]
                if "x" in xy and "y" in xy:
                    points.append([xy["x"], xy["y"]])
        return points
