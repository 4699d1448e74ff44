"""Statistics of the LeRobot exports.

- per episode (v3.0 `meta/episodes` `stats/<feature>/<stat>`, v2.1 `meta/episodes_stats.jsonl`): every column and
  every video;
- `meta/stats.json`: every numeric column, exact over all frames (min, max, mean, std, count and the quantiles
  q01/q10/q50/q90/q99), videos pooled from the episodes' per-channel statistics (in [0, 1], shape 3x1x1);
- `meta/stats_gr00t.json`: the statistics cache of the GR00T loader as starVLA keeps it, an envelope
  `{"__format_version": 2, "__cache_config": {"mode": "abs"}, "statistics": {column: {mean, std, min, max, q01,
  q99}}}` with exact global values over all frames (float32 data, numpy's default linear quantiles, as the loader
  computes them), for every scalar and vector column. A loader run with `action_mode: abs` reuses it; other modes
  make it recompute its own. For InternVLA-M1 (`--trainer internvla-m1`) the same statistics without the envelope.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
GR00T_STATS_FORMAT_VERSION = 2
GR00T_CACHE_CONFIG = {"mode": "abs"}
GR00T_STAT_NAMES = ("mean", "std", "min", "max", "q01", "q99")


def numeric_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """min/max/mean/std/count and quantiles over the first axis, in float64 (LeRobot's stat names)."""
    data = np.asarray(values, dtype=np.float64)
    stats = {
        "min": data.min(axis=0),
        "max": data.max(axis=0),
        "mean": data.mean(axis=0),
        "std": data.std(axis=0),
        "count": np.array([len(data)]),
    }
    for q, value in zip(QUANTILES, np.quantile(data, QUANTILES, axis=0), strict=True):
        stats[f"q{round(q * 100):02d}"] = value
    return stats


def image_stats(frames_rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of (N, H, W, 3) uint8 frames in [0, 1], shaped (3, 1, 1) like LeRobot's (from every 2nd
    frame at a quarter of the resolution: a fixed subsample keeps it cheap and deterministic)."""
    pixels = frames_rgb[::2, ::4, ::4].reshape(-1, 3).astype(np.float64) / 255.0
    stats = numeric_stats(pixels)
    out = {k: (v if k == "count" else v.reshape(3, 1, 1)) for k, v in stats.items()}
    out["count"] = np.array([len(frames_rgb)])
    return out


def episode_stats(columns: Mapping[str, np.ndarray], images: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """Stats of one episode for every column, plus one entry per video."""
    stats = {k: numeric_stats(v) for k, v in columns.items()}
    stats.update({k: image_stats(v) for k, v in images.items()})
    return stats


def pooled_stats(items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dataset stats from per-episode ones: exact min/max/mean/std (pooled), count-weighted mean of quantiles
    (used for videos, whose pixels are not kept)."""
    counts = np.array([float(s["count"][0]) for s in items])
    weights = counts / counts.sum()
    mean = np.tensordot(weights, np.stack([s["mean"] for s in items]), axes=1)
    second = np.tensordot(weights, np.stack([s["std"] ** 2 + s["mean"] ** 2 for s in items]), axes=1)
    merged = {
        "min": np.min(np.stack([s["min"] for s in items]), axis=0),
        "max": np.max(np.stack([s["max"] for s in items]), axis=0),
        "mean": mean,
        "std": np.sqrt(np.maximum(second - mean**2, 0.0)),
        "count": np.array([int(counts.sum())]),
    }
    for q in QUANTILES:
        name = f"q{round(q * 100):02d}"
        merged[name] = np.tensordot(weights, np.stack([s[name] for s in items]), axes=1)
    return merged


class DatasetStats:
    """Collects every episode's columns (float32 copies) and video stats; computes the dataset-level files."""

    def __init__(self) -> None:
        self.columns: dict[str, list[np.ndarray]] = {}
        self.videos: dict[str, list[dict[str, np.ndarray]]] = {}

    def add(self, columns: Mapping[str, np.ndarray], episode: Mapping[str, dict]) -> None:
        for key, values in columns.items():
            self.columns.setdefault(key, []).append(np.asarray(values, dtype=np.float32))
        for key, values in episode.items():
            if key not in columns:
                self.videos.setdefault(key, []).append(values)

    def _concat(self, key: str) -> np.ndarray:
        return np.concatenate(self.columns[key], axis=0)

    def dataset(self) -> dict[str, dict[str, np.ndarray]]:
        """`stats.json` content: exact numeric stats of every column, pooled video stats."""
        out = {key: numeric_stats(self._concat(key)) for key in self.columns}
        out.update({key: pooled_stats(items) for key, items in self.videos.items()})
        return out

    def gr00t(self, envelope: bool = True) -> dict:
        """`stats_gr00t.json` content over every scalar and vector column: starVLA's cache envelope, or (`envelope`
        False) the bare {column: stats} InternVLA-M1 reads."""
        statistics = {}
        for key in self.columns:
            data = self._concat(key)
            if data.ndim > 2:
                continue  # matrices: the loader's statistics skip them too
            data = data.reshape(len(data), -1)
            statistics[key] = {
                "mean": np.mean(data, axis=0).tolist(),
                "std": np.std(data, axis=0).tolist(),
                "min": np.min(data, axis=0).tolist(),
                "max": np.max(data, axis=0).tolist(),
                "q01": np.quantile(data, 0.01, axis=0).tolist(),
                "q99": np.quantile(data, 0.99, axis=0).tolist(),
            }
        if not envelope:
            return statistics
        return {
            "__format_version": GR00T_STATS_FORMAT_VERSION,
            "__cache_config": dict(GR00T_CACHE_CONFIG),
            "statistics": statistics,
        }


def stats_to_json(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict:
    """Plain nested lists."""
    return {k: {name: np.asarray(v).tolist() for name, v in s.items()} for k, s in stats.items()}
