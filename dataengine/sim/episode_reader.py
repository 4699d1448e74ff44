"""Read `episode/v1` shards back: the record, its arrays and its frames, one episode at a time.

Used by the outputs built on generated episodes (LeRobot export, grounding QA, previews). Frames stay JPEG bytes
until a caller asks for pixels (`rgb`), so pass-through consumers never decode. Importing this module does not
import MuJoCo.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataengine.errors import InputError
from dataengine.records.episode import EpisodeRecord, load_npz, unpack_jpeg


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


def decode_episode(sample: dict) -> EpisodeData:
    """An `EpisodeData` from a raw WebDataset sample (dict of member name -> bytes)."""
    missing = [m for m in ("episode.json", "arrays.npz", "frames.npz") if m not in sample]
    if missing:
        raise InputError(f"sample {sample.get('__key__')!r} is not an episode/v1 sample: missing {missing}")
    record = EpisodeRecord.from_json_bytes(sample["episode.json"])
    return EpisodeData(
        record, load_npz(sample["arrays.npz"]), load_npz(sample["frames.npz"]), sample.get("__shard__", "")
    )


def episode_shards(path: str | Path) -> list[Path]:
    """The episode shards of a generator output folder (or one .tar); an error when there are none. Job state
    folders (`_state/`) below `path` are skipped; `path` itself may lie inside one (a build cache)."""
    from dataengine.shards import list_shards

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; expected a `dataengine sim generate` output folder")
    shards = list_shards(path)
    if not shards:
        raise InputError(f"no .tar shards under {path}; expected a `dataengine sim generate` output folder")
    return shards


def iter_episodes(path: str | Path, keys: Iterable[str] | None = None) -> Iterator[EpisodeData]:
    """Every episode under a folder of episode shards (or one tar), in shard order; only `keys` when given."""
    from dataengine.shards import iter_samples

    wanted = set(keys) if keys is not None else None
    for shard in episode_shards(path):
        for sample in iter_samples(shard):
            if wanted is not None and sample["__key__"] not in wanted:
                continue
            yield decode_episode(sample)


def load_episode(path: str | Path, key: str) -> EpisodeData:
    """One episode by key (an error listing a few keys when it is not there)."""
    from dataengine.shards import iter_samples

    seen: list[str] = []
    for shard in episode_shards(path):
        for sample in iter_samples(shard):
            if sample["__key__"] == key:
                return decode_episode(sample)
            seen.append(sample["__key__"])
    shown = ", ".join(seen[:5]) + (" ..." if len(seen) > 5 else "")
    raise InputError(f"no episode {key!r} under {path}; episodes there: {shown or 'none'}")
