"""Streaming, mergeable histograms: memory stays flat however many values go in.

Values are buffered in plain lists and folded into fixed bins in batches (one numpy call per batch, not per
value). Quantiles are read from the bins, so they are exact to within one bin width; integer-valued quantities
(points per trace, pairs per image) use `IntCounts`, which is exact.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

FLUSH_AT = 65_536


@dataclass
class ValueHistogram:
    """Counts of values in `bins` equal bins over [lo, hi] (in log10 space when `log`); outliers go to the end bins."""

    lo: float
    hi: float
    bins: int
    log: bool = False
    counts: np.ndarray = field(init=False, repr=False)
    n: int = 0
    total: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    _buffer: list[float] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.bins, dtype=np.int64)

    @property
    def edges(self) -> np.ndarray:
        if self.log:
            return np.logspace(np.log10(self.lo), np.log10(self.hi), self.bins + 1)
        return np.linspace(self.lo, self.hi, self.bins + 1)

    def add(self, value: float) -> None:
        self._buffer.append(value)
        if len(self._buffer) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        values = np.asarray(self._buffer, dtype=np.float64)
        self._buffer.clear()
        self.n += values.size
        self.total += float(values.sum())
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        scaled = np.log10(np.maximum(values, self.lo)) if self.log else values
        lo, hi = (np.log10(self.lo), np.log10(self.hi)) if self.log else (self.lo, self.hi)
        index = np.clip(((scaled - lo) / (hi - lo) * self.bins).astype(np.int64), 0, self.bins - 1)
        self.counts += np.bincount(index, minlength=self.bins)

    def merge(self, other: ValueHistogram) -> None:
        self.flush()
        other.flush()
        self.counts += other.counts
        self.n += other.n
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantiles(self, qs: tuple[float, ...]) -> list[float]:
        """Quantiles interpolated inside bins, clamped to the observed min and max; NaN when empty."""
        self.flush()
        if self.n == 0:
            return [float("nan")] * len(qs)
        cumulative = np.concatenate([[0], np.cumsum(self.counts)])
        edges = np.log10(self.edges) if self.log else self.edges
        out = np.interp(np.asarray(qs) * self.n, cumulative, edges)
        out = 10**out if self.log else out
        return [float(min(max(v, self.min), self.max)) for v in out]

    def mean(self) -> float:
        self.flush()
        return self.total / self.n if self.n else float("nan")


@dataclass
class Heatmap:
    """A 2-D histogram of normalized (x, y) in [0, 1]^2; rows are y (top of the image first), columns x."""

    bins: int = 64
    counts: np.ndarray = field(init=False, repr=False)
    _xs: list[float] = field(default_factory=list, init=False, repr=False)
    _ys: list[float] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros((self.bins, self.bins), dtype=np.int64)

    @property
    def n(self) -> int:
        self.flush()
        return int(self.counts.sum())

    def add(self, x_norm: float, y_norm: float) -> None:
        self._xs.append(x_norm)
        self._ys.append(y_norm)
        if len(self._xs) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._xs:
            return
        xs = np.clip((np.asarray(self._xs) * self.bins).astype(np.int64), 0, self.bins - 1)
        ys = np.clip((np.asarray(self._ys) * self.bins).astype(np.int64), 0, self.bins - 1)
        self._xs.clear()
        self._ys.clear()
        np.add.at(self.counts, (ys, xs), 1)

    def merge(self, other: Heatmap) -> None:
        self.flush()
        other.flush()
        self.counts += other.counts


@dataclass
class IntCounts:
    """Exact counts of small non-negative integers (points per trace, pairs per image, words per query)."""

    counts: Counter = field(default_factory=Counter)

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def add(self, value: int) -> None:
        self.counts[int(value)] += 1

    def merge(self, other: IntCounts) -> None:
        self.counts.update(other.counts)

    def quantiles(self, qs: tuple[float, ...]) -> list[float]:
        """Lower quantiles (a value that occurs); NaN when empty."""
        n = self.n
        if n == 0:
            return [float("nan")] * len(qs)
        values = sorted(self.counts)
        cumulative = np.cumsum([self.counts[v] for v in values])
        return [float(values[min(int(np.searchsorted(cumulative, q * n)), len(values) - 1)]) for q in qs]

    def mean(self) -> float:
        n = self.n
        return sum(v * c for v, c in self.counts.items()) / n if n else float("nan")

    @property
    def min(self) -> float:
        return float(min(self.counts)) if self.counts else float("nan")

    @property
    def max(self) -> float:
        return float(max(self.counts)) if self.counts else float("nan")
