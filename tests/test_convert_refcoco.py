"""RefCOCO / RefCOCO+ / RefCOCOg: hand-computed coordinates, quarantine reasons, split schemes, image naming."""

from __future__ import annotations

import pytest

from dataengine.converters import run_conversion
from dataengine.converters.refcoco import strip_fake_suffix
from dataengine.fixtures.refcoco import L_SHAPE, build_refer
from dataengine.geometry import coco_segmentation_to_mask, point_in_mask
from tests.fixtures.converters import assert_valid, quarantine_lines, samples_by_key


@pytest.fixture(scope="module")
def refer(tmp_path_factory):
    return build_refer(tmp_path_factory.mktemp("refer"), n=6, seed=3)


@pytest.fixture(scope="module")
def refcoco_unc(refer, tmp_path_factory):
    out = tmp_path_factory.mktemp("refcoco_unc") / "out"
    report = run_conversion(
        "refcoco", refer.input_path, out, images_dir=refer.images_dir, workers=0, show_progress=False
    )
    return out, report


def _items(sample, task):
    return [it for it in sample.record.items if it.task == task]


def test_boxes_are_xyxy_clipped_and_keep_raw_sentences(refcoco_unc):
    out, report = refcoco_unc
    sample = samples_by_key(out)["refcoco_unc_42_train"]
    boxes = {it.source_id: (it.query, it.boxes[0], it.label) for it in _items(sample, "box")}
    assert boxes["ref_id=1/sent_id=11"] == ("Man on the left.", [10.5, 20.25, 110.5, 220.25], "person")
    assert boxes["ref_id=1/sent_id=12"] == ("left guy", [10.5, 20.25, 110.5, 220.25], "person")
    assert boxes["ref_id=2/sent_id=21"] == ("café chair — 椅子 on the right 👍", [300.0, 100.0, 400.0, 200.0], "chair")
    # bbox [600, 400, 80, 120] on a 640x480 image: clipped to the corner, and counted
    assert boxes["ref_id=3/sent_id=31"] == ("the cut-off bottle", [600.0, 400.0, 640.0, 480.0], "bottle")
    assert report["counts"]["clipped_boxes"] == 1
    # the unicode query survives the JSON member byte for byte
    assert "café chair — 椅子 on the right 👍".encode() in sample.record.to_json_bytes()


def test_points_lie_inside_the_segmentation(refcoco_unc):
    out, _ = refcoco_unc
    samples = samples_by_key(out)
    points = {it.source_id: it.points[0] for it in _items(samples["refcoco_unc_42_train"], "point")}
    # a 10x6 px rectangle at (200, 300): its deepest pixels are rows 302-303, cols 202-207; the one nearest their
    # centre, first in raster order, is (row 302, col 204) -> pixel centre (204.5, 302.5)
    assert points["ref_id=9/ann_id=1008"] == [204.5, 302.5]
    # the L-shaped chair: its box centre (350, 150) is off the object; the point is on it
    x, y = points["ref_id=2/ann_id=1002"]
    assert (300 <= x < 320 and 100 <= y < 200) or (300 <= x < 400 and 100 <= y < 120)
    assert point_in_mask([x, y], coco_segmentation_to_mask([L_SHAPE], 480, 640))
    # the clipped bottle: inside the visible part
    x, y = points["ref_id=3/ann_id=1003"]
    assert 600 <= x < 640 and 400 <= y < 480
    # RLE car, rows 100-149 x cols 200-299: distance 25 first reached at row 124, col 224
    car = _items(samples["refcoco_unc_43_val"], "point")[0]
    assert car.points[0] == [224.5, 124.5]
    assert car.query == "the red car"  # empty `raw`: the tokenized `sent` is used


def test_quarantine_names_each_rejected_record(refcoco_unc):
    out, report = refcoco_unc
    lines = {(q["source_id"], q["reason"]) for q in quarantine_lines(out)}
    assert lines == {
        ("ref_id=4/sent_id=42", "empty_query"),
        ("ref_id=5", "missing_image_file"),
        ("ref_id=7", "missing_annotation"),
        ("ref_id=8", "image_size_mismatch"),
    }
    assert report["quarantined_by_reason"] == {
        "empty_query": 1,
        "image_size_mismatch": 1,
        "missing_annotation": 1,
        "missing_image_file": 1,
    }
    keys = samples_by_key(out)
    assert "refcoco_unc_44_testA" not in keys and "refcoco_unc_46_train" not in keys
    assert [it.source_id for it in keys["refcoco_unc_45_testB"].record.items] == [
        "ref_id=6/sent_id=61",
        "ref_id=6/ann_id=1006",
    ]


