"""First-frame perception data: layouts sampled and rendered at t = 0 only (no physics, no expert), each with the
`task` state's per-episode constants it shows (`dataengine.train.observations.task_context`) and the calibration
of the camera that saw it.

"Perceive once, then act" (docs/training.md, rung 2b): the objects do not move before the grasp and the first
front frame of an evaluation episode is rendered exactly as here (load, look, reset, render), so a network trained
on these frames meets no covariate shift. The layouts come from the recipe's own sampler with the seed
`recipe.seed + seed_offset` (default 2e6: disjoint from the generator's seed and from the evaluator's held-out
seed + 1e6); the look is drawn with the generator's look seed, so frames vary like training frames do.

Targets (per layout): the pick object's grasp point and the container's place point projected onto the table
plane (their x, y, as pixel keypoints of the front camera), their heights above the table, the grasp yaw folded as
the expert folds it, the pick object's half extents and grasp height, and the container's rim height.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dataengine.geometry import project_points_cv

SCALAR_NAMES = ("grasp_z", "place_z", "half_x", "half_y", "half_z", "grasp_height", "rim_z")  # z: above the table


@dataclass
class FirstFrame:
    image: np.ndarray  # (H, W, 3) uint8, after the recipe's JPEG round trip
    instruction: str
    intrinsics_k: np.ndarray  # (3, 3) at the image's size
    T_cam_to_world_cv: np.ndarray  # (4, 4)
    table_z_m: float


def constants_to_targets(constants: np.ndarray, table_z_m: float) -> tuple[np.ndarray, np.ndarray, float]:
    """`TaskContext.constants` (12,) -> (grasp and place x, y (2, 2), scalars (7,) in SCALAR_NAMES order, yaw)."""
    c = np.asarray(constants, dtype=np.float64)
    xy = np.stack([c[0:2], c[4:6]])
    scalars = np.array([c[2] - table_z_m, c[6] - table_z_m, c[7], c[8], c[9], c[10], c[11] - table_z_m])
    return xy, scalars, float(c[3])


def targets_to_constants(xy: np.ndarray, scalars: np.ndarray, yaw: float, table_z_m: float) -> np.ndarray:
    """The inverse of `constants_to_targets`."""
    t = torch.as_tensor
    out = constants_from_targets(
        t(np.asarray(xy, dtype=np.float64))[None], t(np.asarray(scalars, dtype=np.float64))[None],
        t([float(yaw)], dtype=torch.float64), t([float(table_z_m)], dtype=torch.float64),
    )  # fmt: skip
    return out[0].numpy()


def constants_from_targets(
    xy: torch.Tensor, scalars: torch.Tensor, yaw: torch.Tensor, table_z_m: torch.Tensor
) -> torch.Tensor:
    """Batched, differentiable `targets_to_constants`: (B, 2, 2), (B, 7), (B,), (B,) -> (B, 12)."""
    s, z = scalars, table_z_m
    return torch.stack(
        [xy[:, 0, 0], xy[:, 0, 1], s[:, 0] + z, yaw, xy[:, 1, 0], xy[:, 1, 1], s[:, 1] + z, s[:, 2], s[:, 3],
         s[:, 4], s[:, 5], s[:, 6] + z],
        dim=1,
    )  # fmt: skip


def project_table_points(xy: np.ndarray, table_z_m: float, K: np.ndarray, T_cam_to_world: np.ndarray) -> np.ndarray:
    """(N, 2) table-plane points (world x, y at the table height) -> (N, 2) pixel coordinates."""
    points = np.column_stack([np.asarray(xy, dtype=np.float64), np.full(len(xy), table_z_m)])
    pixels, _depth = project_points_cv(points, K, np.linalg.inv(T_cam_to_world))
    return pixels


def back_project_to_table(
    pixels: np.ndarray, table_z_m: float, K: np.ndarray, T_cam_to_world: np.ndarray
) -> np.ndarray:
    """(N, 2) pixel coordinates -> (N, 2) world x, y where their camera rays meet the table plane z = table_z_m:
    what a robot with a calibrated camera and a known table height recovers from a 2-D point."""
    t = torch.as_tensor
    px = t(np.asarray(pixels, dtype=np.float64).reshape(1, -1, 2))
    xy = table_points_from_pixels(
        px, t([float(table_z_m)], dtype=torch.float64), t(np.asarray(K, dtype=np.float64))[None],
        t(np.asarray(T_cam_to_world, dtype=np.float64))[None],
    )  # fmt: skip
    return xy[0].numpy()


def table_points_from_pixels(
    pixels: torch.Tensor, table_z_m: torch.Tensor, K: torch.Tensor, T_cam_to_world: torch.Tensor
) -> torch.Tensor:
    """Batched, differentiable `back_project_to_table`: pixels (B, N, 2), table heights (B,), K (B, 3, 3), camera
    poses (B, 4, 4) -> (B, N, 2) table-plane points."""
    hom = torch.cat([pixels, torch.ones_like(pixels[..., :1])], dim=-1)  # (B, N, 3)
    rays_cam = torch.linalg.solve(K, hom.transpose(-1, -2))  # OpenCV: z forward; (B, 3, N)
    rays = (T_cam_to_world[:, :3, :3] @ rays_cam).transpose(-1, -2)  # (B, N, 3), world
    origin = T_cam_to_world[:, :3, 3]  # (B, 3)
    t = (table_z_m[:, None] - origin[:, None, 2]) / rays[..., 2]  # (B, N)
    return origin[:, None, :2] + t[..., None] * rays[..., :2]


def scaled_intrinsics(K: np.ndarray, from_size: tuple[int, int], to_size: int) -> np.ndarray:
    """K of a (width, height) image resized to to_size x to_size (pixel centres kept: OpenCV convention)."""
    sx, sy = to_size / from_size[0], to_size / from_size[1]
    K2 = np.array(K, dtype=np.float64)
    K2[0, 0] *= sx
    K2[0, 2] = (K2[0, 2] + 0.5) * sx - 0.5
    K2[1, 1] *= sy
    K2[1, 2] = (K2[1, 2] + 0.5) * sy - 0.5
    return K2


def observe_first_frame(
    backend, camera: str, jpeg_quality: int, table_z_m: float, instruction: str, image_size: int
) -> FirstFrame:
    """The backend's current frame of `camera` as training and evaluation see it (JPEG round trip at the recipe's
    quality, bilinear resize to image_size x image_size) with its calibration (intrinsics scaled to that size)."""
    from dataengine.sim.render import encode_jpeg

    rgb = backend.render(camera).rgb
    image = Image.open(io.BytesIO(encode_jpeg(rgb, jpeg_quality))).convert("RGB")
    params = backend.camera_params(camera)
    K = params.intrinsics_k
    if image.size != (image_size, image_size):
        K = scaled_intrinsics(K, image.size, image_size)
        image = image.resize((image_size, image_size), Image.BILINEAR)
    return FirstFrame(np.asarray(image), instruction, K, params.T_cam_to_world_cv, table_z_m)


def layout_constants(layout, recipe) -> np.ndarray:
    """The `task` state's constants of a layout, computed as the expert plans them (no IK, no physics)."""
    from dataengine.sim.expert import place_point
    from dataengine.train.observations import task_context

    pick = layout.pick
    grasp = np.asarray(pick.pose.pos_m) + np.array([0.0, 0.0, pick.grasp_height_m or 0.0])
    place = place_point(layout.place, pick, recipe.task.expert.place_clearance_m)
    return task_context(layout, grasp, place).constants


