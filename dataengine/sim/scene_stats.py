"""What the scenes of a generated set drew: per-axis value counts per chunk, merged into histograms in
`sim_stats.json` (`scene`), with the objects and categories used.

A chunk counts each episode's values rounded to a fixed step per axis (`STEPS`), so chunk results stay small and add
up exactly whatever the order the chunks finish in; the summary bins the merged counts into equal-width histograms.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from dataengine.geometry import quat_angle_between_rad
from dataengine.records.layout import Layout, Look
from dataengine.sim.recipe import SimRecipe
from dataengine.sim.rig import rig_cameras

STEPS = {  # numeric axes and the step their values are counted at
    "table_height_m": 0.001,
    "distractors": 1,
    "light_count": 1,
    "walls": 1,
    "object_scale": 0.01,
    "light_level": 0.01,
    "camera_fovy_deg": 0.1,
    "camera_shift_m": 0.001,
    "camera_turn_deg": 0.1,
}
CATEGORICAL = ("object", "category", "container", "table_texture", "table_rgba", "floor_rgba", "wall_texture")
HISTOGRAM_BINS = 10


def _key(value: float, step: float) -> str:
    return f"{round(value / step) * step:.6g}"


def episode_counts(layout: Layout, look: Look | None, recipe: SimRecipe) -> dict[str, Counter]:
    """One episode's values per axis (look axes only when it was rendered)."""
    counts: dict[str, Counter] = {}

    def add(axis: str, value) -> None:
        key = _key(float(value), STEPS[axis]) if axis in STEPS else str(value)
        counts.setdefault(axis, Counter())[key] += 1

    for obj in layout.objects:
        if obj.kind == "container":
            add("container", obj.asset_id)
            continue
        add("object", obj.asset_id)
        add("category", obj.category)
        add("object_scale", obj.scale)
    add("distractors", len(layout.by_role("distractor")))
    add("table_height_m", layout.table.height_m)
    add("light_count", len(layout.lights))
    add("walls", len(layout.walls))
    for wall in layout.walls:
        add("wall_texture", wall.texture)
    if look is None:
        return counts
    table = layout.table
    add("table_texture", table.texture_file.rsplit("/", 1)[-1] if table.texture_file else look.table_texture)
    add("table_rgba", ",".join(f"{c:.3g}" for c in look.table_rgba))
    add("floor_rgba", ",".join(f"{c:.3g}" for c in look.floor_rgba))
    for light in look.lights:
        add("light_level", float(np.mean(light.diffuse)))
    nominal = {c.name: c for c in rig_cameras(recipe.camera_rig, [c.name for c in look.cameras], 1, 1, table.rig_z_m)}
    for cam in look.cameras:
        if cam.mount != "world":
            continue
        base = nominal[cam.name]
        add("camera_fovy_deg", cam.fovy_deg)
        add("camera_shift_m", float(np.linalg.norm(np.subtract(cam.pos_m, base.pos_m))))
        add("camera_turn_deg", float(np.rad2deg(quat_angle_between_rad(cam.quat_wxyz, base.quat_wxyz))))
    return counts


def merge(into: dict[str, Counter], more: dict[str, dict[str, int]]) -> dict[str, Counter]:
    for axis, values in more.items():
        into.setdefault(axis, Counter()).update(values)
    return into


def as_json(counts: dict[str, Counter]) -> dict[str, dict[str, int]]:
    return {axis: dict(sorted(values.items())) for axis, values in sorted(counts.items())}


def _histogram(values: dict[str, int]) -> dict:
    xs = np.array([float(k) for k in values])
    ns = np.array(list(values.values()))
    low, high = float(xs.min()), float(xs.max())
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1) if high > low else np.array([low, high])
    binned = np.histogram(xs, bins=edges, weights=ns)[0] if high > low else np.array([ns.sum()])
    return {
        "min": round(low, 6),
        "max": round(high, 6),
        "mean": round(float((xs * ns).sum() / ns.sum()), 6),
        "n": int(ns.sum()),
        "edges": [round(float(e), 6) for e in edges],
        "counts": [int(c) for c in binned],
    }


def summary(counts: dict[str, dict[str, int]], episodes: int) -> dict:
    """`sim_stats.json`'s `scene`: objects and categories used, and each axis as a histogram (numeric) or counts."""
    objects, categories = counts.get("object", {}), counts.get("category", {})
    axes = {}
    for axis, values in sorted(counts.items()):
        if axis in STEPS:
            axes[axis] = _histogram(values)
        elif axis not in ("object", "category"):
            axes[axis] = {"counts": dict(sorted(values.items(), key=lambda kv: (-kv[1], kv[0])))}
    return {
        "episodes": episodes,
        "objects_distinct": len(objects),
        "categories_distinct": len(categories),
        "containers_distinct": len(counts.get("container", {})),
        "objects_by_category": dict(sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))),
        "axes": axes,
    }
