"""Action samples from episode/v1 shards: one unit per control step t of an episode.

A sample is the camera frame at t resized to `image_size`^2, the proprio state at t (7 joints + gripper opening),
the chunk of the next `chunk_size` actions (7 delta joints + binary gripper close), normalized, and the
instruction (one of the episode's phrasings, chosen per visit) with the spatial prompt appended. Chunks that run
past the end of the episode are padded with a hold action (zero delta, last gripper command).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from dataengine.errors import InputError
from dataengine.formats import apply_spatial_prompt, stable_index
from dataengine.records.episode import EpisodeRecord, unpack_jpeg
from dataengine.train.grounding_data import decode_image
from dataengine.train.normalization import ACTION_KEYS, STATE_KEYS, Normalizer, read_episode_arrays
from dataengine.train.streams import SkipSample

INSTRUCTION_KINDS = ("base", "attr", "semantic", "spatial")


def prompt_for(instruction: str, spatial_prompt: str) -> str:
    """The action prompt: the instruction with the chosen spatial-prompt variant ("none": unchanged)."""
    return instruction if spatial_prompt == "none" else apply_spatial_prompt(instruction, spatial_prompt)


def action_chunk(delta_joints: np.ndarray, close: np.ndarray, t: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw actions t .. t+chunk-1; past the end: zero delta and the last gripper command."""
    end = min(t + chunk, len(close))
    joints = np.zeros((chunk, delta_joints.shape[1]))
    joints[: end - t] = delta_joints[t:end]
    grip = np.full(chunk, close[-1], dtype=np.float64)
    grip[: end - t] = close[t:end]
    return joints, grip


@dataclass
class _Episode:
    record: EpisodeRecord
    arrays: dict[str, np.ndarray]
    jpeg: np.ndarray
    offsets: np.ndarray
    instructions: list[str]


class ActionUnits:
    """`UnitTransform` for episode shards."""

    def __init__(
        self,
        normalizer: Normalizer,
        prepare_image,
        *,
        image_size: int = 224,
        chunk_size: int = 16,
        camera: str | None = None,
        spatial_prompt: str = "upstream",
        instruction_kinds: tuple[str, ...] = INSTRUCTION_KINDS,
        seed: int = 0,
    ) -> None:
        self.normalizer, self.prepare_image, self.image_size = normalizer, prepare_image, image_size
        self.chunk_size, self.camera, self.spatial_prompt = chunk_size, camera, spatial_prompt
        self.instruction_kinds, self.seed = instruction_kinds, seed

    def prepare(self, raw: dict) -> _Episode:
        record, arrays = read_episode_arrays(raw, (*ACTION_KEYS, *STATE_KEYS))
        if not (record.success and record.render.rendered):
            raise SkipSample(record.key)
        camera = self.camera or record.render.cameras[0]
        if camera not in record.render.cameras:
            raise InputError(f"{record.key}: no camera {camera!r}; it has {record.render.cameras}")
        with np.load(io.BytesIO(raw["frames.npz"]), allow_pickle=False) as frames:
            jpeg, offsets = frames[f"{camera}.jpeg"], frames[f"{camera}.offsets"]
        if len(offsets) != record.num_steps + 1:
            raise InputError(f"{record.key}: {len(offsets) - 1} frames for {record.num_steps} steps")
        texts = record.instructions.model_dump()
        instructions = [texts[k] for k in self.instruction_kinds if texts.get(k)]
        return _Episode(record, arrays, jpeg, offsets, instructions or [record.instructions.base])

    def item(self, ep: _Episode, t: int, epoch: int) -> dict:
        a = ep.arrays
        frame = unpack_jpeg({"f.jpeg": ep.jpeg, "f.offsets": ep.offsets}, "f", t)
        image = decode_image(frame, ep.record.key).convert("RGB")
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR)
        joints, grip = action_chunk(a["action_delta_joints"], a["action_gripper_close"], t, self.chunk_size)
        pick = stable_index(len(ep.instructions), "instruction", ep.record.key, t, epoch, self.seed)
        return {
            "image": self.prepare_image(image),
            "prompt": prompt_for(ep.instructions[pick], self.spatial_prompt),
            "state": self.normalizer.state(a["state_joints"][t], float(a["state_gripper_opening"][t])),
            "actions": self.normalizer.actions(joints, grip),
            "__key__": f"{ep.record.key}/{t}",
        }
