"""`dataengine stats --plots DIR`: PNG charts of a `DatasetStats` (matplotlib, Agg backend, fixed pixel sizes).

- `counts.png`: items per source stacked by task, items per split, pairs per unique image;
- `box_sizes.png`: box area as a fraction of the image (log scale) and box aspect ratio w/h (log scale);
- `target_locations.png`: heat maps of where targets fall in the normalized image frame (all targets, box
  centres, points, trace points), with the top of the image at the top;
- `traces.png`: points per trace and trace length as a fraction of the image diagonal.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dataengine.inspect.histograms import Heatmap, IntCounts, ValueHistogram
from dataengine.inspect.stats_report import task_order

if TYPE_CHECKING:
    from dataengine.inspect.stats import DatasetStats

DPI = 100
WIDE_IN = (14.0, 5.0)  # 1400 x 500 pixels: rows of histograms
SQUARE_GRID_IN = (11.0, 10.0)  # 1100 x 1000 pixels: 2 x 2 heat maps
CHART_SIZES_PX = {
    "counts.png": (1400, 500),
    "box_sizes.png": (1400, 500),
    "target_locations.png": (1100, 1000),
    "traces.png": (1400, 500),
}
TASK_COLOURS = {"box": "#1f77b4", "point": "#ff7f0e", "trace": "#2ca02c", "vqa": "#9467bd"}
MAX_SOURCES = 25
MAX_BARS = 40  # fine histogram bins are merged into at most this many bars
PNG_METADATA = {"Software": None}  # no version string: same stats, same bytes


def _figure(ncols: int, title: str, nrows: int = 1, size_in: tuple[float, float] = WIDE_IN):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=size_in, dpi=DPI, layout="constrained")
    fig.suptitle(title, fontsize=13)
    return fig, np.atleast_1d(axes).ravel()


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    plt.close(fig)
    return path


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4", fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _int_bars(ax, counts: IntCounts, colour: str, xlabel: str, empty: str) -> None:
    if counts.n == 0:
        _empty(ax, empty)
        return
    values = sorted(counts.counts)
    ax.bar(values, [counts.counts[v] for v in values], width=0.8, color=colour)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    median = counts.quantiles((0.5,))[0]
    ax.axvline(median, color="0.2", linestyle="--", linewidth=1, label=f"median {median:g}")
    ax.legend(frameon=False)


DECIMAL_TICKS = sorted(m * 10.0**e for e in range(-6, 4) for m in (1, 2, 5))  # 0.01, 0.02, 0.05, 0.1 ...
RATIO_TICKS = sorted({2.0**e for e in range(-6, 7)} | {1 / 3, 2 / 3, 1.5, 3.0})  # 1/4, 1/3, 1/2, 2/3, 1, 1.5 ...


def _plain_log_ticks(axis, lo: float, hi: float, candidates: list[float] = DECIMAL_TICKS) -> None:
    """Readable ticks on a log axis: decimals (0.01, 0.5, 2), several of them even on a narrow range."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    inside = [t for t in candidates if lo <= t <= hi]
    step = max(1, len(inside) // 8)
    axis.set_major_locator(FixedLocator(inside[::step]))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def _value_hist(
    ax, hist: ValueHistogram, colour: str, xlabel: str, empty: str, ticks: list[float] = DECIMAL_TICKS
) -> None:
    hist.flush()
    if hist.n == 0:
        _empty(ax, empty)
        return
    nonzero = np.nonzero(hist.counts)[0]
    first, last = max(nonzero[0] - 1, 0), min(nonzero[-1] + 2, hist.bins)  # the occupied range, one bin margin
    group = max(1, -(-(last - first) // MAX_BARS))
    last = min(first + -(-(last - first) // group) * group, hist.bins)
    counts = hist.counts[first:last]
    counts = np.add.reduceat(counts, np.arange(0, len(counts), group))
    edges = hist.edges[first : last + 1 : group]
    if len(edges) < len(counts) + 1:
        edges = np.append(edges, hist.edges[last])
    ax.stairs(counts, edges, fill=True, color=colour, alpha=0.85)
    if hist.log:
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis, edges[0], edges[-1], ticks)
    ax.set_xlim(edges[0], edges[-1])
    median = hist.quantiles((0.5,))[0]
    ax.axvline(median, color="0.2", linestyle="--", linewidth=1, label=f"median {median:.3g}")
    ax.legend(frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")


def _stacked_barh(ax, rows: list[str], per_row: dict[str, dict[str, int]], tasks: list[str]) -> None:
    """Horizontal bars (first row on top), stacked by task, with the row total written after each bar."""
    from matplotlib.ticker import MaxNLocator

    y = np.arange(len(rows))[::-1]
    left = np.zeros(len(rows))
    for task in tasks:
        widths = np.array([per_row[r].get(task, 0) for r in rows], dtype=float)
        ax.barh(y, widths, left=left, color=TASK_COLOURS.get(task, "0.5"), label=task)
        left += widths
    for yi, total in zip(y, left, strict=True):
        ax.text(total, yi, f" {int(total):,}", va="center", fontsize=9)
    ax.set_yticks(y, rows)
    ax.set_xlim(0, max(left.max(initial=0) * 1.18, 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("items")
    if tasks:
        ax.legend(frameon=False, fontsize=9, loc="lower right")


def plot_counts(stats: DatasetStats, path: Path) -> Path:
    c = stats.counts
    fig, (ax_src, ax_split, ax_pairs) = _figure(3, "How much data: items by source and split, pairs per image")
    tasks = task_order({k[2] for k in c.items})
    per_source: dict[str, dict[str, int]] = {}
    per_split: dict[str, dict[str, int]] = {}
    for (source, split, task), n in c.items.items():
        per_source.setdefault(source, {}).setdefault(task, 0)
        per_source[source][task] += n
        per_split.setdefault(split, {}).setdefault(task, 0)
        per_split[split][task] += n
    sources = sorted(per_source, key=lambda s: (-sum(per_source[s].values()), s))
    if len(sources) > MAX_SOURCES:
        other: dict[str, int] = {}
        for s in sources[MAX_SOURCES - 1 :]:
            for t, n in per_source[s].items():
                other[t] = other.get(t, 0) + n
        per_source = {s: per_source[s] for s in sources[: MAX_SOURCES - 1]} | {"(other)": other}
        sources = [*sources[: MAX_SOURCES - 1], "(other)"]
    _stacked_barh(ax_src, sources, per_source, tasks)
    ax_src.set_title("items per source, by task")
    _stacked_barh(ax_split, sorted(per_split), per_split, tasks)
    ax_split.set_title("items per split, by task")
    _int_bars(ax_pairs, c.pairs_per_image, "#8c564b", "pairs per unique image", "no images")
    ax_pairs.set_title(f"pairs per unique image ({c.unique_images:,} images)")
    return _save(fig, path)


def plot_box_sizes(stats: DatasetStats, path: Path) -> Path:
    d = stats.distributions
    fig, (ax_area, ax_aspect) = _figure(2, f"Box sizes ({d.box_area_rel.n:,} boxes)")
    _value_hist(ax_area, d.box_area_rel, TASK_COLOURS["box"], "box area / image area (log scale)", "no boxes")
    ax_area.set_title("relative area")
    _value_hist(ax_aspect, d.box_aspect_w_over_h, "#17becf", "box width / height (log scale)", "no boxes", RATIO_TICKS)
    ax_aspect.set_title("aspect ratio (>1 wide, <1 tall)")
    return _save(fig, path)


def _coarsen(counts: np.ndarray, min_per_cell: float = 2.0, min_bins: int = 8) -> np.ndarray:
    """Halve the grid until there are `min_per_cell` targets per cell on average (sparse sets stay readable)."""
    total = counts.sum()
    while counts.shape[0] > min_bins and total / counts.size < min_per_cell:
        n = counts.shape[0] // 2
        counts = counts.reshape(n, 2, n, 2).sum(axis=(1, 3))
    return counts


def _heat(ax, fig, counts: np.ndarray, title: str) -> None:
    from matplotlib.colors import LogNorm

    total = int(counts.sum())
    ax.set_aspect("equal")
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_xlabel("x / image width")
    ax.set_ylabel("y / image height")
    ax.set_facecolor("#eeeeee")
    if total == 0:
        ax.set_title(f"{title} (none)")
        ax.text(0.5, 0.5, "none", ha="center", va="center", color="0.4", fontsize=12)
        return
    grid = _coarsen(counts).astype(float)
    ax.set_title(f"{title} ({total:,}; {grid.shape[0]}x{grid.shape[0]} cells)", fontsize=11)
    shown = np.ma.masked_equal(grid, 0)  # empty cells show the light background
    image = ax.imshow(
        shown, extent=(0, 1, 1, 0), cmap="viridis", norm=LogNorm(vmin=1, vmax=max(grid.max(), 2)), origin="upper"
    )
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    _plain_log_ticks(bar.ax.yaxis, 1, max(grid.max(), 2))
    bar.set_label("targets per cell", fontsize=9)


def plot_target_locations(stats: DatasetStats, path: Path) -> Path:
    d = stats.distributions
    parts: list[Heatmap] = [d.box_centres_norm, d.points_norm, d.trace_points_norm]
    for part in parts:
        part.flush()
    fig, axes = _figure(
        2, "Where targets fall in the image (normalized; top of the image at the top)", 2, SQUARE_GRID_IN
    )
    _heat(axes[0], fig, sum(p.counts for p in parts), "all targets")
    _heat(axes[1], fig, d.box_centres_norm.counts, "box centres")
    _heat(axes[2], fig, d.points_norm.counts, "points")
    _heat(axes[3], fig, d.trace_points_norm.counts, "trace points")
    return _save(fig, path)


def plot_traces(stats: DatasetStats, path: Path) -> Path:
    d = stats.distributions
    fig, (ax_n, ax_len) = _figure(2, f"Traces ({d.points_per_trace.n:,})")
    _int_bars(ax_n, d.points_per_trace, TASK_COLOURS["trace"], "points per trace", "no traces")
    ax_n.set_title("points per trace")
    _value_hist(ax_len, d.trace_length_rel_diag, "#bcbd22", "path length / image diagonal", "no traces")
    ax_len.set_title("trace length")
    return _save(fig, path)


def write_plots(stats: DatasetStats, out_dir: str | Path) -> list[Path]:
    """Write the charts into `out_dir` (created); only `counts.png` when distributions were not computed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_counts(stats, out / "counts.png")]
    if stats.distributions is not None:
        paths.append(plot_box_sizes(stats, out / "box_sizes.png"))
        paths.append(plot_target_locations(stats, out / "target_locations.png"))
        paths.append(plot_traces(stats, out / "traces.png"))
    return paths
