"""Action and state normalization statistics, computed once from episode shards and saved beside them.

`norm_stats.json` holds, per array (delta joints, gripper close, joint state, gripper opening, and the state vector
of every state kind of `dataengine.train.observations`, as `state/<kind>`): min, max, q01, q99, mean and std over
every control step, plus the number of steps of every successful episode (the loader's unit table) and a
fingerprint of the shard set: when the shards change, the statistics are recomputed.

Modes: `min_max` maps [min, max] to [-1, 1]; `q99` maps [q01, q99] to [-1, 1] and clips; `standard` subtracts the
mean and divides by the std; `binary` maps the gripper command to -1 (open) / +1 (close) with the threshold halfway
between its min and max.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataengine.errors import InputError
from dataengine.runtime.atomic import atomic_write_text
from dataengine.shards.episode import read_episode_arrays
from dataengine.train.actions import (
    MAX_CHUNK,
    TOOL_TARGET_KEY,
    ee_relative_chunks,
    joint_relative_chunks,
    motion_dim,
)
from dataengine.train.observations import STATE_ARRAY_KEYS, STATE_KINDS, episode_states
from dataengine.train.shard_index import ShardEntry, ShardReader

log = logging.getLogger(__name__)

STATS_NAME = "norm_stats.json"
STATS_SCHEMA = "norm_stats/v2"  # v2: state kinds, ee_relative chunks, steps of unrendered episodes
EE_RELATIVE_KEY = "action/ee_relative"  # (MAX_CHUNK x 6) per chunk position and dimension
JOINT_RELATIVE_KEY = "action/joint_relative"  # (MAX_CHUNK x 7)
CHUNK_KEYS = (EE_RELATIVE_KEY, JOINT_RELATIVE_KEY)
MOTION_KEYS = {
    "ee_relative": EE_RELATIVE_KEY,
    "joint_relative": JOINT_RELATIVE_KEY,
    "joint_absolute": "action_joints",
    "joint_delta": "action_delta_joints",
}
ACTION_KEYS = ("action_delta_joints", "action_gripper_close")  # 7 + 1
STATE_KEYS = ("state_joints", "state_gripper_opening")  # 7 + 1
GRIPPER_TARGET_KEY = "action_gripper_opening"
EPS = 1e-8


def shard_set_fingerprint(entries: list[ShardEntry]) -> str:
    h = hashlib.sha1()
    for e in entries:
        h.update(f"{e.name}:{len(e)}:{e.path.stat().st_size}\n".encode())
    return h.hexdigest()


class _Accumulator:
    """Exact min, max, mean and std; q01/q99 from a seeded reservoir of at most `max_rows` rows."""

    def __init__(self, max_rows: int = 1_000_000, seed: int = 0) -> None:
        self.max_rows, self.rng = max_rows, np.random.default_rng(seed)
        self.n, self.sum, self.sumsq, self.min, self.max = 0, 0.0, 0.0, None, None
        self.reservoir: list[np.ndarray] = []
        self.kept = 0

    def add(self, values: np.ndarray) -> None:
        values = values.reshape(len(values), -1)
        self.min = values.min(0) if self.min is None else np.minimum(self.min, values.min(0))
        self.max = values.max(0) if self.max is None else np.maximum(self.max, values.max(0))
        self.sum, self.sumsq = self.sum + values.sum(0), self.sumsq + (values**2).sum(0)
        self.n += len(values)
        # keep each row with probability max_rows / rows seen so far (an approximate reservoir)
        keep_p = min(1.0, self.max_rows / self.n)
        rows = values if keep_p >= 1 else values[self.rng.random(len(values)) < keep_p]
        self.reservoir.append(rows)
        self.kept += len(rows)
        if self.kept > 2 * self.max_rows:
            pool = np.concatenate(self.reservoir)
            pool = pool[self.rng.choice(len(pool), self.max_rows, replace=False)]
            self.reservoir, self.kept = [pool], len(pool)

    def summary(self) -> dict:
        q01, q99 = np.quantile(np.concatenate(self.reservoir), [0.01, 0.99], axis=0)
        mean = self.sum / self.n
        std = np.sqrt(np.maximum(self.sumsq / self.n - mean**2, 0.0))
        return {
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "q01": q01.tolist(),
            "q99": q99.tolist(),
            "mean": mean.tolist(),
            "std": std.tolist(),
        }


def compute_stats(entries: list[ShardEntry], keep=None) -> dict:
    """One pass over every successful episode (rendered or not): statistics of the action and state arrays and of
    every state kind's vectors, and the steps of every episode. `keep(shard name, index)` limits the episodes."""
    reader = ShardReader(entries)
    plain = (*ACTION_KEYS, "action_joints", *STATE_KEYS, GRIPPER_TARGET_KEY)
    keys = tuple(dict.fromkeys((*plain, *STATE_ARRAY_KEYS)))
    columns = {k: _Accumulator() for k in plain}
    columns.update({f"state/{kind}": _Accumulator() for kind in STATE_KINDS})
    columns[JOINT_RELATIVE_KEY] = _Accumulator(max_rows=100_000)  # wide rows: fewer of them
    ee_chunks = _Accumulator(max_rows=100_000)
    steps: dict[str, list[int]] = {}
    episodes = rendered = 0
    try:
        for s, entry in enumerate(entries):
            steps[entry.name] = []
            for j in range(len(entry)):
                if keep is not None and not keep(entry.name, j):
                    steps[entry.name].append(0)
                    continue
                record, arrays = read_episode_arrays(reader.read(s, j), keys, (TOOL_TARGET_KEY,))
                steps[entry.name].append(record.num_steps if record.success else 0)
                if not record.success:
                    continue
                episodes += 1
                rendered += bool(record.render.rendered)
                for k, v in arrays.items():
                    if k in columns:
                        columns[k].add(v)
                for kind in STATE_KINDS:
                    columns[f"state/{kind}"].add(episode_states(kind, record, arrays))
                columns[JOINT_RELATIVE_KEY].add(
                    joint_relative_chunks(arrays["action_joints"], arrays["state_joints"], MAX_CHUNK)
                )
                if TOOL_TARGET_KEY in arrays:
                    layout = record.layout
                    ee_chunks.add(ee_relative_chunks(arrays[TOOL_TARGET_KEY], arrays["ee_pose"], layout, MAX_CHUNK))
    finally:
        reader.close()
    if episodes == 0:
        raise InputError("no successful episodes in the episode shards: nothing to train the action expert")
    return {
        "schema": STATS_SCHEMA,
        "fingerprint": shard_set_fingerprint(entries),
        "episodes": episodes,
        "rendered_episodes": rendered,
        "steps_total": int(sum(map(sum, steps.values()))),
        "arrays": {
            **{k: acc.summary() for k, acc in columns.items()},
            **({EE_RELATIVE_KEY: ee_chunks.summary()} if ee_chunks.n else {}),
        },
        "steps": steps,
    }


