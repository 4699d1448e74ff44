"""Load a LeRobot v3.0 export with LeRobot's own reader and dump what it sees (run with the interop venv's python).

    .venv-lerobot/bin/python tests/interop/lerobot_read_check.py DATASET_ROOT OUT.npz [--every N]

Uses `ledataset.datasets.lerobot_dataset.LeRobotDataset` (PyPI `lerobot-dataset`, the standalone LeRobotDataset;
`lerobot.datasets.lerobot_dataset` is tried when that is missing) fully offline. Prints one JSON object: fps,
counts, features, tasks, subtasks (when the reader resolves `meta/subtasks.parquet`), per-episode boundaries (from
`meta/episodes`), and the frames it decoded; writes to OUT.npz
`actions` (N, A), `states` (N, S), `index` (N,), `episode_index` (N,), `frame_index` (N,) (and `subtask_index` (N,)
when the dataset has it) for every frame and, for
every N-th frame of each episode plus its first and last, `frames__<video key>` (M, H, W, 3) uint8 decoded through
LeRobot's `__getitem__` (its own video decoder) with `frame_rows` (M,) naming their dataset indices.
This file must not import anything from `dataengine`: it runs in a separate environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _dataset_class():
    try:
        from ledataset.datasets.lerobot_dataset import LeRobotDataset
    except ImportError:
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
    return LeRobotDataset


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("out_npz")
    parser.add_argument("--every", type=int, default=7)
    args = parser.parse_args()

    import numpy as np

    dataset = _dataset_class()(repo_id="dataengine/export", root=args.root)
    meta = dataset.meta
    episodes = []
    for ep in meta.episodes:
        episodes.append(
            {
                "episode_index": int(ep["episode_index"]),
                "from": int(ep["dataset_from_index"]),
                "to": int(ep["dataset_to_index"]),
                "length": int(ep["length"]),
                "tasks": list(ep["tasks"]),
                "episode_key": ep.get("episode_key"),
            }
        )
    hf = dataset.hf_dataset  # LeRobot's own torch transform

    def column(name):
        import torch

        return torch.stack(list(hf[name])).numpy()

    columns = {
        "actions": column("action").astype(np.float32),
        "states": column("observation.state").astype(np.float32),
        "index": column("index"),
        "episode_index": column("episode_index"),
        "frame_index": column("frame_index"),
    }
    if "subtask_index" in meta.features:
        columns["subtask_index"] = column("subtask_index")
    rows = []
    for ep in episodes:
        picks = set(range(ep["from"], ep["to"], args.every)) | {ep["from"], ep["to"] - 1}
        rows.extend(sorted(picks))
    frames: dict[str, list] = {key: [] for key in meta.video_keys}
    tasks_seen = {}
    subtasks_seen: dict[int, str] = {}
    for row in rows:
        item = dataset[row]
        tasks_seen[int(item["episode_index"])] = item["task"]
        if "subtask" in item:
            subtasks_seen[row] = item["subtask"]
        for key in meta.video_keys:
            chw = item[key].numpy()  # (3, H, W) float in [0, 1]
            frames[key].append((chw.transpose(1, 2, 0) * 255.0 + 0.5).clip(0, 255).astype(np.uint8))
    for key, values in frames.items():
        columns[f"frames__{key}"] = np.stack(values)
    columns["frame_rows"] = np.asarray(rows, dtype=np.int64)
    np.savez(args.out_npz, **columns)
    summary = {
        "reader": type(dataset).__module__,
        "fps": meta.fps,
        "num_episodes": dataset.num_episodes,
        "num_frames": dataset.num_frames,
        "video_keys": list(meta.video_keys),
        "features": {k: {"dtype": v["dtype"], "shape": list(v["shape"])} for k, v in meta.features.items()},
        "episodes": episodes,
        "tasks_by_episode": {str(k): v for k, v in sorted(tasks_seen.items())},
        "subtasks_by_row": {str(k): v for k, v in sorted(subtasks_seen.items())},
        "decoded_frames": len(rows),
        "video_backend": dataset.video_backend,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