def rearranged(layout, recipe, rng: np.random.Generator):
    """The same objects (the loaded scene) with a new pick object among them and new poses, drawn by the sampler's
    own placement; None when the draw fails or the new pick object would not be named unambiguously."""
    from dataengine.sim.sampler import AttemptFailed, place_objects

    objects = [o.model_copy(deep=True) for o in layout.objects]
    movable = [o for o in objects if o.role != "place"]
    pick = movable[int(rng.integers(len(movable)))]
    if any((o.name, o.color) == (pick.name, pick.color) for o in movable if o is not pick):
        return None
    for o in movable:
        o.role = "pick" if o is pick else "distractor"
    container = next(o for o in objects if o.role == "place")
    try:
        place_objects(recipe.task.layout, [container, pick, *[o for o in movable if o is not pick]],
                      float(layout.table.top_center_m[2]), rng)  # fmt: skip
    except AttemptFailed:
        return None
    return layout.model_copy(update={"objects": objects})


def render_first_frames(
    sim_recipe_path: str | Path,
    count: int,
    *,
    camera: str = "front",
    image_size: int = 128,
    seed_offset: int = 2_000_000,
    per_scene: int = 8,
    start: int = 0,
) -> dict[str, np.ndarray]:
    """`count` sampled layouts rendered at t = 0 with their targets, as arrays (see `save_first_frames`). Loading a
    scene (and its renderer) costs far more than a frame, so each loaded scene is shown `per_scene` times: the
    sampled layout, then its objects re-placed by the sampler with a new pick object and a new look."""
    from dataengine.sim.assets import load_catalog
    from dataengine.sim.backends import get_backend
    from dataengine.sim.families import get_family
    from dataengine.sim.recipe import load_recipe
    from dataengine.sim.render import draw_look
    from dataengine.sim.search import EpisodeNotFound, first_sampled_layout, look_seed

    sim = load_recipe(sim_recipe_path)
    sim = sim.model_copy(update={"seed": sim.seed + seed_offset, "perturb": None})
    family = get_family(sim.task.family)
    catalog = load_catalog(sim.catalogs or None)
    backend = get_backend(sim.backend, catalog_dir=catalog.base_dir)
    rows: dict[str, list] = {k: [] for k in ("image", "instruction", "K", "T_cam_to_world", "table_z", "constants")}
    try:
        index = start
        while len(rows["image"]) < count:
            try:
                layout = first_sampled_layout(sim, catalog, index)[0]
            except EpisodeNotFound:
                index += 1
                continue
            backend.load(layout, control_hz=sim.control_hz, quality=sim.render.quality)
            table_z = float(layout.table.top_center_m[2])
            for k in range(per_scene):
                rng = np.random.default_rng([*look_seed(sim.seed, index), k])
                shown = layout if k == 0 else rearranged(layout, sim, rng)
                if shown is None or len(rows["image"]) >= count:
                    continue
                backend.apply_look(
                    draw_look(sim, shown, rng if k else np.random.default_rng(look_seed(sim.seed, index)))
                )
                backend.reset()
                backend.set_object_poses(
                    {o.uid: (np.asarray(o.pose.pos_m), np.asarray(o.pose.quat_wxyz)) for o in shown.objects}
                )
                instruction = family.instruction(shown, family.relation(shown, sim))
                frame = observe_first_frame(backend, camera, sim.render.jpeg_quality, table_z, instruction, image_size)
                rows["image"].append(frame.image)
                rows["instruction"].append(instruction)
                rows["K"].append(frame.intrinsics_k)
                rows["T_cam_to_world"].append(frame.T_cam_to_world_cv)
                rows["table_z"].append(table_z)
                rows["constants"].append(layout_constants(shown, sim))
            index += 1
    finally:
        backend.close()
    out = {k: np.asarray(v) for k, v in rows.items() if k != "instruction"}
    out["instruction"] = np.asarray(rows["instruction"], dtype=str)
    return out


def save_first_frames(arrays: dict[str, np.ndarray], path: str | Path) -> None:
    from dataengine.runtime.atomic import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())


def folded_yaw_error_rad(a: float, b: float) -> float:
    """Distance between two grasp yaws modulo pi (a parallel gripper's closing axis has no sign)."""
    d = (a - b + math.pi / 2) % math.pi - math.pi / 2
    return abs(d)