def load_or_compute_stats(entries: list[ShardEntry], shard_dir: Path, fallback_dir: Path) -> tuple[dict, Path]:
    """Statistics from `shard_dir/norm_stats.json` when they match the shards, else computed and saved there (or in
    `fallback_dir` when the shard folder is read-only). Returns (stats, path)."""
    for folder in (shard_dir, fallback_dir):
        path = folder / STATS_NAME
        if path.exists():
            try:
                stats = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
            complete = not stats.get("max_episodes")  # a run's statistics of its first N episodes only
            if (
                complete
                and stats.get("schema") == STATS_SCHEMA
                and stats.get("fingerprint") == shard_set_fingerprint(entries)
            ):
                return stats, path
    stats = compute_stats(entries)
    text = json.dumps(stats, indent=1, sort_keys=True)
    for folder in (shard_dir, fallback_dir):
        path = folder / STATS_NAME
        try:
            atomic_write_text(path, text)
            log.info("normalization statistics of %d episodes written to %s", stats["episodes"], path)
            return stats, path
        except OSError:
            continue
    raise InputError(f"cannot write {STATS_NAME} to {shard_dir} or {fallback_dir}")


def stats_of_first_episodes(entries: list[ShardEntry], count: int, run_dir: Path) -> tuple[dict, Path]:
    """Statistics of the first `count` successful episodes only (in shard order), written into the run folder: a run
    limited to N episodes learns nothing, not even value ranges, from the others. Their steps table gives every
    later episode zero units."""
    full = compute_stats(entries)
    kept, remaining = [], count
    for entry in entries:
        for j, steps in enumerate(full["steps"][entry.name]):
            if steps and remaining > 0:
                kept.append((entry, j))
                remaining -= 1
    if remaining > 0:
        found = count - remaining
        raise InputError(f"data.max_episodes is {count} but the episode shards hold {found} successful episodes")
    chosen = {(e.name, j) for e, j in kept}
    stats = compute_stats(entries, keep=lambda name, j: (name, j) in chosen)
    stats["max_episodes"] = count
    path = run_dir / STATS_NAME
    atomic_write_text(path, json.dumps(stats, indent=1, sort_keys=True))
    return stats, path


def apply_units(entries: list[ShardEntry], stats: dict) -> None:
    """Give each episode as many loader units as it has steps (0 for unusable episodes)."""
    for entry in entries:
        entry.units = list(stats["steps"][entry.name])


