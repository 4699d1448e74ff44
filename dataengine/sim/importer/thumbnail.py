"""A small PNG of one imported object, rendered alone with MuJoCo offscreen (the simulator's own look: the visual
mesh with its texture, or its colour), on a light grey floor, seen from the front left and above."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from dataengine.errors import require

FOVY_DEG = 30.0
VIEW_DIR = np.array([0.75, -1.0, 0.7]) / np.linalg.norm([0.75, -1.0, 0.7])  # from the object towards the camera


def _camera(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position, x axis, y axis) of a camera that frames the object's bounding sphere."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo)) / 2
    distance = radius / np.sin(np.radians(FOVY_DEG) / 2) * 1.05
    forward = -VIEW_DIR
    x_axis = np.cross(forward, [0.0, 0.0, 1.0])
    x_axis /= np.linalg.norm(x_axis)
    return centre + VIEW_DIR * distance, x_axis, np.cross(x_axis, forward)


def thumbnail_mjcf(visual: Path, texture: Path | None, rgba, vertices: np.ndarray, size_px: int) -> str:
    pos, x_axis, y_axis = _camera(vertices)
    fmt = " ".join
    material = (
        f'<texture name="tex" type="2d" file="{texture}"/><material name="mat" texture="tex"/>' if texture else ""
    )
    look = 'material="mat"' if texture else f'rgba="{fmt(f"{c:.4g}" for c in rgba)}"'
    return f"""<mujoco model="thumbnail">
  <visual><global offwidth="{size_px}" offheight="{size_px}"/><quality shadowsize="1024"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.5 0.5 0.5" specular="0 0 0"/></visual>
  <asset><mesh name="visual" file="{visual}"/>{material}</asset>
  <worldbody>
    <light pos="0.3 -0.3 1.5" dir="-0.2 0.2 -1" diffuse="0.5 0.5 0.5" castshadow="true"/>
    <geom type="plane" size="2 2 0.01" rgba="0.86 0.86 0.86 1"/>
    <geom type="mesh" mesh="visual" {look}/>
    <camera name="view" fovy="{FOVY_DEG}" pos="{fmt(f"{v:.6g}" for v in pos)}"
            xyaxes="{fmt(f"{v:.6g}" for v in (*x_axis, *y_axis))}"/>
  </worldbody>
</mujoco>"""


def render_thumbnail(folder: Path, mesh: dict, rgba, vertices: np.ndarray, size_px: int) -> bytes:
    """PNG bytes of the object whose files (`mesh`: visual file and texture, relative to `folder`) are written."""
    mujoco = require("mujoco", "sim", "Rendering thumbnails")
    from PIL import Image

    texture = folder / mesh["texture"] if mesh.get("texture") else None
    xml = thumbnail_mjcf((folder / mesh["file"]).resolve(), texture and texture.resolve(), rgba, vertices, size_px)
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    renderer = mujoco.Renderer(model, size_px, size_px)
    try:
        renderer.update_scene(data, camera="view")
        pixels = renderer.render()
    finally:
        renderer.close()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    return buf.getvalue()
