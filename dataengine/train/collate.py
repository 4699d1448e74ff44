"""One collator for every backbone: items -> the backbone's tensors (through its chat encoder) + actions/state.

Items come from `GroundingUnits` (image, prompt, answer) or `ActionUnits` (image, prompt, state, actions); the
backbone's encoder (`ByteChatEncoder` for the tiny model, `QwenChatEncoder` for Qwen2.5-VL) tokenizes and builds
pixel inputs. Stream positions and eval targets travel in `batch["meta"]` as lists.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from dataengine.train.streams import META_KEYS


class ChatEncoder(Protocol):
    def prepare_image(self, image) -> np.ndarray: ...

    def encode(
        self, images: list[np.ndarray], prompts: list[str], answers: list[str | None], *, for_generation: bool = False
    ) -> dict: ...


class Collator:
    def __init__(self, encoder: ChatEncoder, for_generation: bool = False) -> None:
        self.encoder, self.for_generation = encoder, for_generation

    def __call__(self, items: list[dict]) -> dict:
        answers = [None if self.for_generation else it.get("answer") for it in items]
        extra = {"queries": [it["query"] for it in items]} if "query" in items[0] else {}
        batch = self.encoder.encode(
            [it.get("image") for it in items],
            [it["prompt"] for it in items],
            answers,
            for_generation=self.for_generation,
            **extra,
        )
        for key in ("actions", "state", "point_targets", "grasp_yaw", "query_points"):
            if key in items[0]:
                batch[key] = torch.from_numpy(np.stack([it[key] for it in items])).float()
        for key in ("point_visible", "query_visible"):
            if key in items[0]:
                batch[key] = torch.from_numpy(np.stack([it[key] for it in items]))
        meta = {k: [it.get(k) for it in items] for k in META_KEYS}
        for extra in ("target", "answer", "prompt", "episode"):
            if extra in items[0]:
                meta[extra] = [it.get(extra) for it in items]
        batch["meta"] = meta
        return batch


def to_device(batch: dict, device: torch.device) -> dict:
    """Tensors to `device` (non-blocking); everything else as is."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
