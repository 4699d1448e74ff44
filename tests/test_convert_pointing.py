"""RoboPoint (normalized tuples -> pixels, other turns -> vqa) and Where2Place (points sampled in masks)."""

from __future__ import annotations

import math

import pytest

from dataengine.converters import run_conversion
from dataengine.converters.files import InputFiles
from dataengine.converters.robopoint import parse_tuple_list
from dataengine.converters.where2place import MASK_THRESHOLD, POINTS_PER_MASK, SAMPLING_SEED, _load_mask
from dataengine.fixtures.pointing import build_robopoint, build_where2place
from dataengine.geometry import point_in_mask
from tests.fixtures.converters import assert_valid, quarantine_lines, samples_by_key


@pytest.fixture(scope="module")
def robopoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("robopoint")
    info = build_robopoint(root / "fx", n=3)
    report = run_conversion("robopoint", info.input_path, root / "out", workers=0, show_progress=False)
    return root / "out", report, info


def test_parse_tuple_list():
    assert parse_tuple_list("[(0.461, 0.527), (0.498, 0.521)]") == [[0.461, 0.527], [0.498, 0.521]]
    assert parse_tuple_list(" [(0.1, 0.2, 0.5, 0.6)] ") == [[0.1, 0.2, 0.5, 0.6]]
    assert parse_tuple_list("[(1, 2), (3, 4, 5, 6)]") is None  # mixed arity
    assert parse_tuple_list("The cup is red.") is None
    assert parse_tuple_list("[(0.5, 0.5)] and more") is None


def test_robopoint_points_boxes_and_vqa(robopoint):
    out, report, _ = robopoint
    samples = samples_by_key(out)
    region = samples["robopoint_0000000_region_ref_scene_0001_left"].record
    (point,) = region.items
    # (0.461 * 640, 0.527 * 480), (0.498 * 640, 0.521 * 480)
    assert point.task == "point" and point.points == [[295.04, 252.96], [318.72, 250.08]]
    assert point.query.startswith("In the image, there is an item encased") and point.query.endswith("highlighted.")
    assert "<image>" not in point.query and "formatted" not in point.query
    assert point.meta == {"answer_format": "robopoint_normalized", "format_instruction_removed": True}
    (box,) = samples["robopoint_0000001_object_ref_scene_0002_box"].record.items
    assert box.task == "box" and box.boxes == [[32.0, 48.0, 160.0, 144.0]]  # (0.1, 0.2, 0.5, 0.6) on 320x240
    coco = samples["robopoint_0000002_000000000042"].record
    assert [it.task for it in coco.items] == ["vqa"] and len(coco.items[0].conversation) == 4
    assert coco.image.coco_image_id == 42
    mixed = samples["robopoint_0000003_region_ref_scene_0003_mixed"].record
    assert [it.task for it in mixed.items] == ["point", "vqa"]
    assert mixed.items[0].points == [[100.0, 150.0]]  # (0.25 * 400, 0.5 * 300)
    uni = samples["robopoint_0000008_unicode"].record.items[0]
    assert uni.query == "指出杯子右边的空位 ☕" and uni.points == [[300.0, 75.0]]
    assert report["items_by_task"]["box"] == 1
    assert_valid(out)


def test_robopoint_quarantine_and_text_only(robopoint, tmp_path):
    out, report, info = robopoint
    assert {(q["source_id"], q["reason"], q["scope"]) for q in quarantine_lines(out)} == {
        ("#5:missing", "missing_image_file", "record"),
        ("#6:escape", "unsafe_path", "record"),
        ("#7:out_of_range/turn=0", "coordinate_out_of_range", "item"),
    }
    assert report["skipped_by_reason"] == {"text_only": 1}
    # the out-of-range row keeps its other, free-text turn
    assert [it.task for it in samples_by_key(out)["robopoint_0000007_out_of_range"].record.items] == ["vqa"]
    kept = run_conversion(
        "robopoint", info.input_path.parent, tmp_path / "kept", keep_text_only=True, workers=0, show_progress=False
    )
    assert kept["counts"]["text_only_kept"] == 1
    assert samples_by_key(tmp_path / "kept")["robopoint_0000004_text_only"].record.image is None


def test_robopoint_partitions_are_byte_ranges(robopoint, tmp_path, monkeypatch):
    import dataengine.converters.robopoint as robopoint_module

    out, _, info = robopoint
    monkeypatch.setattr(robopoint_module, "ROWS_PER_PARTITION", 4)
    report = run_conversion("robopoint", info.input_path, tmp_path / "o", workers=0, show_progress=False)
    assert report["tasks"] == 3
    assert {k: s.record for k, s in samples_by_key(tmp_path / "o").items()} == {
        k: s.record for k, s in samples_by_key(out).items()
    }


@pytest.fixture(scope="module")
def where2place(tmp_path_factory):
    root = tmp_path_factory.mktemp("w2p")
    info = build_where2place(root / "fx", n=3)
    report = run_conversion("where2place", info.input_path, root / "out", workers=0, show_progress=False)
    return root / "out", report, info


def test_where2place_points_lie_in_the_mask(where2place):
    out, report, info = where2place
    samples = samples_by_key(out)
    first = samples["where2place_0000"].record
    (item,) = first.items
    assert first.split == "test" and item.query == "Please point out the free area between the two cups."
    assert len(item.points) == POINTS_PER_MASK
    assert item.meta == {
        "mask": "masks/00.jpg",
        "seed": SAMPLING_SEED,
        "mask_threshold": MASK_THRESHOLD,
        "sampled_points": POINTS_PER_MASK,
        "category": "seen",
    }
    mask = _load_mask(InputFiles([info.input_path]), info.input_path / "masks" / "00.jpg")
    for x, y in item.points:
        assert point_in_mask([x, y], mask)
        assert 99 <= x <= 201 and 199 <= y <= 281  # the drawn rectangle, cols 100-199 x rows 200-279
        assert x - math.floor(x) == 0.5 and y - math.floor(y) == 0.5  # pixel centres
    assert report["counts"]["sampled_points"] == POINTS_PER_MASK * report["written_samples"]
    assert_valid(out)


def test_where2place_quarantine_and_fixed_seed(where2place, tmp_path):
    out, _, info = where2place
    assert {(q["source_id"], q["reason"]) for q in quarantine_lines(out)} == {
        ("question_id=1", "empty_mask"),
        ("question_id=2", "missing_mask_file"),
    }
    again = tmp_path / "again"
    run_conversion("where2place", info.input_path, again, workers=0, show_progress=False)
    assert {k: s.record for k, s in samples_by_key(again).items()} == {
        k: s.record for k, s in samples_by_key(out).items()
    }
