"""Streaming histograms: quantiles within one bin of numpy's, merging equals adding everything to one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dataengine.inspect.histograms import FLUSH_AT, Heatmap, IntCounts, ValueHistogram

QS = (0.05, 0.25, 0.5, 0.75, 0.95)


def test_log_quantiles_match_numpy_within_a_bin():
    rng = np.random.default_rng(0)
    values = 10 ** rng.uniform(-4, 0, size=FLUSH_AT + 5000)  # crosses a flush
    hist = ValueHistogram(1e-5, 1.0, 250, log=True)
    for v in values:
        hist.add(float(v))
    got = np.array(hist.quantiles(QS))
    want = np.quantile(values, QS)
    ratio_per_bin = 10 ** (5 / 250)
    assert np.all(got / want < ratio_per_bin) and np.all(want / got < ratio_per_bin)
    assert hist.n == values.size and abs(hist.mean() - values.mean()) < 1e-9


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=300), st.integers(0, 300))
def test_merge_equals_one_histogram(values, split):
    whole, a, b = (ValueHistogram(0.0, 1.0, 100) for _ in range(3))
    for v in values:
        whole.add(v)
    for v in values[:split]:
        a.add(v)
    for v in values[split:]:
        b.add(v)
    a.merge(b)
    whole.flush()
    assert np.array_equal(a.counts, whole.counts) and a.n == whole.n == len(values)
    assert a.quantiles(QS) == whole.quantiles(QS)
    assert min(values) <= whole.quantiles((0.5,))[0] <= max(values)


def test_int_counts_are_exact():
    counts = IntCounts()
    for v in [3, 3, 4, 9, 1]:
        counts.add(v)
    assert counts.quantiles((0.0, 0.5, 1.0)) == [1.0, 3.0, 9.0]
    assert counts.mean() == 4.0 and counts.min == 1.0 and counts.max == 9.0


def test_heatmap_rows_are_y_from_the_top():
    heat = Heatmap(bins=4)
    heat.add(0.1, 0.9)  # left, bottom of the image
    heat.add(1.0, 0.0)  # right edge, top edge: clipped into the last column, first row
    assert heat.n == 2
    assert heat.counts[3, 0] == 1 and heat.counts[0, 3] == 1


def test_empty_histograms_give_nan():
    assert all(np.isnan(ValueHistogram(0, 1, 10).quantiles(QS)))
    assert all(np.isnan(IntCounts().quantiles(QS)))
