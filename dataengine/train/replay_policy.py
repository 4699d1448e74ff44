"""A policy that plays back the demonstrations' recorded actions: the closed-loop evaluation's execution path
checked apart from learning.

`evaluate_in_sim(RecordedActionsPolicy(...), ..., seed_offset=0)` rebuilds the generator's own layouts and looks
(same recipe, same seed) and executes each episode's recorded actions exactly as it executes a model's: normalized
chunks of `chunk_size` (built by `dataengine.train.actions` exactly as training chunks), de-normalized with the
training statistics, the first `execute_steps` executed by the action space's `ChunkExecutor` (IK of the tool
targets, or measured joints + delta) with binary gripper targets at the control rate. A correct path reproduces
the demonstrations' success; units, frames, delta-versus-absolute targets, the gripper threshold, chunk indexing
or the control rate going wrong makes it fail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dataengine.errors import InputError
from dataengine.shards.episode import read_episode_arrays
from dataengine.train.actions import TOOL_TARGET_KEY, episode_chunks, required_arrays
from dataengine.train.models.policy import ActionSpace
from dataengine.train.normalization import Normalizer


def recorded_actions(
    shard_dir: str | Path, space: str = "joint_delta", chunk_size: int = 16
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Episode index -> (raw motion chunks (T, chunk, D), gripper close chunks (T, chunk)) of every successful
    episode under `shard_dir`, in action space `space`."""
    from dataengine.shards import iter_samples, list_shards

    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for shard in list_shards(shard_dir):
        for sample in iter_samples(shard):
            record, arrays = read_episode_arrays(sample, ("ee_pose", *required_arrays(space)), (TOOL_TARGET_KEY,))
            if record.success:
                out[record.episode_index] = episode_chunks(space, record, arrays, chunk_size)
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
        self.space = ActionSpace(action_dim=normalizer.motion_dim + 1, chunk_size=chunk_size)
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
        motion, close = self._current
        if self._t < len(close):
            chunk_motion, chunk_close = motion[self._t], close[self._t]
        else:  # past the end: hold still, the last gripper command
            chunk_motion, chunk_close = np.zeros_like(motion[-1]), np.full(len(close[-1]), close[-1][-1])
        self._t += self.execute_steps
        chunk = torch.from_numpy(self.normalizer.actions(chunk_motion, chunk_close))
        return chunk.unsqueeze(0).expand(batch["state"].shape[0], -1, -1)
