"""Layout sampling with rejection: assets from the split's pools, poses in the task's regions, robot start jitter.

Rejections raise `AttemptFailed` with a snake_case reason (a stat key): `layout_no_space` when no non-overlapping
placement was found, `goal_already_satisfied` when the pick object would start inside the container.
"""

from __future__ import annotations

import math

import numpy as np

from dataengine.geometry import yaw_to_quat_wxyz
from dataengine.records.layout import Layout, Pose, RobotStart, SceneObject, Table
from dataengine.sim.assets import AssetSpec, Catalog, make_container, make_object, scaled_asset
from dataengine.sim.recipe import SimRecipe
from dataengine.sim.rig import rig_cameras, rig_lights

SPAWN_LIFT_M = 0.001  # objects start 1 mm above the table so nothing starts in penetration


class AttemptFailed(Exception):
    """An attempt at an episode failed; `reason` is a snake_case stat key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def footprint_radius_m(obj: SceneObject) -> float:
    return math.hypot(obj.half_extents_m[0], obj.half_extents_m[1])


def _choose(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def choose_assets(
    recipe: SimRecipe, catalog: Catalog, rng: np.random.Generator
) -> tuple[AssetSpec, AssetSpec, list[AssetSpec]]:
    """(pick, container, distractors). Distractors never share both name and colour with the pick object."""
    objects = catalog.graspable_pool(recipe.split)
    containers = catalog.pool("container", recipe.split)
    if not objects or not containers:
        from dataengine.errors import RecipeError

        raise RecipeError(
            f"split {recipe.split!r} has {len(objects)} graspable objects and {len(containers)} containers"
        )
    pick = _choose(rng, objects)
    container = _choose(rng, containers)
    low, high = recipe.task.layout.distractors
    count = int(rng.integers(low, high + 1))
    candidates = [a for a in objects if a.id != pick.id and (a.name, a.color) != (pick.name, pick.color)]
    order = rng.permutation(len(candidates))
    distractors = [candidates[i] for i in order[:count]]
    return pick, container, distractors


def _paint(recipe: SimRecipe, asset: AssetSpec, rng: np.random.Generator) -> tuple[str, tuple]:
    """(colour name, RGBA): the catalog's, or for `recolor` assets sometimes one from the task's palette."""
    spec = recipe.task.randomization
    if not asset.recolor or not spec.object_palette or rng.random() >= spec.object_recolor_prob:
        return asset.color, tuple(asset.rgba)
    names = sorted(spec.object_palette)
    name = names[int(rng.integers(len(names)))]
    return name, tuple(spec.object_palette[name])


def _place(rng, obj: SceneObject, region_x, region_y, yaw_range, placed: list[SceneObject], min_sep: float, z: float):
    """Try one random placement; None when it overlaps an already placed object."""
    x = float(rng.uniform(*region_x))
    y = float(rng.uniform(*region_y))
    yaw = float(rng.uniform(*yaw_range))
    r = footprint_radius_m(obj)
    for other in placed:
        ox, oy, _ = other.pose.pos_m
        if math.hypot(x - ox, y - oy) < r + footprint_radius_m(other) + min_sep:
            return None
    return Pose(pos_m=(x, y, z + SPAWN_LIFT_M), quat_wxyz=tuple(float(v) for v in yaw_to_quat_wxyz(yaw)))


def sample_layout(recipe: SimRecipe, catalog: Catalog, rng: np.random.Generator) -> Layout:
    """One random layout for the recipe's task. Raises AttemptFailed when the sampled assets do not fit."""
    task = recipe.task
    spec = task.layout
    top = task.table.top_z_m
    pick_asset, container_asset, distractor_assets = choose_assets(recipe, catalog, rng)
    scales: dict[str, float] = {}
    variation = recipe.variation
    if variation is not None and variation.scales_objects():  # drawn only when asked: other draws stay
        scales = {
            a.id: float(rng.uniform(*variation.scale_range(a.category))) for a in [pick_asset, *distractor_assets]
        }
        pick_asset = scaled_asset(pick_asset, scales[pick_asset.id])
        distractor_assets = [scaled_asset(a, scales[a.id]) for a in distractor_assets]
    origin = Pose(pos_m=(0.0, 0.0, top))
    container = make_container(container_asset, "container", origin)
    pick_color, pick_rgba = _paint(recipe, pick_asset, rng)
    pick = make_object(pick_asset, "obj_0", "pick", origin, catalog.base_dir, pick_rgba, pick_color)
    distractors = []
    for asset in distractor_assets:
        color, rgba = _paint(recipe, asset, rng)
        if (asset.name, color) == (pick.name, pick.color):  # keep instructions unambiguous
            color, rgba = asset.color, asset.rgba
            if (asset.name, color) == (pick.name, pick.color):
                continue
        uid = f"obj_{len(distractors) + 1}"
        distractors.append(make_object(asset, uid, "distractor", origin, catalog.base_dir, rgba, color))
    for obj in [pick, *distractors]:
        obj.scale = round(scales.get(obj.asset_id, 1.0), 6)
    place_objects(spec, [container, pick, *distractors], top, rng)
    robot = task.robot
    base_xy = rng.uniform(-robot.base_jitter_m, robot.base_jitter_m, size=2) if robot.base_jitter_m else np.zeros(2)
    arm_q = np.asarray(robot.home_arm_qpos_rad) + rng.uniform(
        -robot.start_joint_jitter_rad, robot.start_joint_jitter_rad, size=7
    )
    cx, cy = task.table.center_xy_m
    layout = Layout(
        table=Table(top_center_m=(cx, cy, top), half_size_m=task.table.half_size_m),
        objects=[container, pick, *distractors],
        lights=rig_lights(recipe.camera_rig, top),
        cameras=rig_cameras(recipe.camera_rig, recipe.render.cameras, recipe.render.width, recipe.render.height, top),
        robot=RobotStart(
            base_pos_m=(float(base_xy[0]), float(base_xy[1]), top),
            arm_qpos_rad=tuple(float(v) for v in arm_q),
        ),
    )
    if variation is not None:  # the scene axes, drawn after everything else (see `sim.scene_variation`)
        from dataengine.sim.scene_variation import vary_layout

        layout = vary_layout(layout, variation, rng)
    return layout


