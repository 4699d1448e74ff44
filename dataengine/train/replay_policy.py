"""A policy that plays back the demonstrations' recorded actions: the closed-loop evaluation's execution path
checked apart from learning.

`evaluate_in_sim(RecordedActionsPolicy(...), ..., seed_offset=0)` rebuilds the generator's own layouts and looks
(same recipe, same seed) and executes each episode's recorded actions exactly as it executes a model's: normalized
chunks of `chunk_size` (padded past the end with the hold action, as training chunks), de-normalized with the
training statistics, the first `execute_steps` applied as measured joints + delta and binary gripper targets at
the control rate. A correct path reproduces the demonstrations' success; units, delta-versus-absolute joints, the
gripper threshold, chunk indexing or the control rate going wrong makes it fail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dataengine.errors import InputError
from dataengine.train.action_data import action_chunk
from dataengine.train.models.policy import ActionSpace
from dataengine.train.normalization import ACTION_KEYS, Normalizer, read_episode_arrays


def recorded_actions(shard_dir: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Episode index -> (delta joints (T, 7) rad, gripper close (T,) 0/1) of every successful episode under
    `shard_dir`."""
    from dataengine.shards import iter_samples, list_shards

    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for shard in list_shards(shard_dir):
        for sample in iter_samples(shard):
            record, arrays = read_episode_arrays(sample, ACTION_KEYS)
            if record.success:
                out[record.episode_index] = (arrays["action_delta_joints"], arrays["action_gripper_close"])
    if not out:
        raise InputError(f"no successful episodes under {shard_dir}")
    return out


class RecordedActionsPolicy(nn.Module):
    """Plays episode `index`'s recorded actions (see the module docstring). `evaluate_in_sim` calls
    `start_episode(index)` before each episode; each `predict_actions` call returns the normalized chunk that starts
    at the current step and advances by `execute_steps`, the number of actions the evaluation executes per chunk."""

    def __init__(
        self,
        episodes: dict[int, tuple[np.ndarray, np.ndarray]],
        normalizer: Normalizer,
        *,
        chunk_size: int = 16,
        execute_steps: int = 8,
    ) -> None:
        super().__init__()
        self.episodes, self.normalizer = episodes, normalizer
        self.space = ActionSpace(chunk_size=chunk_size)
        self.execute_steps = execute_steps
        self._current: tuple[np.ndarray, np.ndarray] | None = None
        self._t = 0

    def start_episode(self, index: int) -> None:
        if index not in self.episodes:
            raise InputError(f"no recorded episode {index}; recorded: {sorted(self.episodes)[:10]}...")
        self._current, self._t = self.episodes[index], 0

    @torch.no_grad()
    def predict_actions(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        if self._current is None:
            raise RuntimeError("start_episode(index) must be called before predict_actions")
        deltas, close = self._current
        t = min(self._t, len(close))  # past the end: the hold action
        joints, grip = action_chunk(deltas, close, t, self.space.chunk_size)
        self._t += self.execute_steps
        chunk = torch.from_numpy(self.normalizer.actions(joints, grip))
        return chunk.unsqueeze(0).expand(batch["state"].shape[0], -1, -1)
