"""The `episode/v1` codec: the one place episode samples are encoded, decoded, read and iterated.

A sample has exactly three members (a fixed set, so Hugging Face `datasets` can infer features):
- `episode.json`: the `EpisodeRecord` (`dataengine.records.episode`), canonical JSON;
- `arrays.npz`: numeric arrays, one row per control step (state, actions, end-effector pose, labels; see
  `docs/sim.md`); NaN marks a missing label;
- `frames.npz`: for each camera `<camera>.jpeg` (uint8, all frames' JPEG bytes concatenated) and
  `<camera>.offsets` (int64, T + 1 byte offsets; frame t is `jpeg[offsets[t]:offsets[t + 1]]`), plus optional
  `<camera>.depth_mm` (uint16) and `<camera>.segmentation` (int16). Empty (zero frames) for `--no-render` runs.
The npz members are written deterministically (fixed zip timestamps, sorted names): same episode, same bytes.

Writers: `encode_episode` (the generator), `with_instructions` (the rewriter). Readers: `decode_episode` /
`iter_episodes` / `load_episode` (everything, frames as JPEG bytes until `rgb` is asked for), `read_episode_arrays`
and `camera_frames` (the training loaders: only what they need), `iter_episode_json` (the rewriter: the JSON
member only). Importing this module does not import MuJoCo.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataengine.errors import InputError
from dataengine.records.episode import EpisodeRecord, canonical_json
from dataengine.shards.index import read_samples, sample_table
from dataengine.shards.reader import Sample, iter_samples, iter_tar_samples, list_shards

JSON_MEMBER, ARRAYS_MEMBER, FRAMES_MEMBER = "episode.json", "arrays.npz", "frames.npz"
MEMBERS = (JSON_MEMBER, ARRAYS_MEMBER, FRAMES_MEMBER)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# --- encoding --------------------------------------------------------------------------------------------------


def encode_episode(record: EpisodeRecord, arrays: dict[str, np.ndarray], frames: dict[str, np.ndarray]) -> dict:
    """The three members of one episode sample (arrays compressed; frames stored, JPEG bytes do not compress)."""
    return {
        JSON_MEMBER: record.to_json_bytes(),
        ARRAYS_MEMBER: npz_bytes(arrays, compress=True),
        FRAMES_MEMBER: npz_bytes(frames, compress=False),
    }


def with_instructions(json_bytes: bytes, **fields: Any) -> bytes:
    """An `episode.json` member with `instructions` fields replaced, every other byte's meaning kept (the stored
    document is updated as it is, not re-validated, so fields of newer writers survive)."""
    doc = json.loads(json_bytes)
    doc["instructions"].update(fields)
    return canonical_json(doc)


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


def pack_jpegs(frames: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(concatenated bytes as uint8, offsets (T + 1,) int64)."""
    offsets = np.zeros(len(frames) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(f) for f in frames])
    data = np.frombuffer(b"".join(frames), dtype=np.uint8) if frames else np.zeros(0, np.uint8)
    return data, offsets


# --- decoding --------------------------------------------------------------------------------------------------


def load_npz(data: bytes) -> dict[str, np.ndarray]:
    """Read an npz member (no pickles)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def jpeg_at(jpeg: np.ndarray, offsets: np.ndarray, t: int) -> bytes:
    """JPEG bytes of frame t of one camera's packed frames."""
    return jpeg[offsets[t] : offsets[t + 1]].tobytes()


def unpack_jpeg(frames: dict[str, np.ndarray], camera: str, t: int) -> bytes:
    """JPEG bytes of frame t of a camera from a loaded `frames.npz`."""
    return jpeg_at(frames[f"{camera}.jpeg"], frames[f"{camera}.offsets"], t)


@dataclass
class EpisodeData:
    """One decoded episode sample: `record` (episode.json), `arrays` (arrays.npz), `frames` (frames.npz)."""

    record: EpisodeRecord
    arrays: dict[str, np.ndarray]
    frames: dict[str, np.ndarray]
    shard: str = ""

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def cameras(self) -> list[str]:
        """Camera names in the order of the label arrays' camera axis."""
        return [c.name for c in self.record.cameras]

    @property
    def num_steps(self) -> int:
        return self.record.num_steps

    @property
    def rendered(self) -> bool:
        return self.record.render.rendered and bool(self.cameras) and f"{self.cameras[0]}.offsets" in self.frames

    def camera_index(self, camera: str) -> int:
        try:
            return self.cameras.index(camera)
        except ValueError:
            raise InputError(f"{self.key}: no camera {camera!r}; cameras: {self.cameras}") from None

    def jpeg(self, camera: str, t: int) -> bytes:
        """The stored JPEG bytes of frame t (untouched)."""
        return unpack_jpeg(self.frames, camera, t)

    def rgb(self, camera: str, t: int) -> np.ndarray:
        """Frame t decoded to (H, W, 3) uint8."""
        from PIL import Image

        with Image.open(io.BytesIO(self.jpeg(camera, t))) as image:
            return np.asarray(image.convert("RGB"))

    def segmentation(self, camera: str) -> np.ndarray | None:
        """(T, H, W) int16 index into `record.layout.objects` (-1 elsewhere), when the recipe stored it."""
        return self.frames.get(f"{camera}.segmentation")


