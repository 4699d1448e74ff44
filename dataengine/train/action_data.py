"""Action samples from episode/v1 shards: one unit per control step t of an episode.

A sample is the frame at t of each policy camera resized to `image_size`^2 (none for state policies), the state
vector at t (`data.state`, see `dataengine.train.observations`), the chunk of the next `chunk_size` actions
(7 delta joints + binary gripper close), normalized, and the instruction (one of the episode's phrasings, chosen per
visit) with the spatial prompt appended. Chunks that run past the end of the episode are padded with a hold action
(zero delta, last gripper command).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from dataengine.errors import InputError
from dataengine.formats import apply_spatial_prompt, stable_index
from dataengine.records.episode import EpisodeRecord
from dataengine.shards.episode import camera_frames, jpeg_at, read_episode_arrays
from dataengine.train.actions import TOOL_TARGET_KEY, episode_chunks, required_arrays
from dataengine.train.grounding_data import decode_image
from dataengine.train.normalization import Normalizer
from dataengine.train.observations import STATE_ARRAY_KEYS, episode_states
from dataengine.train.point_labels import (
    POINT_ARRAY_KEYS,
    grasp_yaw_targets,
    object_points,
    point_query,
    role_indexes,
)
from dataengine.train.streams import SkipSample

INSTRUCTION_KINDS = ("base", "attr", "semantic", "spatial")


def prompt_for(instruction: str, spatial_prompt: str) -> str:
    """The action prompt: the instruction with the chosen spatial-prompt variant ("none": unchanged)."""
    return instruction if spatial_prompt == "none" else apply_spatial_prompt(instruction, spatial_prompt)


@dataclass
class _Points:
    points: np.ndarray  # (T, C, N, 2) every object's centre per step and camera, in [-1, 1]
    visible: np.ndarray  # (T, C, N)
    roles: tuple[int, int]  # pick object, container
    yaw: np.ndarray  # (T, 2) grasp yaw relative to the tool
    queries: list[str]  # per object: "Point to the red cube."


@dataclass
class _Episode:
    record: EpisodeRecord
    actions: np.ndarray  # (T, chunk, D + 1) normalized action chunks
    states: np.ndarray  # (T, D) normalized state vectors
    frames: dict[str, tuple[np.ndarray, np.ndarray]]  # camera -> (JPEG bytes, offsets)
    instructions: list[str]
    points: _Points | None = None


class ActionUnits:
    """`UnitTransform` for episode shards. `cameras`: the policy's cameras in order (None: the episode's first
    camera; [] for a state policy, which reads no frame). `point_labels`: each item also carries the per-frame 2-D
    labels of the pick object and the container in every camera, the grasp yaw, and one object of the scene named
    by its own phrase with its points (spatial-grounding co-training of a pointing backbone)."""

    def __init__(
        self,
        normalizer: Normalizer,
        prepare_image,
        *,
        image_size: int = 224,
        chunk_size: int = 16,
        cameras: list[str] | None = None,
        spatial_prompt: str = "upstream",
        instruction_kinds: tuple[str, ...] = INSTRUCTION_KINDS,
        seed: int = 0,
        point_labels: bool = False,
    ) -> None:
        self.normalizer, self.prepare_image, self.image_size = normalizer, prepare_image, image_size
        self.chunk_size, self.cameras, self.spatial_prompt = chunk_size, cameras, spatial_prompt
        self.instruction_kinds, self.seed, self.point_labels = instruction_kinds, seed, point_labels

    def prepare(self, raw: dict) -> _Episode:
        space = self.normalizer.action_space
        keys = tuple(dict.fromkeys((*STATE_ARRAY_KEYS, *required_arrays(space))))
        if self.point_labels:
            keys = tuple(dict.fromkeys((*keys, *POINT_ARRAY_KEYS)))
        record, arrays = read_episode_arrays(raw, keys, (TOOL_TARGET_KEY,))
        cameras = self.cameras if self.cameras is not None else record.render.cameras[:1]
        if not record.success or (cameras and not record.render.rendered):
            raise SkipSample(record.key)
        frames = {}
        if cameras:
            frames = camera_frames(raw, record, cameras)
        texts = record.instructions.model_dump()
        instructions = [texts[k] for k in self.instruction_kinds if texts.get(k)]
        states = self.normalizer.state(episode_states(self.normalizer.state_kind, record, arrays))
        motion, grip = episode_chunks(space, record, arrays, self.chunk_size)
        actions = np.stack([self.normalizer.actions(m, g) for m, g in zip(motion, grip, strict=True)])
        points = None
        if self.point_labels:
            if not cameras:
                raise InputError("point labels need the policy's cameras (data.cameras)")
            pts, visible = object_points(record, arrays, list(frames))
            queries = [point_query(o) for o in record.layout.objects]
            yaw = grasp_yaw_targets(record, arrays["ee_pose"])
            points = _Points(pts, visible, role_indexes(record.layout), yaw, queries)
        return _Episode(record, actions, states, frames, instructions or [record.instructions.base], points)

    def _image(self, ep: _Episode, camera: str, t: int) -> np.ndarray:
        jpeg, offsets = ep.frames[camera]
        frame = jpeg_at(jpeg, offsets, t)
        image = decode_image(frame, ep.record.key).convert("RGB")
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR)
        return self.prepare_image(image)

    def item(self, ep: _Episode, t: int, epoch: int) -> dict:
        pick = stable_index(len(ep.instructions), "instruction", ep.record.key, t, epoch, self.seed)
        item = {
            "prompt": prompt_for(ep.instructions[pick], self.spatial_prompt),
            "state": ep.states[t],
            "actions": ep.actions[t],
            "__key__": f"{ep.record.key}/{t}",
        }
        images = [self._image(ep, camera, t) for camera in ep.frames]
        if images:
            item["image"] = images[0] if len(images) == 1 else np.stack(images)
        if ep.points is not None:
            p = ep.points
            roles = list(p.roles)
            item.update(
                point_targets=p.points[t][:, roles],  # (C, 2 roles, 2)
                point_visible=p.visible[t][:, roles],  # (C, 2 roles)
                grasp_yaw=p.yaw[t],
            )
            j = stable_index(len(p.queries), "point_query", ep.record.key, t, epoch, self.seed)
            item.update(query=p.queries[j], query_points=p.points[t][:, j], query_visible=p.visible[t][:, j])
        return item
