"""`dataengine sim preview RECIPE --out sheet.png`: a contact sheet of the scenes a recipe samples, to see its
randomization before generating anything.

Scene i is the first layout episode i of `sim generate` would try (attempt rngs `[seed, i, a]`, layouts the sampler
rejects skipped) under the look that episode would get (`look_seed(seed, i)`, re-drawn when too dark as in
generation), rendered from one camera at the robot's start. No physics runs: the expert might still reject a scene
(generation then tries the next attempt), so the sheet shows what the recipe draws, not the episodes it will keep.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dataengine.errors import InputError
from dataengine.runtime.atomic import atomic_output

FORMATS = (".png", ".jpg", ".jpeg")


def sample_scenes(recipe, n: int, camera: str | None = None) -> tuple[str, list[np.ndarray], list[str]]:
    """(camera, one RGB frame per scene, a caption per scene) for scenes 0 .. n-1 of the recipe."""
    from dataengine.sim.assets import load_catalog
    from dataengine.sim.backends import get_backend
    from dataengine.sim.render import draw_look
    from dataengine.sim.search import EpisodeNotFound, first_sampled_layout, look_seed

    if camera is None:
        camera = next((c for c in recipe.render.cameras if c != "wrist"), recipe.render.cameras[0])
    if camera not in recipe.render.cameras:
        raise InputError(f"camera {camera!r} is not rendered by the recipe; it renders {recipe.render.cameras}")
    catalog = load_catalog(recipe.catalogs or None)
    backend = get_backend(recipe.backend)
    backend.catalog_dir = catalog.base_dir
    frames, captions = [], []
    try:
        for index in range(n):
            try:
                layout = first_sampled_layout(recipe, catalog, index)[0]
            except EpisodeNotFound as exc:
                tries = recipe.max_attempts_per_episode
                raise InputError(f"scene {index}: the sampler found no layout in {tries} tries") from exc
            backend.load(layout, control_hz=recipe.control_hz, quality=recipe.render.quality)
            rng = np.random.default_rng(look_seed(recipe.seed, index))
            for _ in range(recipe.render.max_redraws + 1):  # the look generation would keep
                backend.apply_look(draw_look(recipe, layout, rng))
                world = [c.name for c in layout.cameras if c.mount == "world"]
                if np.mean([backend.render(c).rgb.mean() for c in world] or [255]) >= recipe.render.min_mean_intensity:
                    break
            frames.append(backend.render(camera).rgb)
            captions.append(f"{index}: {layout.pick.color} {layout.pick.name}")
    finally:
        backend.close()
    return camera, frames, captions


def write_sheet(frames: list[np.ndarray], captions: list[str], out: Path, cols: int | None = None) -> tuple[int, int]:
    """Tiles in rows of `cols` (default: a square-ish grid), each captioned in its top-left corner; no gaps, so the
    sheet is exactly cols x tile width by rows x tile height. Returns (width, height)."""
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"--out {out}: a scene sheet is an image ({', '.join(FORMATS)})")
    cols = cols or max(1, math.ceil(math.sqrt(len(frames))))
    rows = math.ceil(len(frames) / cols)
    h, w = frames[0].shape[:2]
    sheet = Image.new("RGB", (cols * w, rows * h), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for i, (frame, caption) in enumerate(zip(frames, captions, strict=True)):
        x, y = (i % cols) * w, (i // cols) * h
        sheet.paste(Image.fromarray(frame), (x, y))
        if w >= 96:  # captions only where they leave the scene visible
            left, top, right, bottom = draw.textbbox((x + 3, y + 2), caption)
            draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=(0, 0, 0))
            draw.text((x + 3, y + 2), caption, fill=(255, 255, 255))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        sheet.save(tmp, format="PNG" if out.suffix.lower() == ".png" else "JPEG")
    return sheet.size


def preview_recipe(recipe, out: Path, n: int = 16, camera: str | None = None, cols: int | None = None) -> dict:
    """Sample, render and write the sheet; returns what was written."""
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"--out {out}: a scene sheet is an image ({', '.join(FORMATS)})")
    camera, frames, captions = sample_scenes(recipe, n, camera)
    size = write_sheet(frames, captions, out, cols)
    return {"scenes": len(frames), "camera": camera, "size": size, "out": str(out)}
