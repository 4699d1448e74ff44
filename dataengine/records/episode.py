"""The simulated episode record, `episode/v1`: the `episode.json` member of one WebDataset sample per validated
episode (task, seed, instructions, success, phases, cameras with intrinsics and extrinsics, layout, look, and the
name/dtype/shape of every array). The sample's members and how they are encoded and read: the episode codec,
`dataengine.shards.episode`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dataengine.records.layout import Layout, Look

SCHEMA_NAME = "episode/v1"
KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class PhaseInfo(_Model):
    name: str
    start: int = Field(ge=0, description="first control step of the phase")
    end: int = Field(ge=0, description="one past the last step")


class CameraInfo(_Model):
    name: str
    mount: Literal["world", "wrist"]
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    fovy_deg: float
    intrinsics_k: list[list[float]] = Field(description="3x3 pinhole matrix, pixels")
    T_cam_to_world_cv: list[list[float]] = Field(
        description="4x4 OpenCV camera->world transform at step 0 (per step: arrays `cam_T_cam_to_world`)"
    )


class Instructions(_Model):
    base: str = Field(description="template sentence")
    attr: str = Field(description="refers to objects by appearance")
    semantic: str = Field(description="refers to objects by category or use")
    spatial: str = Field(description="refers to objects by position relative to others")
    rewriter: str = Field(description="who wrote the three rewrites: 'offline', 'openai', 'openai+offline', 'none'")
    produced_by: dict[str, str] | None = Field(default=None, description="per kind, the rewriter that wrote it")
    fallbacks: dict[str, str] | None = Field(
        default=None, description="per kind that fell back to the offline rewriter, the reason (e.g. swapped_roles)"
    )


class TaskInfo(_Model):
    family: str = Field(default="pick_place", pattern=r"^[a-z][a-z0-9_]*$", description="task family")
    template: str
    relation: Literal["in", "on"]
    pick_uid: str
    place_uid: str
    pick_asset: str
    place_asset: str
    distractor_assets: list[str]
    split: Literal["seen", "unseen", "all"]


class ArraySpec(_Model):
    dtype: str
    shape: list[int]


class RenderInfo(_Model):
    rendered: bool
    preset: str
    cameras: list[str]
    jpeg_quality: int
    redraws: int = 0
    mean_intensity: float | None = None


class PerturbationInfo(_Model):
    """How a recipe with `perturb` treated this episode (recovery demonstrations): `perturbed` episodes executed
    noisy joint targets (array `action_executed_joints`) while their actions record the expert's."""

    perturbed: bool
    episode_fraction: float
    joint_noise_rad: float
    correlation_steps: float
    phases: list[str]


class EpisodeRecord(_Model):
    """The `episode.json` member."""

    schema_: Literal["episode/v1"] = Field(default=SCHEMA_NAME, alias="schema")
    key: str = Field(pattern=KEY_PATTERN)
    recipe: str
    recipe_fingerprint: str
    episode_index: int = Field(ge=0)
    seed: int
    attempt: int = Field(ge=0, description="index of the successful attempt")
    attempts: int = Field(ge=1, description="attempts spent on this episode, the successful one included")
    failures: dict[str, int] = Field(default_factory=dict, description="failed attempts by reason")
    success: bool
    task: TaskInfo
    instructions: Instructions
    num_steps: int = Field(gt=0)
    control_hz: float
    phases: list[PhaseInfo]
    cameras: list[CameraInfo]
    render: RenderInfo
    layout: Layout
    look: Look | None = None
    arrays: dict[str, ArraySpec]
    frames: dict[str, ArraySpec]
    backend: dict[str, str]
    labels: dict[str, Any] = Field(default_factory=dict, description="label parameters (trace horizon, thresholds)")
    perturbation: PerturbationInfo | None = Field(default=None, description="absent unless the recipe perturbs")

    def to_json_bytes(self) -> bytes:
        data = self.model_dump(by_alias=True, mode="json")
        if data.get("perturbation") is None:  # recipes without `perturb` write what they always wrote
            data.pop("perturbation", None)
        return canonical_json(data)

    @classmethod
    def from_json_bytes(cls, data: bytes) -> EpisodeRecord:
        return cls.model_validate_json(data)


def array_specs(arrays: dict[str, np.ndarray]) -> dict[str, ArraySpec]:
    return {k: ArraySpec(dtype=str(v.dtype), shape=list(v.shape)) for k, v in sorted(arrays.items())}


def canonical_json(doc: dict[str, Any]) -> bytes:
    """The bytes of an `episode.json` document: sorted keys, no whitespace, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
