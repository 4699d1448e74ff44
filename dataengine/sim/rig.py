"""Camera rigs (`sim_scenes/cameras/<name>.yaml`): cameras and lights, turned into layout `Camera`s and `Light`s."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dataengine.errors import RecipeError
from dataengine.geometry import look_at_quat_gl
from dataengine.recipe_loader import read_yaml_mapping
from dataengine.records.layout import Camera, Light
from dataengine.sim.assets import SIM_SCENES_DIR


@lru_cache(maxsize=8)
def load_rig(name_or_path: str) -> dict:
    path = Path(name_or_path)
    if not path.is_file():
        path = SIM_SCENES_DIR / "cameras" / f"{name_or_path}.yaml"
    if not path.is_file():
        raise RecipeError(f"camera rig {name_or_path!r} not found (looked for {path})")
    data = read_yaml_mapping(path, "camera rig")
    if not data.get("cameras"):
        raise RecipeError(f"camera rig {path} lists no cameras")
    return data


def rig_cameras(
    rig: str, names: list[str], width: int, height: int, table_top_z_m: float = 0.0, jitter=None
) -> list[Camera]:
    """Cameras of a rig in the order of `names`. World camera heights are relative to the table top.
    `jitter(name) -> (eye_offset (3,), lookat_offset (3,))` perturbs world cameras (render-time randomization)."""
    by_name = {c["name"]: c for c in load_rig(rig)["cameras"]}
    cameras = []
    for name in names:
        spec = by_name[name]
        if spec.get("mount", "world") == "world":
            eye = np.asarray(spec["eye_m"], dtype=float) + np.array([0, 0, table_top_z_m])
            lookat = np.asarray(spec["lookat_m"], dtype=float) + np.array([0, 0, table_top_z_m])
            if jitter is not None:
                d_eye, d_lookat = jitter(name)
                eye, lookat = eye + d_eye, lookat + d_lookat
            pos, quat = tuple(float(v) for v in eye), tuple(float(v) for v in look_at_quat_gl(eye, lookat))
        else:
            pos, quat = tuple(spec["pos_m"]), tuple(spec["quat_wxyz"])
        cameras.append(
            Camera(
                name=name,
                mount=spec.get("mount", "world"),
                pos_m=pos,
                quat_wxyz=quat,
                fovy_deg=float(spec["fovy_deg"]),
                width=width,
                height=height,
            )
        )
    return cameras


def rig_lights(rig: str, table_top_z_m: float = 0.0) -> list[Light]:
    lights = []
    for spec in load_rig(rig).get("lights", []):
        spec = dict(spec)
        spec["pos_m"] = tuple(np.asarray(spec["pos_m"], dtype=float) + np.array([0, 0, table_top_z_m]))
        lights.append(Light.model_validate(spec))
    if not lights:
        raise RecipeError(f"camera rig {rig!r} lists no lights")
    return lights
