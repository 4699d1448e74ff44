"""Converter helpers: the fast JPEG header, batched inner points of polygons, streaming JSON arrays."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

import dataengine.converters.jsonarray as jsonarray
from dataengine.converters.common import jpeg_header
from dataengine.errors import InputError
from dataengine.fixtures.images import blob
from dataengine.geometry import (
    coco_segmentation_to_mask,
    mask_crop_inner_point,
    mask_inner_point,
    point_in_mask,
    polygon_inner_points,
)
from dataengine.images import probe_image


def _jpeg(width, height, **options) -> bytes:
    rng = np.random.default_rng(width * height)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "JPEG", **options)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        _jpeg(640, 480),
        _jpeg(1, 1),
        _jpeg(33, 17, progressive=True),
        _jpeg(300, 200, quality=20, optimize=True),
        _jpeg(64, 48, subsampling=0),
        _jpeg(640, 480)[:2] + b"\xff\xfe\x00\x05abc" + _jpeg(640, 480)[2:],
    ],
)
def test_jpeg_header_agrees_with_pil(data):
    assert jpeg_header(data) == probe_image(data)


def test_jpeg_header_leaves_other_data_to_pil():
    buf = io.BytesIO()
    Image.new("RGB", (5, 5)).save(buf, "PNG")
    assert jpeg_header(buf.getvalue()) is None
    assert jpeg_header(b"\xff\xd8\xff\xda\x00\x02") is None  # scan before any frame header
    assert jpeg_header(b"\xff\xd8\xff") is None


def test_polygon_inner_points_lie_inside_the_pycocotools_mask():
    rng = np.random.default_rng(5)
    objects = []
    for _ in range(300):
        height, width = int(rng.integers(40, 500)), int(rng.integers(40, 500))
        radius = float(rng.uniform(1.5, 120))
        seg = [blob(rng, rng.uniform(-20, width + 20), rng.uniform(-20, height + 20), radius, int(rng.integers(3, 30)))]
        if rng.random() < 0.3:  # a second polygon (COCO objects split by occlusion)
            seg.append(blob(rng, rng.uniform(0, width), rng.uniform(0, height), radius / 2, 8))
        if rng.random() < 0.1:  # self-intersecting garbage
            seg = [rng.uniform(0, min(width, height), 12).round(2).tolist()]
        objects.append((seg, height, width))
    points = polygon_inner_points(objects)
    for (seg, height, width), point in zip(objects, points, strict=True):
        mask = coco_segmentation_to_mask(seg, height, width)
        if point is None:
            assert not mask.any()
        else:
            assert point_in_mask(point, mask)
    assert polygon_inner_points(objects[:7]) == points[:7]  # one object's point does not depend on the batch


def test_polygon_inner_points_exact_for_small_rectangles_and_edge_cases():
    rect = [[200, 300, 210, 300, 210, 306, 200, 306]]
    assert polygon_inner_points([(rect, 480, 640)]) == [[204.5, 302.5]]
    outside = [[700, 10, 720, 10, 720, 30]]
    assert polygon_inner_points([(outside, 480, 640), ([], 480, 640), ([[1, 2, 3, 4]], 480, 640)]) == [None] * 3


def test_mask_crop_inner_point_matches_the_full_computation():
    rng = np.random.default_rng(2)
    for _ in range(20):
        mask = np.zeros((60, 80), dtype=bool)
        r, c = int(rng.integers(0, 50)), int(rng.integers(0, 70))
        mask[r : r + int(rng.integers(1, 30)), c : c + int(rng.integers(1, 30))] = True
        mask[int(rng.integers(0, 60)), int(rng.integers(0, 80))] = True
        assert mask_crop_inner_point(mask) == mask_inner_point(mask)


def test_json_array_spans_survive_chunk_boundaries(tmp_path, monkeypatch):
    rows = [{"id": i, "text": "é☕" * (i % 9), "nested": [[i, 0.5], {"x": "]"}]} for i in range(300)]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows, indent=3, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(jsonarray, "CHUNK_BYTES", 97)
    spans = jsonarray.array_spans(path, 64)
    assert [s["count"] for s in spans] == [64, 64, 64, 64, 44]
    assert [row for span in spans for row in jsonarray.iter_span(path, span)] == rows
    assert sum(s["count"] for s in jsonarray.array_spans(path, 64, limit=70)) == 70


@pytest.mark.parametrize("text", ["", "{}", "[1, 2", '[{"a": 1}, {"b": ]'])
def test_json_array_errors_name_the_problem(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=r"bad\.json"):
        jsonarray.array_spans(path, 10)
