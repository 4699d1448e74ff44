"""`dataengine sim preview`: one episode as a GIF or MP4, cameras side by side, optionally with its labels drawn.

Labels (`--labels`), in pixels of each stored frame: the pick object's tight box (green) and the container's (blue)
where the object is visible, the grasp point (red dot), the place point (yellow ring) and the future tool trace
(orange polyline, fading). A caption strip on top shows the step, the phase and the instruction. Frames are decoded
from the stored JPEGs; nothing is re-simulated or re-rendered, so a preview takes about a second per 100 steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dataengine.errors import InputError
from dataengine.runtime.atomic import atomic_output
from dataengine.shards.episode import EpisodeData, load_episode

PICK_RGB = (40, 220, 60)
CONTAINER_RGB = (60, 140, 255)
GRASP_RGB = (255, 40, 40)
PLACE_RGB = (255, 220, 0)
TRACE_RGB = (255, 140, 0)
CAPTION_PX = 14
FORMATS = (".gif", ".mp4")


def _phase_at(ep: EpisodeData, t: int) -> str:
    return next((p.name for p in ep.record.phases if p.start <= t < p.end), "")


def draw_labels(image, ep: EpisodeData, camera: str, t: int) -> None:
    """Draw the labels of step t of one camera onto a PIL image (in place)."""
    from PIL import ImageDraw

    a, c = ep.arrays, ep.camera_index(camera)
    draw = ImageDraw.Draw(image)
    if "pick_box_xyxy" not in a:
        return
    for prefix, color in (("container", CONTAINER_RGB), ("pick", PICK_RGB)):
        box = a[f"{prefix}_box_xyxy"][t, c]
        if bool(a[f"{prefix}_visible"][t, c]) and np.all(np.isfinite(box)):
            draw.rectangle([float(v) for v in box], outline=color, width=1)
    trace = a["trace_2d"][t, c]
    finite = trace[np.all(np.isfinite(trace), axis=1)]
    for i in range(len(finite) - 1):
        fade = 1.0 - 0.6 * i / max(1, len(finite) - 1)
        color = tuple(int(v * fade) for v in TRACE_RGB)
        draw.line([tuple(finite[i]), tuple(finite[i + 1])], fill=color, width=1)
    grasp, place = a["grasp_point_2d"][t, c], a["place_point_2d"][t, c]
    if np.all(np.isfinite(grasp)):
        x, y = grasp
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=GRASP_RGB)
    if np.all(np.isfinite(place)):
        x, y = place
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=PLACE_RGB, width=1)


def compose_frame(ep: EpisodeData, t: int, cameras: list[str], labels: bool) -> np.ndarray:
    """Step t: the cameras side by side under a caption strip, (H, W, 3) uint8 with even H and W."""
    from PIL import Image, ImageDraw

    tiles = []
    for cam in cameras:
        tile = Image.fromarray(ep.rgb(cam, t))
        if labels:
            draw_labels(tile, ep, cam, t)
        tiles.append(tile)
    width = sum(tile.width for tile in tiles)
    height = max(tile.height for tile in tiles) + CAPTION_PX
    width, height = width + width % 2, height + height % 2
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, CAPTION_PX))
        x += tile.width
    caption = f"{t:3d} {_phase_at(ep, t):9s} {ep.record.instructions.base}"
    ImageDraw.Draw(canvas).text((2, 1), caption, fill=(230, 230, 230))
    return np.asarray(canvas)


def preview_episode(
    episodes_dir: str | Path,
    key: str | None,
    out: str | Path,
    *,
    labels: bool = False,
    cameras: list[str] | None = None,
    stride: int = 1,
    fps: float | None = None,
) -> dict:
    """Write the preview of episode `key` (the first episode when None) to `out` (.gif or .mp4)."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"--out must end in .gif or .mp4, got {out.name!r}")
    if stride < 1:
        raise InputError(f"--stride must be at least 1, got {stride}")
    if key is None:
        from dataengine.shards.episode import iter_episodes

        ep = next(iter(iter_episodes(episodes_dir)))
    else:
        ep = load_episode(episodes_dir, key)
    if not ep.rendered:
        raise InputError(f"{ep.key}: the episode has no frames (generated with --no-render); nothing to preview")
    cameras = cameras or ep.cameras
    for cam in cameras:
        ep.camera_index(cam)
    steps = list(range(0, ep.num_steps, stride))
    frames = [compose_frame(ep, t, cameras, labels) for t in steps]
    rate = fps or ep.record.control_hz / stride
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        _write_gif(out, frames, rate)
    else:
        from dataengine.export.video import VideoSettings, VideoWriter

        height, width = frames[0].shape[:2]
        writer = VideoWriter(out, rate, width, height, VideoSettings(codec="h264", crf=20))
        for frame in frames:
            writer.write(frame)
        writer.close()
    return {"episode": ep.key, "frames": len(frames), "cameras": cameras, "fps": rate, "out": str(out)}


def _write_gif(out: Path, frames: list[np.ndarray], fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(f).quantize(colors=128, method=Image.Quantize.FASTOCTREE, dither=0) for f in frames]
    with atomic_output(out) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)), loop=0
        )
