"""Render a validated trajectory by kinematic replay, with visual randomization drawn at render time.

For each recorded control step the stored physics state is restored (no stepping) and every camera renders RGB
(JPEG-encoded at once), plus the segmentation the labels need and optional depth. The look (table colour and
texture, floor, lights, camera jitter) is drawn from its own seeded generator; a look whose first frames are too
dark (mean intensity below the recipe's threshold, as GenManip rejects below 80) is re-drawn.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from dataengine.geometry import quat_multiply_wxyz
from dataengine.records.layout import Camera, Layout, Light, Look
from dataengine.sim.backends.base import SimBackend
from dataengine.sim.recipe import SimRecipe, VariationSpec
from dataengine.sim.rig import rig_cameras, rig_lights
from dataengine.sim.rollout import Trajectory


@dataclass
class RenderedEpisode:
    """Per camera: JPEG bytes per frame, segmentation per frame (object index, -1 = other), optional depth, and
    the camera's intrinsics (3, 3) and per-frame OpenCV camera->world transforms (T, 4, 4)."""

    look: Look
    redraws: int
    jpeg: dict[str, list[bytes]] = field(default_factory=dict)
    segmentation: dict[str, np.ndarray] = field(default_factory=dict)  # (T, H, W) int16
    depth_m: dict[str, np.ndarray] = field(default_factory=dict)  # (T, H, W) float32
    intrinsics_k: dict[str, np.ndarray] = field(default_factory=dict)
    T_cam_to_world_cv: dict[str, np.ndarray] = field(default_factory=dict)
    mean_intensity: float = 0.0
    cpu_s: float = 0.0


def draw_look(recipe: SimRecipe, layout: Layout, rng: np.random.Generator) -> Look:
    """Random colours, lights and camera jitter around the layout's nominal rig."""
    spec = recipe.task.randomization
    rig_z = layout.table.rig_z_m
    present = {light.name: light for light in layout.lights}
    lights = []
    for rig_light in rig_lights(recipe.camera_rig, rig_z):  # every rig light draws, present or not: the draws
        level = float(rng.uniform(*spec.light_diffuse))  # stay the same whatever `variation.light_count` keeps
        offset = rng.uniform(-spec.light_pos_jitter_m, spec.light_pos_jitter_m, size=3) * [1, 1, 0.25]
        light = present.get(rig_light.name)
        if light is None:
            continue
        lights.append(
            Light(
                name=light.name,
                pos_m=tuple(float(v) for v in np.asarray(light.pos_m) + offset),
                dir=light.dir,
                diffuse=(level, level, level),
                specular=light.specular,
                directional=light.directional,
                cast_shadow=light.cast_shadow,
            )
        )

    def jitter(_name: str):
        return (
            rng.uniform(-spec.camera_pos_jitter_m, spec.camera_pos_jitter_m, size=3),
            rng.uniform(-spec.camera_lookat_jitter_m, spec.camera_lookat_jitter_m, size=3),
        )

    cams = rig_cameras(
        recipe.camera_rig,
        [c.name for c in layout.cameras],
        recipe.render.width,
        recipe.render.height,
        rig_z,
        jitter=jitter,
    )
    look = Look(
        table_rgba=tuple(spec.table_rgbas[int(rng.integers(len(spec.table_rgbas)))]),
        table_texture=spec.table_textures[int(rng.integers(len(spec.table_textures)))],
        floor_rgba=tuple(spec.floor_rgbas[int(rng.integers(len(spec.floor_rgbas)))]),
        lights=lights,
        cameras=cams,
    )
    if recipe.variation is not None:
        look = vary_look(look, recipe.variation, rng)
    extra = [light for light in layout.lights if light.name not in {x.name for x in look.lights}]
    if extra:  # lights beyond the rig's (`variation.light_count`): a level each, then the colour jitter
        jitter = recipe.variation.light_color_jitter if recipe.variation is not None else 0.0
        look.lights = look.lights + [_extra_light(light, spec.light_diffuse, jitter, rng) for light in extra]
    if layout.table.texture_file:  # an image on the table: shown as it is
        look.table_rgba, look.table_texture = (1.0, 1.0, 1.0, 1.0), "none"
    return look


def _extra_light(light: Light, levels: tuple[float, float], color_jitter: float, rng) -> Light:
    level = float(rng.uniform(*levels))
    factors = rng.uniform(1 - color_jitter, 1 + color_jitter, size=3)
    return light.model_copy(update={"diffuse": tuple(float(min(1.0, level * f)) for f in factors)})


