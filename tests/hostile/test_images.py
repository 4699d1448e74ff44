"""A JPEG cut short whose end marker was put back decodes without an error (libjpeg pads it grey and only
warns); `validate --decode` and `convert --verify-images` still find it, whatever bytes follow the cut."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dataengine.converters import run_conversion
from dataengine.fixtures.pointing import build_robopoint
from dataengine.images import is_complete, jpeg_fully_coded
from dataengine.inspect.validate import validate_path
from dataengine.shards import GroundingShardWriter
from tests.fixtures.converters import quarantine_lines
from tests.helpers import make_record


def _jpeg(progressive: bool = False, grey_bottom: bool = False, restarts: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    pixels = (rng.random((96, 128, 3)) * 255).astype("uint8")
    if grey_bottom:
        pixels[48:] = 128  # a real image whose last blocks are mid-grey, like the padding a decoder adds
    buf = io.BytesIO()
    extra = {"restart_marker_blocks": 4} if restarts else {}
    Image.fromarray(pixels).save(buf, "JPEG", quality=90, progressive=progressive, **extra)
    return buf.getvalue()


TAILS = {
    "end marker": b"\xff\xd9",
    "zeros and end marker": b"\x00" * 64 + b"\xff\xd9",
    "junk and end marker": b"junk" + b"\xff\xd9",
    "restart marker and end marker": b"\xff\xd0\xff\xd9",
}


@pytest.mark.parametrize("tail", TAILS)
@pytest.mark.parametrize("kind", ["baseline", "progressive", "grey bottom", "restart intervals"])
def test_cut_jpegs_are_found_whatever_follows_the_cut(kind, tail):
    data = _jpeg(progressive=kind == "progressive", grey_bottom=kind == "grey bottom", restarts=kind[0] == "r")
    assert jpeg_fully_coded(data)
    cut = data[: len(data) // 2] + TAILS[tail]
    assert is_complete(cut, "jpeg")  # the cheap header check cannot see it: that is the point
    with Image.open(io.BytesIO(cut)) as im:
        im.load()  # and Pillow decodes it without an error
    assert not jpeg_fully_coded(cut)


def test_validate_decode_reports_the_cut_jpeg(tmp_path):
    good, cut = _jpeg(), _jpeg()[:2000] + b"\xff\xd9"
    with GroundingShardWriter(tmp_path / "set", "s", max_samples=10, max_bytes=1 << 30) as writer:
        for key, image in (("good", good), ("cut", cut)):
            writer.write(make_record(key, image, [{"task": "point", "query": "x", "points": [[5, 5]]}]), image)
    assert validate_path(tmp_path / "set").ok  # headers only
    report = validate_path(tmp_path / "set", decode=True)
    assert report.problems_by_reason == {"truncated_image": 1}
    assert report.problems[0].key == "cut"


def test_convert_verify_images_quarantines_the_cut_jpeg(tmp_path):
    info = build_robopoint(tmp_path / "fx", n=0)
    path = info.images_dir / "coco" / "train2017" / "000000000042.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    run_conversion("robopoint", info.input_path, tmp_path / "plain", images_dir=info.images_dir, workers=0,
                   show_progress=False)  # fmt: skip
    assert "truncated_image" not in {q["reason"] for q in quarantine_lines(tmp_path / "plain")}
    run_conversion("robopoint", info.input_path, tmp_path / "checked", images_dir=info.images_dir, workers=0,
                   show_progress=False, verify_images=True)  # fmt: skip
    reasons = {q["source_id"].split(":", 1)[-1]: q["reason"] for q in quarantine_lines(tmp_path / "checked")}
    assert reasons["000000000042"] == "truncated_image"
