"""The answer-style interface: render canonical pixel targets as model text and parse model text back.

A style maps pixels of the stored image into its own frame (a resized image, a 0..1000 grid, percent, fractions,
bins), prints the numbers in its notation and reads them back. `parse(render(x))` recovers x within
`tolerance_px(width, height)` on each axis (property-tested for every style).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dataengine.errors import InputError
from dataengine.geometry import from_frame, to_frame
from dataengine.records.grounding import BoxItem, PointItem, TraceItem
from dataengine.records.query import query_kind_of

SPATIAL_TASKS = ("box", "point", "trace")
SHORT_LABEL_WORDS = 8  # a printed label is a short phrase: an item's query stands in for it only up to this length
COORDS_PER_TARGET = {"box": 4, "point": 2, "trace": 2}

NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_OPEN, _CLOSE = r"[\(\[]", r"[\)\]]"


class UnsupportedTaskError(InputError):
    """The style has no notation for this task (e.g. boxes in Molmo's point format)."""


@dataclass(frozen=True)
class Target:
    """Canonical targets of one item: boxes [x1, y1, x2, y2] or points [x, y] in pixels of the stored image."""

    task: str
    coords_px: list[list[float]]
    label: str | None = None


def as_target(
    item_or_coords: BoxItem | PointItem | TraceItem | Sequence[Sequence[float]],
    task: str | None = None,
    label: str | None = None,
) -> Target:
    """A grounding item (named by `item_label`) or raw coordinates with `task`."""
    if isinstance(item_or_coords, BoxItem):
        return Target("box", [list(b) for b in item_or_coords.boxes], item_label(item_or_coords))
    if isinstance(item_or_coords, PointItem):
        return Target("point", [list(p) for p in item_or_coords.points], item_label(item_or_coords))
    if isinstance(item_or_coords, TraceItem):
        return Target("trace", [list(p) for p in item_or_coords.trace], item_label(item_or_coords))
    if task not in SPATIAL_TASKS:
        raise InputError(f"raw coordinates need task= one of {list(SPATIAL_TASKS)}, got {task!r}")
    coords = [[float(v) for v in c] for c in item_or_coords]
    size = COORDS_PER_TARGET[task]
    bad = [c for c in coords if len(c) != size]
    if bad or not coords:
        raise InputError(f"a {task} target needs a non-empty list of {size}-number lists, got {item_or_coords!r}")
    return Target(task, coords, label)


def item_label(item: BoxItem | PointItem | TraceItem) -> str | None:
    """The label an answer prints: the item's `label`, else its query when that is a referring expression of at
    most `SHORT_LABEL_WORDS` words, else None (an instruction is never a label)."""
    if item.label:
        return item.label
    if query_kind_of(item) == "expression" and len(item.query.split()) <= SHORT_LABEL_WORDS:
        return item.query.strip().rstrip(".")
    return None


def format_number(value: float, decimals: int | None) -> str:
    """Integers for `decimals=None`, else fixed-point with exactly `decimals` places."""
    if decimals is None:
        return str(round(value))
    return f"{value:.{decimals}f}"


def find_groups(text: str, size: int) -> list[list[float]]:
    """Every bracketed or parenthesised group of exactly `size` numbers, in order of appearance.

    `[1, 2, 3, 4]`, `(0.1, 0.2)` and `"bbox_2d": [1,2,3,4]` all match; prose numbers, code fences and JSON
    around them are ignored.
    """
    inner = r"\s*,\s*".join([f"({NUMBER})"] * size)
    pattern = re.compile(_OPEN + r"\s*" + inner + r"\s*" + _CLOSE)
    return [[float(v) for v in m.groups()] for m in pattern.finditer(text)]


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def blank_json_strings(text: str) -> str:
    """Replace every double-quoted string with `""`, so digits or brackets inside labels never read as targets."""
    return _JSON_STRING.sub('""', text)


def chunk(values: Sequence[float], size: int) -> list[list[float]]:
    """Split a flat list into consecutive groups of `size` (a trailing partial group is dropped)."""
    return [list(values[i : i + size]) for i in range(0, len(values) - size + 1, size)]


class AnswerStyle(ABC):
    """One model answer format. Subclasses set `name`, `tasks`, the frame and the notation."""

    name: ClassVar[str]
    tasks: ClassVar[frozenset[str]] = frozenset(SPATIAL_TASKS)
    decimals: int | None = None  # None: integers in the frame

    def supports(self, task: str) -> bool:
        return task in self.tasks

    def options(self) -> dict[str, Any]:
        """The resolved options (saved beside exports so a run can be reproduced)."""
        return {}

    # --- frame -------------------------------------------------------------------------------------------
    @abstractmethod
    def frame_size(self, width: int, height: int) -> tuple[float, float]:
        """(frame_w, frame_h) of the style's coordinate frame for a width x height image."""

    def encode(self, values_px: Sequence[float], width: int, height: int) -> list[float]:
        """Pixels -> the numbers the style prints (rounded to its precision)."""
        frame_w, frame_h = self.frame_size(width, height)
        scaled = to_frame(values_px, width, height, frame_w, frame_h)
        if self.decimals is None:
            return [float(round(v)) for v in scaled]
        return [round(v, self.decimals) for v in scaled]

    def decode(self, values: Sequence[float], width: int, height: int) -> list[float]:
        """Printed numbers -> pixels of the width x height image (not clipped)."""
        frame_w, frame_h = self.frame_size(width, height)
        return from_frame(values, width, height, frame_w, frame_h)

    def tolerance_px(self, width: int, height: int) -> tuple[float, float]:
        """Largest |parse(render(x)) - x| per axis (x, y) in pixels of the image: half a unit of the printed
        precision, mapped back to pixels."""
        frame_w, frame_h = self.frame_size(width, height)
        half_unit = 0.5 * (1.0 if self.decimals is None else 10.0**-self.decimals)
        return half_unit * width / frame_w, half_unit * height / frame_h

    # --- public API --------------------------------------------------------------------------------------
    def render(
        self,
        item_or_coords: BoxItem | PointItem | TraceItem | Sequence[Sequence[float]],
        width: int,
        height: int,
        *,
        task: str | None = None,
        label: str | None = None,
    ) -> str:
        """The answer text for an item (or raw pixel coordinates with `task`) on a width x height image."""
        target = as_target(item_or_coords, task, label)
        self._check(target.task, width, height)
        ordered = self.order(target.task, target.coords_px)
        encoded = [self.encode(c, width, height) for c in ordered]
        return self.format(target.task, encoded, target.label)

    def parse(self, task: str, text: str, width: int, height: int) -> list[list[float]]:
        """Model text -> boxes [x1, y1, x2, y2] (task "box") or points [x, y] ("point", "trace") in pixels of the
        width x height image. Tolerant of code fences and prose; returns [] when the text holds no target."""
        self._check(task, width, height)
        return [self.decode(group, width, height) for group in self.extract(task, text)]

    def hint(self, task: str, labelled: bool = True) -> str:
        """A sentence that tells the model the expected notation ("" when the style needs none); `labelled`: whether
        the answer names its target (an instruction's answer carries no label)."""
        return ""

    # --- notation (per style) ----------------------------------------------------------------------------
    def order(self, task: str, coords_px: list[list[float]]) -> list[list[float]]:
        """The order targets are printed in (default: as given; traces always keep path order)."""
        return coords_px

    @abstractmethod
    def format(self, task: str, encoded: list[list[float]], label: str | None) -> str:
        """Print encoded targets (one list per box or point) in the style's notation."""

    def extract(self, task: str, text: str) -> list[list[float]]:
        """Find the printed numbers of each target in text (default: bracketed groups)."""
        return find_groups(text, COORDS_PER_TARGET[task])

    def _check(self, task: str, width: int, height: int) -> None:
        if not self.supports(task):
            raise UnsupportedTaskError(
                f"style {self.name!r} has no notation for {task!r} targets; it supports {sorted(self.tasks)}"
            )
        if width <= 0 or height <= 0:
            raise InputError(f"image size must be positive, got {width}x{height}")

    def num(self, value: float) -> str:
        return format_number(value, self.decimals)

    def bracket(self, values: Sequence[float], sep: str = ", ", open_: str = "[", close: str = "]") -> str:
        return open_ + sep.join(self.num(v) for v in values) + close
