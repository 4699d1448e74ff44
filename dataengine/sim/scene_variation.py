"""The scene axes of a recipe's `variation:` drawn into the layout: table height, an image texture on the table,
the number of lights and backdrop walls.

`vary_layout` runs after every other draw of the layout (assets, colours, poses, robot start), and each axis draws
only when the recipe sets it, so turning one on changes nothing else and recipes without them keep their bytes.
World cameras and lights hang at fixed heights above the floor: raising the table raises the robot standing on it
and the objects with it (the task stays the same for the robot), and changes how the cameras see the scene.
"""

from __future__ import annotations

import numpy as np

from dataengine.records.layout import NOMINAL_TABLE_HEIGHT_M, Layout, Light, Pose, Wall
from dataengine.sim.recipe import VariationSpec, WallsSpec

WALL_HALF_THICKNESS_M = 0.01
WALL_HALF_WIDTH_M = 2.5
CAMERA_CLEARANCE_M = 0.15  # a wall stays at least this far behind any world camera on its side


def vary_layout(layout: Layout, variation: VariationSpec, rng: np.random.Generator) -> Layout:
    """The layout with the recipe's scene axes applied (the input is not changed)."""
    layout = layout.model_copy(deep=True)
    if variation.table_height_jitter_m > 0:
        _raise_table(layout, float(rng.uniform(-variation.table_height_jitter_m, variation.table_height_jitter_m)))
    if variation.table_texture_files:
        files = variation.table_texture_files
        layout.table.texture_file = files[int(rng.integers(len(files)))]
    if variation.light_count is not None:
        low, high = variation.light_count
        layout.lights = _lights(layout, int(rng.integers(low, high + 1)), rng)
    if variation.walls is not None and rng.random() < variation.walls.prob:
        layout.walls = _walls(layout, variation.walls, variation.camera_pos_jitter_m, rng)
    return layout


def _raise_table(layout: Layout, dz: float) -> None:
    """The table top, the robot standing on it and the objects on it move up by `dz`; the floor, world cameras and
    lights stay."""
    table = layout.table
    x, y, z = table.top_center_m
    table.top_center_m = (x, y, z + dz)
    table.height_m = NOMINAL_TABLE_HEIGHT_M + dz
    for obj in layout.objects:
        px, py, pz = obj.pose.pos_m
        obj.pose = Pose(pos_m=(px, py, pz + dz), quat_wxyz=obj.pose.quat_wxyz)
    bx, by, bz = layout.robot.base_pos_m
    layout.robot.base_pos_m = (bx, by, bz + dz)


def _lights(layout: Layout, count: int, rng: np.random.Generator) -> list[Light]:
    """The rig's first `count` lights, or all of them and spot lights at random places above the table looking at
    its centre (no shadows: each shadow-casting light costs a render pass)."""
    rig = list(layout.lights)
    if count <= len(rig):
        return rig[:count]
    cx, cy, _ = layout.table.top_center_m
    hx, hy = layout.table.half_size_m
    target = np.array([cx, cy, layout.table.rig_z_m])
    extra = []
    for k in range(count - len(rig)):
        pos = target + np.array([rng.uniform(-hx, hx + 0.4), rng.uniform(-hy - 0.4, hy + 0.4), rng.uniform(1.2, 2.2)])
        direction = (target - pos) / np.linalg.norm(target - pos)
        extra.append(
            Light(
                name=f"extra{k}",
                pos_m=tuple(float(v) for v in pos),
                dir=tuple(float(v) for v in direction),
                diffuse=(0.4, 0.4, 0.4),
                cast_shadow=False,
            )
        )
    return rig + extra


def _walls(layout: Layout, spec: WallsSpec, camera_jitter_m: float, rng: np.random.Generator) -> list[Wall]:
    table = layout.table
    cx, cy, _ = table.top_center_m
    hx, hy = table.half_size_m
    floor, top = table.floor_z_m, table.rig_z_m + spec.height_m
    half_z, center_z = (top - floor) / 2, (top + floor) / 2
    eyes = np.array([c.pos_m for c in layout.cameras if c.mount == "world"] or np.zeros((0, 3))).reshape(-1, 3)
    clearance = CAMERA_CLEARANCE_M + camera_jitter_m + 0.05  # the look's own camera jitter moves them up to ~5 cm
    walls = []
    for side in spec.sides:
        gap = float(rng.uniform(*spec.distance_m))
        rgba = tuple(spec.rgbas[int(rng.integers(len(spec.rgbas)))])
        texture = spec.textures[int(rng.integers(len(spec.textures)))]
        axis, sign = {"back": (0, -1), "front": (0, 1), "left": (1, 1), "right": (1, -1)}[side]
        centre, half = (cx, cy), (hx, hy)
        offset = sign * (half[axis] + gap)
        coord = centre[axis] + offset
        beyond = eyes[:, axis] * sign  # cameras further out on this side than the wall push it back
        if beyond.size:
            coord = sign * max(sign * coord, float(beyond.max()) + clearance)
        mid = coord + sign * WALL_HALF_THICKNESS_M  # the wall's inner face at `coord`
        if axis == 0:
            center, size = (mid, cy, center_z), (WALL_HALF_THICKNESS_M, WALL_HALF_WIDTH_M, half_z)
        else:
            center, size = (cx, mid, center_z), (WALL_HALF_WIDTH_M, WALL_HALF_THICKNESS_M, half_z)
        walls.append(
            Wall(
                name=side,
                center_m=tuple(float(v) for v in center),
                half_size_m=tuple(float(v) for v in size),
                rgba=rgba,
                texture=texture,
            )
        )
    return walls
