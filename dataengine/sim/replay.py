"""`dataengine sim replay`: re-simulate stored episodes from their initial state and actions, check success again.

MuJoCo's CPU pipeline is deterministic on one machine, so a replay on the machine that generated the episodes
should reproduce it exactly; across CPUs or MuJoCo versions small differences can grow, which is why episodes
store full per-step state (rendering never depends on replaying actions).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataengine.records.episode import EpisodeRecord
from dataengine.shards.episode import ARRAYS_MEMBER, JSON_MEMBER, load_npz
from dataengine.sim.backends.base import SimState


@dataclass
class ReplayResult:
    key: str
    success: bool
    reason: str | None
    final_pos_error_m: float  # largest object position difference from the recorded final state


def replay_sample(backend, sample: dict) -> ReplayResult:
    from dataengine.sim.families import get_family

    record = EpisodeRecord.from_json_bytes(sample[JSON_MEMBER])
    arrays = load_npz(sample[ARRAYS_MEMBER])
    layout = record.layout
    from dataengine.sim.recipe import RENDER_PRESETS

    backend.load(layout, control_hz=record.control_hz, quality=RENDER_PRESETS.get(record.render.preset))
    backend.set_state(
        SimState(arrays["qpos"][0], arrays["qvel"][0], np.zeros(0), arrays["ctrl"][0], float(arrays["time_s"][0]))
    )
    executed = arrays.get("action_executed_joints", arrays["action_joints"])  # perturbed episodes sent noisy targets
    for arm, grip in zip(executed, arrays["action_gripper_opening"], strict=True):
        backend.set_joint_targets(arm, float(grip))
        backend.step(1)
    reason = get_family(record.task.family).success(backend, layout)
    final = np.array([backend.object_pose(o.uid)[0] for o in layout.objects])
    error = float(np.max(np.linalg.norm(final - arrays["final_object_poses"][:, :3], axis=1)))
    return ReplayResult(record.key, reason is None, reason, error)


def _catalog_dir(path: str | Path) -> str | None:
    """The folder relative mesh files of the episodes resolve against: that of the catalogs named by the recipe saved
    beside the output (`recipe.resolved.json`), as when they were generated; None when there is none."""
    import json

    from dataengine.sim.assets import load_catalog
    from dataengine.sim.generate import RECIPE_NAME

    recipe_file = Path(path) / RECIPE_NAME
    if not recipe_file.is_file():
        return None
    return load_catalog(json.loads(recipe_file.read_text()).get("catalogs") or None).base_dir


def iter_replays(path: str | Path, backend_name: str = "mujoco", limit: int | None = None) -> Iterator[ReplayResult]:
    from dataengine.shards import iter_samples, list_shards
    from dataengine.sim.backends import get_backend

    backend = get_backend(backend_name, catalog_dir=_catalog_dir(path))
    count = 0
    try:
        for shard in list_shards(path):
            for sample in iter_samples(shard):
                if limit is not None and count >= limit:
                    return
                count += 1
                yield replay_sample(backend, sample)
    finally:
        backend.close()


def replay(path: str | Path, backend_name: str = "mujoco", limit: int | None = None) -> dict:
    """Replay every episode under `path`; returns counts, the agreement rate and the failures."""
    results = list(iter_replays(path, backend_name, limit))
    agreed = [r for r in results if r.success]
    return {
        "episodes": len(results),
        "agreed": len(agreed),
        "agreement": len(agreed) / len(results) if results else 0.0,
        "max_final_pos_error_m": max((r.final_pos_error_m for r in results), default=0.0),
        "disagreements": [{"key": r.key, "reason": r.reason} for r in results if not r.success],
    }
