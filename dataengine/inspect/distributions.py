"""Distributions of grounding targets, accumulated record by record into fixed histograms.

All geometry is normalized to the stored image: `*_norm` values are fractions of width / height, box areas are
fractions of the image area, trace lengths are fractions of the image diagonal.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field

from dataengine.inspect.histograms import Heatmap, IntCounts, ValueHistogram
from dataengine.records.grounding import BoxItem, GroundingRecord, PointItem, TraceItem

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_LABELS = 50_000  # distinct labels kept; beyond this the rarest half is dropped (top labels stay right)


def _area_hist() -> ValueHistogram:
    return ValueHistogram(1e-5, 1.0, 250, log=True)  # 50 bins per decade


def _aspect_hist() -> ValueHistogram:
    return ValueHistogram(1 / 32, 32.0, 300, log=True)  # width / height


def _unit_hist() -> ValueHistogram:
    return ValueHistogram(0.0, 1.0, 100)


def _trace_length_hist() -> ValueHistogram:
    return ValueHistogram(0.0, 3.0, 300)


def _megapixel_hist() -> ValueHistogram:
    return ValueHistogram(1e-3, 1e3, 300, log=True)


@dataclass
class Distributions:
    """Box sizes, target locations, trace lengths, query lengths, labels and image sizes."""

    box_area_rel: ValueHistogram = field(default_factory=_area_hist)
    box_aspect_w_over_h: ValueHistogram = field(default_factory=_aspect_hist)
    box_centres_norm: Heatmap = field(default_factory=Heatmap)
    points_norm: Heatmap = field(default_factory=Heatmap)
    trace_points_norm: Heatmap = field(default_factory=Heatmap)
    point_x_norm: ValueHistogram = field(default_factory=_unit_hist)
    point_y_norm: ValueHistogram = field(default_factory=_unit_hist)
    box_centre_x_norm: ValueHistogram = field(default_factory=_unit_hist)
    box_centre_y_norm: ValueHistogram = field(default_factory=_unit_hist)
    points_per_trace: IntCounts = field(default_factory=IntCounts)
    trace_length_rel_diag: ValueHistogram = field(default_factory=_trace_length_hist)
    boxes_per_item: IntCounts = field(default_factory=IntCounts)
    points_per_item: IntCounts = field(default_factory=IntCounts)
    query_words: IntCounts = field(default_factory=IntCounts)
    image_megapixels: ValueHistogram = field(default_factory=_megapixel_hist)
    labels: Counter = field(default_factory=Counter)
    labels_truncated: bool = False
    unlabelled_items: int = 0

    def add_record(self, record: GroundingRecord) -> None:
        image = record.image
        if image is None:
            return
        w, h = float(image.width), float(image.height)
        self.image_megapixels.add(w * h / 1e6)
        for item in record.items:
            if isinstance(item, BoxItem):
                self._add_boxes(item.boxes, w, h)
            elif isinstance(item, PointItem):
                self.points_per_item.add(len(item.points))
                for x, y in item.points:
                    self.points_norm.add(x / w, y / h)
                    self.point_x_norm.add(x / w)
                    self.point_y_norm.add(y / h)
            elif isinstance(item, TraceItem):
                self._add_trace(item.trace, w, h)
            else:
                continue
            self.query_words.add(len(item.query.split()))
            self._add_label(item.label)

    def _add_boxes(self, boxes: list[list[float]], w: float, h: float) -> None:
        self.boxes_per_item.add(len(boxes))
        for x1, y1, x2, y2 in boxes:
            bw, bh = x2 - x1, y2 - y1
            self.box_area_rel.add(bw * bh / (w * h))
            self.box_aspect_w_over_h.add(bw / bh)
            cx, cy = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h
            self.box_centres_norm.add(cx, cy)
            self.box_centre_x_norm.add(cx)
            self.box_centre_y_norm.add(cy)

    def _add_trace(self, trace: list[list[float]], w: float, h: float) -> None:
        self.points_per_trace.add(len(trace))
        length_px = sum(math.dist(a, b) for a, b in itertools.pairwise(trace))
        self.trace_length_rel_diag.add(length_px / math.hypot(w, h))
        for x, y in trace:
            self.trace_points_norm.add(x / w, y / h)

    def _add_label(self, label: str | None) -> None:
        if not label:
            self.unlabelled_items += 1
            return
        self.labels[label] += 1
        if len(self.labels) > MAX_LABELS:
            self._prune_labels()

    def _prune_labels(self) -> None:
        self.labels = Counter(dict(self.labels.most_common(MAX_LABELS // 2)))
        self.labels_truncated = True

    def _parts(self) -> dict:
        return {name: value for name, value in vars(self).items() if hasattr(value, "merge")}

    def flush(self) -> None:
        for part in self._parts().values():
            if hasattr(part, "flush"):
                part.flush()

    def merge(self, other: Distributions) -> None:
        for name, part in self._parts().items():
            part.merge(getattr(other, name))
        self.labels.update(other.labels)
        self.labels_truncated |= other.labels_truncated
        self.unlabelled_items += other.unlabelled_items
        if len(self.labels) > MAX_LABELS:
            self._prune_labels()

    def summaries(self) -> dict[str, dict]:
        """Per distribution: n, mean, min, percentiles and max (JSON-ready; None where empty)."""
        return {
            name: summary(part) for name, part in self._parts().items() if isinstance(part, ValueHistogram | IntCounts)
        }


def summary(hist: ValueHistogram | IntCounts) -> dict:
    """n, mean, min, p5, p25, p50, p75, p95, max of a histogram; None for values of an empty one."""

    def clean(v: float) -> float | None:
        return None if v is None or math.isnan(v) or math.isinf(v) else round(float(v), 4)

    quantiles = hist.quantiles(QUANTILES)  # flushes buffered values first
    out = {"n": hist.n, "mean": clean(hist.mean()), "min": clean(hist.min)}
    for q, v in zip(QUANTILES, quantiles, strict=True):
        out[f"p{round(q * 100)}"] = clean(v)
    out["max"] = clean(hist.max)
    return out
