"""InternVLA-M1 box prompt: `[x1,y1,x2,y2]` integer pixels of the smart-resized co-training image.

The co-training configs cap VLM images at max_pixels 50176 (224 x 224) with min_pixels 784, so by default the
frame is `smart_resize(H, W, 28, 784, 50176)` (configurable, e.g. 3136 / 12845056 as in the LIBERO config).
Several boxes: `[[x1,y1,x2,y2],[...]]`. Points and traces (no upstream schema) use `[[x,y],...]` in the same frame.
Printed without spaces, as in the upstream prompt "[x1,y1,x2,y2]".
"""

from __future__ import annotations

from dataengine.formats.normalized import plain_lists
from dataengine.formats.qwen25vl import Qwen25VLStyle

COTRAIN_MIN_PIXELS = 784
COTRAIN_MAX_PIXELS = 50176


class InternVLAM1Style(Qwen25VLStyle):
    name = "internvla-m1"
    default_min_pixels = COTRAIN_MIN_PIXELS
    default_max_pixels = COTRAIN_MAX_PIXELS

    def format(self, task: str, encoded: list[list[float]], label: str | None) -> str:
        return plain_lists(self, task, encoded, sep=",")

    def hint(self, task: str, labelled: bool = True) -> str:
        if task == "box":
            return "Locate the bounding box in [x1,y1,x2,y2] format."
        if task == "point":
            return "Locate the points in [[x1,y1],[x2,y2],...] format."
        return "Give the trajectory in [[x1,y1],[x2,y2],...] format."
