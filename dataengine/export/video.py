"""MP4 writing for exports and previews with PyAV, deterministic where the encoder allows.

`VideoWriter` appends RGB frames (H, W, 3) uint8 to one MP4 stream at a fixed rate; frame k has presentation time
k / fps, so a file holding several episodes back to back gives episode e the time range [from_s, from_s + T / fps).
Determinism: RGB is converted to YUV 4:2:0 here (BT.601 limited range, the colour matrix decoders assume for
untagged video) and copied into fully initialised frame planes; libx264 runs with one thread and no B-frames
(with B-frames, the second of two encoders open in one process gave different bytes from run to run); no wall-clock
metadata, the muxer's bit-exact flag. The same frames then give the same bytes with the same PyAV/FFmpeg build
(tests/test_simout_lerobot.py checks it). Codecs: `h264` (libx264, the default: fast on CPU, read
everywhere) and `av1` (libsvtav1, LeRobot's own default; slower to encode). Both use yuv420p and a short GOP
(LeRobot's `g=2`), so readers that seek by timestamp decode at most one extra frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataengine.errors import InputError, require
from dataengine.runtime.atomic import commit, temporary_path

CODECS = {"h264": "libx264", "av1": "libsvtav1"}
CANONICAL_NAMES = {"h264": "h264", "av1": "av1"}  # what a reader reports as `codec.canonical_name`


@dataclass(frozen=True)
class VideoSettings:
    """Encoder settings. `crf`: lower is closer to the source (h264 18 is visually lossless at 224 px)."""

    codec: str = "h264"
    crf: int = 18
    gop: int = 2
    pix_fmt: str = "yuv420p"

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise InputError(f"unknown video codec {self.codec!r}; valid: {sorted(CODECS)}")
        if not 0 <= self.crf <= 63:
            raise InputError(f"crf must be in 0..63, got {self.crf}")

    def encoder_options(self) -> dict[str, str]:
        options = {"g": str(self.gop), "crf": str(self.crf)}
        if self.codec == "h264":
            options.update({"threads": "1", "preset": "veryfast", "x264-params": "bframes=0"})  # see the docstring
        else:
            options.update({"preset": "10", "svtav1-params": "lp=1"})
        return options


class VideoWriter:
    """Frames in, one MP4 out (written to `path.tmp`, renamed on `close`)."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int, settings: VideoSettings) -> None:
        require("av", "sim", "writing MP4 videos")
        import av

        if width % 2 or height % 2:
            raise InputError(
                f"{Path(path).name}: video frames must have an even width and height, got {width}x{height}"
            )
        if settings.codec == "av1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner on stderr otherwise

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temporary_path(self.path)
        self.frames = 0
        self.width, self.height = width, height
        self._container = av.open(str(self._tmp), "w", format="mp4", options={"fflags": "+bitexact"})
        self._container.metadata.clear()
        rate = int(fps) if float(fps).is_integer() else fps
        self._stream = self._container.add_stream(CODECS[settings.codec], rate=rate, options=settings.encoder_options())
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = settings.pix_fmt
        self._stream.codec_context.flags |= getattr(av.codec.context.Flags, "bitexact", 0)

    def write(self, rgb: np.ndarray) -> None:

        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise InputError(
                f"{self.path.name}: frame {self.frames} is {rgb.shape} {rgb.dtype}, "
                f"expected ({self.height}, {self.width}, 3) uint8"
            )
        frame = yuv420p_frame(rgb_to_yuv420p(rgb))
        frame.pts = self.frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        commit(self._tmp, self.path, fsync=False)
        return self.path

    def abort(self) -> None:
        try:
            self._container.close()
        finally:
            self._tmp.unlink(missing_ok=True)


_Y_ROW = np.array([0.256788, 0.504129, 0.097906], np.float32)
_UV_ROWS = np.array([[-0.148223, -0.290993, 0.439216], [0.439216, -0.367788, -0.071427]], np.float32).T


def rgb_to_yuv420p(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB (H, W even) -> the Y (H, W), U and V (H/2, W/2) uint8 planes: BT.601 limited range,
    chroma from the 2x2-block average."""
    h, w, _ = rgb.shape
    f = rgb.astype(np.float32)
    y = f.reshape(-1, 3) @ _Y_ROW + 16.5
    block = (f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2]) * 0.25
    uv = block.reshape(-1, 3) @ _UV_ROWS + 128.5

    def to_u8(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        return np.clip(a, 0, 255).astype(np.uint8).reshape(shape)

    return to_u8(y, (h, w)), to_u8(uv[:, 0], (h // 2, w // 2)), to_u8(uv[:, 1], (h // 2, w // 2))


def yuv420p_frame(planes: tuple[np.ndarray, np.ndarray, np.ndarray]):
    """A PyAV yuv420p frame whose planes (row padding included) are fully written from (Y, U, V)."""
    import av

    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, data in zip(frame.planes, planes, strict=True):
        padded = np.zeros((data.shape[0], plane.line_size), np.uint8)
        padded[:, : data.shape[1]] = data
        plane.update(padded.tobytes())
    return frame


def read_video_rgb(path: str | Path) -> np.ndarray:
    """Every frame of an MP4 as (N, H, W, 3) uint8 (tests and previews; readers use their own decoders)."""
    require("av", "sim", "reading MP4 videos")
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def video_info(path: str | Path, fps: float, settings: VideoSettings) -> dict:
    """The `info` block LeRobot keeps per video feature (as its `get_video_info` reports it)."""
    require("av", "sim", "reading MP4 videos")
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(fps),
            "video.channels": 3,
            "has_audio": False,
        }
