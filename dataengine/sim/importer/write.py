"""Write an imported object's files (visual OBJ with UVs, PNG texture, convex collision OBJs) and its entry."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

SIZE_LABELS = ((0.08, "small"), (0.16, "medium"))  # longest side below -> label; else large
COLOR_NAMES = {
    "red": (0.8, 0.15, 0.15), "orange": (0.95, 0.55, 0.15), "yellow": (0.95, 0.85, 0.2), "green": (0.2, 0.6, 0.25),
    "blue": (0.15, 0.3, 0.8), "purple": (0.5, 0.25, 0.65), "pink": (0.95, 0.6, 0.7), "brown": (0.55, 0.35, 0.2),
    "white": (0.93, 0.93, 0.9), "grey": (0.55, 0.55, 0.57), "black": (0.1, 0.1, 0.12),
}  # fmt: skip


def color_name(rgba, texture=None) -> str:
    """What instructions call an object with no colour in its metadata: the named colour most of its texture's
    pixels are nearest to, or the one nearest its material colour."""
    names = list(COLOR_NAMES)
    palette = np.asarray([COLOR_NAMES[n] for n in names])
    if texture is not None:
        pixels = np.asarray(texture.convert("RGB").resize((32, 32)), dtype=np.float64).reshape(-1, 3) / 255.0
    else:
        pixels = np.asarray(rgba[:3], dtype=np.float64).reshape(1, 3)
    nearest = np.argmin(((pixels[:, None, :] - palette[None]) ** 2).sum(axis=2), axis=1)
    return names[int(np.bincount(nearest, minlength=len(names)).argmax())]


def size_label(longest_m: float) -> str:
    return next((label for limit, label in SIZE_LABELS if longest_m < limit), "large")


def obj_text(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray | None = None) -> str:
    """A Wavefront OBJ with one UV per vertex (`f a/a b/b c/c`), numbers fixed to 7 significant digits."""
    lines = [f"v {x:.7g} {y:.7g} {z:.7g}" for x, y, z in vertices]
    if uv is not None:
        lines += [f"vt {u:.7g} {v:.7g}" for u, v in uv]
        lines += [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in faces]
    else:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return "\n".join(lines) + "\n"


def compact(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray | None):
    """Drop vertices no face uses."""
    used, inverse = np.unique(faces, return_inverse=True)
    return vertices[used], inverse.reshape(-1, 3), (uv[used] if uv is not None else None)


def png_bytes(image, max_px: int) -> bytes:
    """The texture as PNG (MuJoCo reads PNG), downscaled so its longer side is at most `max_px`."""
    from PIL import Image

    if max(image.size) > max_px:
        ratio = max_px / max(image.size)
        width, height = (max(1, round(side * ratio)) for side in image.size)
        image = image.resize((width, height), Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def write_files(folder: Path, vertices, faces, uv, texture_png: bytes | None, pieces) -> dict:
    """Write into `folder`; returns the mesh spec with paths relative to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    vertices, faces, uv = compact(vertices, faces, uv)
    (folder / "visual.obj").write_text(obj_text(vertices, faces, uv if texture_png else None), encoding="utf-8")
    spec: dict = {"file": "visual.obj"}
    if texture_png:
        (folder / "texture.png").write_bytes(texture_png)
        spec["texture"] = "texture.png"
    spec["collision"] = []
    for k, (pv, pf) in enumerate(pieces):
        name = f"collision_{k:02d}.obj"
        (folder / name).write_text(obj_text(pv, pf), encoding="utf-8")
        spec["collision"].append(name)
    return spec
