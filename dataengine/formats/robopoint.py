"""RoboPoint: Python-style tuples of fractions of the image size, 3 decimals.

Points and traces: `[(0.461, 0.527), (0.498, 0.521)]`; boxes: `[(x1, y1, x2, y2)]`. The hint is RoboPoint's own
answer-format sentence.
"""

from __future__ import annotations

from dataengine.formats.normalized import NormalizedStyle

HINT_POINTS = (
    "Your answer should be formatted as a list of tuples, i.e. [(x1, y1), (x2, y2), ...], where each tuple "
    "contains the x and y coordinates of a point satisfying the conditions above. The coordinates should be "
    "between 0 and 1, indicating the normalized pixel locations of the points in the image."
)
HINT_BOXES = (
    "Your answer should be formatted as a list of tuples, i.e. [(x1, y1, x2, y2), ...], where each tuple holds "
    "the top-left and bottom-right corners of a box. The coordinates should be between 0 and 1, indicating the "
    "normalized pixel locations in the image."
)
HINT_TRACE = (
    "Your answer should be formatted as a list of tuples, i.e. [(x1, y1), (x2, y2), ...], listing the points of "
    "the path in order. The coordinates should be between 0 and 1, indicating the normalized pixel locations "
    "of the points in the image."
)


class RoboPointStyle(NormalizedStyle):
    """The normalized frame and `decimals` option of `NormalizedStyle`, written as tuples with RoboPoint's hint."""

    name = "robopoint"

    def format(self, task: str, encoded: list[list[float]], label: str | None) -> str:
        return "[" + ", ".join(self.bracket(c, open_="(", close=")") for c in encoded) + "]"

    def hint(self, task: str, labelled: bool = True) -> str:
        return {"box": HINT_BOXES, "point": HINT_POINTS, "trace": HINT_TRACE}[task]