def decode_episode(sample: Sample) -> EpisodeData:
    """An `EpisodeData` from a raw WebDataset sample (dict of member name -> bytes)."""
    missing = [m for m in MEMBERS if m not in sample]
    if missing:
        raise InputError(f"sample {sample.get('__key__')!r} is not an episode/v1 sample: missing {missing}")
    record = EpisodeRecord.from_json_bytes(sample[JSON_MEMBER])
    arrays, frames = load_npz(sample[ARRAYS_MEMBER]), load_npz(sample[FRAMES_MEMBER])
    return EpisodeData(record, arrays, frames, sample.get("__shard__", ""))


def read_episode_arrays(
    sample: Sample, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[EpisodeRecord, dict[str, np.ndarray]]:
    """The record and the named arrays (as float64) of one raw episode sample, other npz members unread; the
    `optional` ones only when present."""
    if JSON_MEMBER not in sample or ARRAYS_MEMBER not in sample:
        raise InputError(f"{sample.get('__key__')}: not an episode/v1 sample (needs episode.json and arrays.npz)")
    record = EpisodeRecord.from_json_bytes(sample[JSON_MEMBER])
    with np.load(io.BytesIO(sample[ARRAYS_MEMBER]), allow_pickle=False) as npz:
        missing = [k for k in keys if k not in npz.files]
        if missing:
            raise InputError(f"{record.key}: arrays.npz lacks {missing}")
        arrays = {k: np.asarray(npz[k], dtype=np.float64) for k in keys}
        arrays.update({k: np.asarray(npz[k], dtype=np.float64) for k in optional if k in npz.files})
    return record, arrays


def camera_frames(sample: Sample, record: EpisodeRecord, cameras: list[str]) -> dict[str, tuple[np.ndarray, ...]]:
    """Per camera, its packed JPEG bytes and offsets (`jpeg_at` reads frame t), without the other frame arrays;
    an error when a camera is missing or its frame count is not the episode's step count."""
    missing = [c for c in cameras if c not in record.render.cameras]
    if missing:
        raise InputError(f"{record.key}: no camera {missing}; it has {record.render.cameras}")
    frames = {}
    with np.load(io.BytesIO(sample[FRAMES_MEMBER]), allow_pickle=False) as npz:
        for camera in cameras:
            frames[camera] = (npz[f"{camera}.jpeg"], npz[f"{camera}.offsets"])
            if len(frames[camera][1]) != record.num_steps + 1:
                n = len(frames[camera][1]) - 1
                raise InputError(f"{record.key}: {n} {camera} frames for {record.num_steps} steps")
    return frames


# --- reading shard sets ----------------------------------------------------------------------------------------


def episode_shards(path: str | Path) -> list[Path]:
    """The episode shards of a generator output folder (or one .tar); an error when there are none. Job state
    folders (`_state/`) below `path` are skipped; `path` itself may lie inside one (a build cache)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; expected a `dataengine sim generate` output folder")
    shards = list_shards(path)
    if not shards:
        raise InputError(f"no .tar shards under {path}; expected a `dataengine sim generate` output folder")
    return shards


def iter_episodes(path: str | Path, keys: Iterable[str] | None = None) -> Iterator[EpisodeData]:
    """Every episode under a folder of episode shards (or one tar), in shard order; only `keys` when given."""
    wanted = set(keys) if keys is not None else None
    for shard in episode_shards(path):
        for sample in iter_samples(shard):
            if wanted is not None and sample["__key__"] not in wanted:
                continue
            yield decode_episode(sample)


def load_episode(path: str | Path, key: str) -> EpisodeData:
    """One episode by key, read through the shards' sample tables (an error listing a few keys when it is not
    there)."""
    seen: list[str] = []
    for shard in episode_shards(path):
        table = sample_table(shard)
        if any(row[0] == key for row in table):
            return decode_episode(next(read_samples(shard, {key}, table=table)))
        seen.extend(row[0] for row in table)
    shown = ", ".join(seen[:5]) + (" ..." if len(seen) > 5 else "")
    raise InputError(f"no episode {key!r} under {path}; episodes there: {shown or 'none'}")


def iter_episode_json(shard: str | Path) -> Iterator[tuple[str, bytes]]:
    """(key, episode.json bytes) of one shard's samples that have one, reading no other member's data."""
    for sample in iter_tar_samples(shard, _is_json, strict=False):
        if JSON_MEMBER in sample.data:
            yield sample.key, sample.data[JSON_MEMBER]


def _is_json(ext: str) -> bool:
    return ext == JSON_MEMBER