def _tilted(direction, max_angle: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """`direction` turned by up to `max_angle` about a random axis perpendicular to it."""
    d = np.asarray(direction, dtype=float)
    d = d / np.linalg.norm(d)
    axis = np.cross(d, rng.normal(size=3))
    axis = axis / (np.linalg.norm(axis) or 1.0)
    angle = float(rng.uniform(0, max_angle))
    turned = d * np.cos(angle) + np.cross(axis, d) * np.sin(angle)  # Rodrigues, axis perpendicular to d
    return tuple(float(v) for v in turned)


def vary_look(look: Look, variation: VariationSpec, rng: np.random.Generator) -> Look:
    """The recipe's extra axes on a drawn look: light colours and directions, world cameras' fields of view."""
    lights = []
    for light in look.lights:
        factors = rng.uniform(1 - variation.light_color_jitter, 1 + variation.light_color_jitter, size=3)
        diffuse = tuple(float(min(1.0, c * f)) for c, f in zip(light.diffuse, factors, strict=True))
        direction = _tilted(light.dir, variation.light_dir_jitter_rad, rng)
        lights.append(light.model_copy(update={"diffuse": diffuse, "dir": direction}))
    cams = []
    for cam in look.cameras:
        jitter = float(rng.uniform(-variation.camera_fovy_jitter_deg, variation.camera_fovy_jitter_deg))
        cams.append(cam.model_copy(update={"fovy_deg": cam.fovy_deg + jitter}) if cam.mount == "world" else cam)
    if variation.camera_pos_jitter_m > 0 or variation.camera_rot_jitter_deg > 0:  # drawn only when asked
        cams = [_moved(cam, variation, rng) if cam.mount == "world" else cam for cam in cams]
    return look.model_copy(update={"lights": lights, "cameras": cams})


def _moved(cam: Camera, variation: VariationSpec, rng: np.random.Generator) -> Camera:
    """A world camera shifted by up to `camera_pos_jitter_m` per axis and turned by up to `camera_rot_jitter_deg`
    about a random axis of its own frame."""
    pos = np.asarray(cam.pos_m) + rng.uniform(-variation.camera_pos_jitter_m, variation.camera_pos_jitter_m, size=3)
    axis = rng.normal(size=3)
    axis = axis / (np.linalg.norm(axis) or 1.0)
    angle = np.deg2rad(float(rng.uniform(0, variation.camera_rot_jitter_deg)))
    turn = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
    quat = quat_multiply_wxyz(cam.quat_wxyz, turn)
    quat = quat / np.linalg.norm(quat)
    return cam.model_copy(update={"pos_m": tuple(float(v) for v in pos), "quat_wxyz": tuple(float(v) for v in quat)})


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """Deterministic JPEG (same pixels and quality -> same bytes on one machine)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, optimize=False, subsampling=2)
    return buf.getvalue()


def _choose_look(
    backend: SimBackend, recipe: SimRecipe, layout: Layout, traj: Trajectory, seed
) -> tuple[Look, int, float]:
    rng = np.random.default_rng(seed)
    look, mean = None, 0.0
    for redraw in range(recipe.render.max_redraws + 1):
        look = draw_look(recipe, layout, rng)
        backend.apply_look(look)
        backend.set_state(traj.state(0))
        mean = float(
            np.mean([backend.render(c.name).rgb.mean() for c in layout.cameras if c.mount == "world"] or [255])
        )
        if mean >= recipe.render.min_mean_intensity:
            return look, redraw, mean
    return look, recipe.render.max_redraws, mean


def render_episode(
    backend: SimBackend, recipe: SimRecipe, layout: Layout, traj: Trajectory, look_seed
) -> RenderedEpisode:
    """Render every recorded step from every camera (the backend must hold this layout's scene)."""
    cpu0 = time.process_time()
    spec = recipe.render
    look, redraws, mean = _choose_look(backend, recipe, layout, traj, look_seed)
    out = RenderedEpisode(look=look, redraws=redraws, mean_intensity=mean)
    names = [c.name for c in layout.cameras]
    segs: dict[str, list[np.ndarray]] = {n: [] for n in names}
    depths: dict[str, list[np.ndarray]] = {n: [] for n in names}
    poses: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for name in names:
        out.jpeg[name] = []
    for t in range(traj.steps):
        backend.set_state(traj.state(t))
        for name in names:
            frame = backend.render(name, rgb=True, depth=spec.depth, segmentation=True)
            out.jpeg[name].append(encode_jpeg(frame.rgb, spec.jpeg_quality))
            segs[name].append(frame.segmentation)
            if spec.depth:
                depths[name].append(frame.depth_m)
            params = backend.camera_params(name)
            poses[name].append(params.T_cam_to_world_cv)
            out.intrinsics_k[name] = params.intrinsics_k
    for name in names:
        out.segmentation[name] = np.stack(segs[name])
        out.T_cam_to_world_cv[name] = np.stack(poses[name])
        if spec.depth:
            out.depth_m[name] = np.stack(depths[name])
    out.cpu_s = time.process_time() - cpu0
    return out