@dataclass
class Normalizer:
    """Maps raw actions (chunk, 8) and state vectors (of `state_kind`) to the model's space and back."""

    stats: dict
    action_mode: str = "min_max"
    state_mode: str = "min_max"
    gripper_mode: str = "binary"
    state_kind: str = "proprio"
    action_space: str = "joint_delta"

    def __post_init__(self) -> None:
        if f"state/{self.state_kind}" not in self.stats["arrays"]:
            raise InputError(
                f"normalization statistics have no state kind {self.state_kind!r} (schema {self.stats.get('schema')}); "
                "delete norm_stats.json beside the episode shards to recompute them"
            )
        if self.action_space == "ee_relative" and EE_RELATIVE_KEY not in self.stats["arrays"]:
            raise InputError(
                f"the episodes have no {TOOL_TARGET_KEY} array for the ee_relative action space (generated before "
                "it existed): regenerate them with `dataengine sim generate RECIPE --out DIR`, or train with "
                "data.actions: joint_delta"
            )
        self.motion_dim = motion_dim(self.action_space)

    def _stat(self, key: str, name: str, rows: int | None) -> np.ndarray:
        value = np.asarray(self.stats["arrays"][key][name], dtype=np.float64)
        if key in CHUNK_KEYS:  # per chunk position: (MAX_CHUNK, D), the first `rows` used
            value = value.reshape(MAX_CHUNK, -1)[:rows]
        return value

    def _bounds(self, key: str, mode: str, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = ("min", "max") if mode == "min_max" else ("q01", "q99")
        return self._stat(key, lo, rows), self._stat(key, hi, rows)

    def _to_unit(self, x: np.ndarray, key: str, mode: str) -> np.ndarray:
        if mode == "none":
            return x
        rows = len(x) if key in CHUNK_KEYS else None
        if mode == "standard":
            mean, std = self._stat(key, "mean", rows), self._stat(key, "std", rows)
            return (x - mean) / np.maximum(std, 1e-6)
        lo, hi = self._bounds(key, mode, rows)
        y = np.where(hi - lo > EPS, 2 * (x - lo) / np.maximum(hi - lo, EPS) - 1, 0.0)
        return np.clip(y, -1, 1) if mode == "q99" else y

    def _from_unit(self, y: np.ndarray, key: str, mode: str) -> np.ndarray:
        if mode == "none":
            return y
        rows = len(y) if key in CHUNK_KEYS else None
        if mode == "standard":
            mean, std = self._stat(key, "mean", rows), self._stat(key, "std", rows)
            return y * np.maximum(std, 1e-6) + mean
        lo, hi = self._bounds(key, mode, rows)
        return np.where(hi - lo > EPS, (y + 1) / 2 * (hi - lo) + lo, lo)

    @property
    def _motion_key(self) -> str:
        return MOTION_KEYS[self.action_space]

    def _gripper_threshold(self) -> float:
        g = self.stats["arrays"]["action_gripper_close"]
        return (g["min"][0] + g["max"][0]) / 2

    def actions(self, motion: np.ndarray, gripper_close: np.ndarray) -> np.ndarray:
        """(chunk, D) motion and (chunk,) close commands, raw -> (chunk, D + 1) float32 normalized."""
        joints = self._to_unit(motion, self._motion_key, self.action_mode)
        if self.gripper_mode == "binary":
            grip = np.where(gripper_close >= self._gripper_threshold(), 1.0, -1.0)
        else:
            grip = self._to_unit(gripper_close[:, None], "action_gripper_close", "min_max")[:, 0]
        return np.concatenate([joints, grip[:, None]], axis=1).astype(np.float32)

    def unnormalize_actions(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chunk, D + 1) normalized -> (motion (chunk, D), close command (chunk,) bool)."""
        d = self.motion_dim
        joints = self._from_unit(actions[:, :d], self._motion_key, self.action_mode)
        if self.gripper_mode == "binary":
            close = actions[:, d] > 0
        else:
            close = (
                self._from_unit(actions[:, d : d + 1], "action_gripper_close", "min_max")[:, 0]
                >= self._gripper_threshold()
            )
        return joints, close

    def state(self, vector: np.ndarray) -> np.ndarray:
        """A state vector of `state_kind` (D,) or (T, D) -> normalized float32."""
        x = np.asarray(vector, dtype=np.float64)
        return self._to_unit(x, f"state/{self.state_kind}", self.state_mode).astype(np.float32)

    def state_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset) with `state(x) == x * scale + offset` for min-max and standard state normalization (for
        code that builds states inside a differentiable graph); q99 clips, so it has no affine form."""
        key, mode = f"state/{self.state_kind}", self.state_mode
        if mode == "standard":
            scale = 1.0 / np.maximum(self._stat(key, "std", None), 1e-6)
            return scale, -self._stat(key, "mean", None) * scale
        if mode == "min_max":
            lo, hi = self._bounds(key, mode)
            wide = hi - lo > EPS
            scale = np.where(wide, 2.0 / np.maximum(hi - lo, EPS), 0.0)
            return scale, np.where(wide, -lo * scale - 1.0, 0.0)
        if mode == "none":
            dim = len(self._stat(key, "min", None))
            return np.ones(dim), np.zeros(dim)
        raise InputError(f"state normalization {mode!r} has no affine form; use min_max or standard")

    def gripper_targets_m(self) -> tuple[float, float]:
        """(closed, open) gripper opening targets seen in the demonstrations."""
        g = self.stats["arrays"][GRIPPER_TARGET_KEY]
        return float(g["min"][0]), float(g["max"][0])
