"""The simulated episode record, `episode/v1`: one WebDataset sample per validated pick-and-place episode.

Every sample has exactly three members (a fixed set, so Hugging Face `datasets` can infer features):
- `episode.json`: this model (task, seed, instructions, success, phases, cameras with intrinsics and extrinsics,
  layout, look, and the name/dtype/shape of every array);
- `arrays.npz`: numeric arrays, one row per control step (state, actions, end-effector pose, labels; see
  `docs/sim.md`); NaN marks a missing label;
- `frames.npz`: for each camera `<camera>.jpeg` (uint8, all frames' JPEG bytes concatenated) and
  `<camera>.offsets` (int64, T + 1 byte offsets; frame t is `jpeg[offsets[t]:offsets[t + 1]]`), plus optional
  `<camera>.depth_mm` (uint16) and `<camera>.segmentation` (int16). Empty (zero frames) for `--no-render` runs.
The npz members are written deterministically (fixed zip timestamps, sorted names): same episode, same bytes.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dataengine.sim.layout import Layout, Look

SCHEMA_NAME = "episode/v1"
MEMBERS = ("episode.json", "arrays.npz", "frames.npz")
KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


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
    family: Literal["pick_place"] = "pick_place"
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
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json_bytes(cls, data: bytes) -> EpisodeRecord:
        return cls.model_validate_json(data)


def array_specs(arrays: dict[str, np.ndarray]) -> dict[str, ArraySpec]:
    return {k: ArraySpec(dtype=str(v.dtype), shape=list(v.shape)) for k, v in sorted(arrays.items())}


def npz_bytes(arrays: dict[str, np.ndarray], *, compress: bool = False) -> bytes:
    """An `.npz` archive with fixed timestamps and sorted member names (byte-identical for equal arrays)."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            archive.writestr(info, member.getvalue())
    return buf.getvalue()


def load_npz(data: bytes) -> dict[str, np.ndarray]:
    """Read an npz member (no pickles)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def pack_jpegs(frames: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(concatenated bytes as uint8, offsets (T + 1,) int64)."""
    offsets = np.zeros(len(frames) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(f) for f in frames])
    data = np.frombuffer(b"".join(frames), dtype=np.uint8) if frames else np.zeros(0, np.uint8)
    return data, offsets


def unpack_jpeg(frames: dict[str, np.ndarray], camera: str, t: int) -> bytes:
    """JPEG bytes of frame t of a camera from a loaded `frames.npz`."""
    offsets = frames[f"{camera}.offsets"]
    return frames[f"{camera}.jpeg"][offsets[t] : offsets[t + 1]].tobytes()