def place_objects(spec, objects: list[SceneObject], top_z_m: float, rng: np.random.Generator) -> None:
    """Draw every object's pose in place, in order (the container, the pick object, the distractors): its task
    region, a random yaw, no overlap with those placed before. Raises AttemptFailed("layout_no_space") or
    ("goal_already_satisfied": the pick object starts inside the container)."""
    placed: list[SceneObject] = []
    for obj in objects:
        is_container = obj.kind == "container"
        region_x = spec.container_region_x_m if is_container else spec.object_region_x_m
        region_y = spec.container_region_y_m if is_container else spec.object_region_y_m
        pose = None
        for _ in range(spec.max_layout_tries):
            pose = _place(rng, obj, region_x, region_y, spec.yaw_range_rad, placed, spec.min_separation_m, top_z_m)
            if pose is not None:
                break
        if pose is None:
            raise AttemptFailed("layout_no_space", f"no free spot for {obj.asset_id}")
        obj.pose = pose
        placed.append(obj)
    pick = next(o for o in objects if o.role == "pick")
    container = next(o for o in objects if o.role == "place")
    if _inside_footprint(pick, container):
        raise AttemptFailed("goal_already_satisfied")


def _inside_footprint(obj: SceneObject, container: SceneObject) -> bool:
    dx = obj.pose.pos_m[0] - container.pose.pos_m[0]
    dy = obj.pose.pos_m[1] - container.pose.pos_m[1]
    return math.hypot(dx, dy) < footprint_radius_m(container)