def test_records_carry_origin_license_split_and_coco_id(refcoco_unc):
    out, report = refcoco_unc
    assert_valid(out)
    samples = samples_by_key(out)
    image = samples["refcoco_unc_42_train"].record.image
    assert image.origin == "COCO_train2014_000000000042.jpg"  # the fake `_0` suffix of refs' file_name is gone
    assert image.coco_image_id == 42
    assert (image.width, image.height, image.format) == (640, 480, "jpeg")
    for sample in samples.values():
        assert sample.record.license and sample.record.split in {"train", "val", "testA", "testB"}
    assert set(report["per_split"]) <= {"train", "val", "testA", "testB"}
    # one sample per image and split, refs of all objects together
    sample_42 = samples["refcoco_unc_42_train"]
    assert len(_items(sample_42, "box")) == 5 and len(_items(sample_42, "point")) == 4


def test_google_scheme_puts_one_image_in_several_splits(refer, tmp_path):
    out = tmp_path / "google"
    run_conversion(
        "refcoco", refer.input_path, out, images_dir=refer.images_dir, split_by="google", workers=0, show_progress=False
    )
    samples = samples_by_key(out)
    train, val = samples["refcoco_google_42_train"], samples["refcoco_google_42_val"]
    assert train.image_bytes == val.image_bytes
    assert {it.source_id.split("/")[0] for it in train.record.items} == {"ref_id=1", "ref_id=3", "ref_id=9"}
    assert {it.source_id.split("/")[0] for it in val.record.items} == {"ref_id=2"}
    assert_valid(out)


def test_refcoco_plus_and_refcocog_umd(refer, tmp_path):
    plus = run_conversion(
        "refcoco+", refer.input_path, tmp_path / "plus", images_dir=refer.images_dir, workers=0, show_progress=False
    )
    g = run_conversion(
        "refcocog", refer.input_path, tmp_path / "g", images_dir=refer.images_dir, workers=0, show_progress=False
    )
    assert plus["split_by"] == "unc" and g["split_by"] == "umd"
    assert set(g["per_split"]) <= {"train", "val", "test"}
    g_keys = samples_by_key(tmp_path / "g")
    assert "refcocog_umd_42_train" in g_keys and "refcocog_umd_45_test" in g_keys
    assert all(k.startswith("refcocoplus_unc_") for k in samples_by_key(tmp_path / "plus"))
    # refcocog's fake suffix is the ann id
    assert g_keys["refcocog_umd_42_train"].record.image.origin == "COCO_train2014_000000000042.jpg"
    assert_valid(tmp_path / "plus")
    assert_valid(tmp_path / "g")


def test_train2017_naming_and_split_filter_and_limit(tmp_path):
    info = build_refer(tmp_path / "fx", n=4, seed=1, image_naming="train2017")
    out = tmp_path / "out"
    report = run_conversion(
        "refcoco",
        info.input_path,
        out,
        images_dir=info.images_dir,
        splits=["train"],
        limit=2,
        workers=0,
        show_progress=False,
    )
    samples = samples_by_key(out)
    assert samples["refcoco_unc_42_train"].record.image.origin == "000000000042.jpg"
    assert {s.record.split for s in samples.values()} == {"train"}
    assert report["skipped_by_reason"]["split_not_selected"] > 0
    assert len({k.split("_")[2] for k in samples}) <= 2  # first two images (by id) with train refs


def test_strip_fake_suffix():
    assert strip_fake_suffix("COCO_train2014_000000460986_3.jpg") == "COCO_train2014_000000460986.jpg"
    assert strip_fake_suffix("COCO_train2014_000000460986_1877288.jpg") == "COCO_train2014_000000460986.jpg"
    assert strip_fake_suffix("COCO_train2014_000000460986.jpg") == "COCO_train2014_000000460986.jpg"


def test_synthetic_benchmark_layout_converts(tmp_path):
    from dataengine.fixtures import build_fixture

    info = build_fixture("refcoco-synthetic", tmp_path / "syn", n=12, seed=1)
    sizes = [p.stat().st_size for p in info.images_dir.iterdir()]
    assert len(sizes) == 12 and min(sizes) > 80_000  # COCO-sized JPEGs, distinct bytes
    report = run_conversion(
        "refcoco", info.input_path, tmp_path / "out", images_dir=info.images_dir, workers=0, show_progress=False
    )
    assert report["quarantined"] == 0 and report["written_samples"] >= 12
    assert_valid(tmp_path / "out")
