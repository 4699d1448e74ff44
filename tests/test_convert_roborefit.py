"""RoboRefIt: backslash paths, clipping, points inside masks, scene in meta, unsafe paths, missing files."""

from __future__ import annotations

import pytest

from dataengine.converters import run_conversion
from dataengine.fixtures.roborefit import build_roborefit
from tests.fixtures.converters import assert_valid, quarantine_lines, samples_by_key


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("roborefit")
    info = build_roborefit(root / "fx", n=4)
    report = run_conversion("roborefit", info.input_path, root / "out", workers=0, show_progress=False)
    return root / "out", report, info


def test_hand_made_boxes_points_and_meta(converted):
    out, report, _ = converted
    sample = samples_by_key(out)["roborefit_train_0000000"]
    assert sample.record.image.origin == "final_dataset/train/image/0000000.png"  # backslashes normalized
    assert (sample.record.image.width, sample.record.image.height, sample.record.image.format) == (640, 480, "png")
    items = [(it.task, it.source_id) for it in sample.record.items]
    assert items == [
        ("box", "train#num=0"),
        ("point", "train#num=0"),
        ("box", "train#num=1"),
        ("point", "train#num=1"),
        ("box", "train#num=2"),
        ("point", "train#num=2"),
    ]
    cup_box, cup_point, bottle_box, bottle_point, uni_box, uni_point = sample.record.items
    assert cup_box.boxes == [[100.0, 120.0, 200.0, 260.0]] and cup_box.query == "pick up the red cup"
    # mask = cols 100-199, rows 120-259: Euclidean depth 50 first reached at row 169, col 149
    assert cup_point.points == [[149.5, 169.5]]
    assert cup_box.meta == {"scene": "table"}
    assert cup_point.meta == {"scene": "table", "mask": "final_dataset/train/mask/0000000/0.png"}
    # [600, 400, 700, 520] clipped to the image; the point lies in the visible 40x80 part: (619.5, 419.5)
    assert bottle_box.boxes == [[600.0, 400.0, 640.0, 480.0]]
    assert bottle_box.meta["clipped_from"] == [600.0, 400.0, 700.0, 520.0]
    assert bottle_point.points == [[619.5, 419.5]]
    assert uni_box.query == uni_point.query == "把杯子放在左边 ☕ café"
    assert uni_point.points == [[319.5, 69.5]]
    assert report["counts"]["clipped_boxes"] >= 1


def test_quarantine_and_item_level_rejects(converted):
    out, report, _ = converted
    lines = {(q["source_id"], q["reason"], q["scope"]) for q in quarantine_lines(out)}
    assert lines == {
        ("train#num=3", "missing_image_file", "record"),
        ("train#num=4", "unsafe_path", "record"),
        ("train#num=5", "missing_mask_file", "item"),
    }
    maskless = samples_by_key(out)["roborefit_train_0000003"]
    assert [it.task for it in maskless.record.items] == ["box"]  # the box survives a missing mask
    assert report["read"] == sum(t["read"] for t in report["per_task"])


def test_splits_and_validation(converted, tmp_path):
    out, report, info = converted
    assert set(report["per_split"]) == {"train", "testA", "testB"}
    assert_valid(out)
    only = run_conversion(
        "roborefit",
        info.input_path / "final_dataset",
        tmp_path / "a",
        splits=["testA"],
        workers=0,
        show_progress=False,
    )
    assert set(only["per_split"]) == {"testA"} and only["skipped_by_reason"]["split_not_selected"] > 0
