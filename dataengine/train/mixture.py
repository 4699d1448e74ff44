"""The co-training mixture: each step one action batch and one grounding batch, from two independent streams.

Upstream (InternVLA-M1 `_train_step`) draws one VLA batch (16 per device) and one VLM batch (4) per step, with no
ratio sampler; the loss ratio does the weighting. Both streams are endless, so the mixture is too; its position is
the two loaders' positions.
"""

from __future__ import annotations

from collections.abc import Iterator

from dataengine.train.streams import StreamLoader


class MixtureLoader:
    """Yields `(action_batch, grounding_batch)`; either side may be None (stage 1: grounding only; stage 2 with a
    zero spatial weight: actions only)."""

    def __init__(
        self,
        actions: StreamLoader | None,
        grounding: StreamLoader | None,
        action_batch: int = 16,
        grounding_batch: int = 4,
    ) -> None:
        if actions is None and grounding is None:
            raise ValueError("a mixture needs at least one stream")
        self.actions, self.grounding = actions, grounding
        if actions is not None:
            actions.batch_size = action_batch
        if grounding is not None:
            grounding.batch_size = grounding_batch

    def __iter__(self) -> Iterator[tuple[dict | None, dict | None]]:
        if self.actions is None:
            for batch in self.grounding:
                yield None, batch
        elif self.grounding is None:
            for batch in self.actions:
                yield batch, None
        else:
            yield from zip(self.actions, self.grounding, strict=False)  # both streams are endless

    def state_dict(self) -> dict:
        return {
            name: loader.state_dict()
            for name, loader in (("actions", self.actions), ("grounding", self.grounding))
            if loader is not None
        }

    def load_state_dict(self, state: dict) -> None:
        for name, loader in (("actions", self.actions), ("grounding", self.grounding)):
            if loader is not None and name in state:
                loader.load_state_dict(state[name])
