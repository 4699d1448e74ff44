"""PixMo-Points (scale decided per file, images by SHA-256 or mapping) and ShareRobot (traces and boxes)."""

from __future__ import annotations

import pytest

from dataengine.converters import run_conversion
from dataengine.fixtures.pixmo_points import build_pixmo_points
from dataengine.fixtures.sharerobot import build_sharerobot
from tests.fixtures.converters import assert_valid, quarantine_lines, samples_by_key

FILE0, FILE1 = "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"


@pytest.fixture(scope="module")
def pixmo(tmp_path_factory):
    root = tmp_path_factory.mktemp("pixmo")
    info = build_pixmo_points(root / "fx", n=3)
    report = run_conversion(
        "pixmo-points", info.input_path, root / "out", images_dir=info.images_dir, workers=0, show_progress=False
    )
    return root / "out", report, info


def test_pixmo_scale_is_decided_per_file_and_recorded(pixmo):
    out, report, _ = pixmo
    scales = report["decisions"]["coordinate_scale"]
    assert scales[FILE0]["scale"] == "percent" and scales[FILE0]["max_coordinate"] == 90.0
    assert scales[FILE1]["scale"] == "pixels" and scales[FILE1]["max_coordinate"] > 100
    samples = samples_by_key(out)
    image_a = samples["pixmo_points_000_00000000"].record
    # percent: (50, 25) of 640x480 -> (320, 120); the counting row of the same image joins the sample
    assert [(it.query, it.points) for it in image_a.items] == [
        ("red mug", [[320.0, 120.0]]),
        ("chairs", [[64.0, 48.0], [576.0, 432.0]]),
    ]
    assert image_a.items[1].meta == {"coordinate_scale": "percent", "collection_method": "counting", "count": 2}
    assert image_a.image.origin == "https://example.org/a.jpg"
    image_b = samples["pixmo_points_001_00000000"].record
    assert image_b.items[0].points == [[150.5, 200.25]]  # pixels, kept
    assert image_b.items[1].query == "les tasses à café ☕"
    assert image_b.items[1].points == [[320.0, 10.0], [12.0, 13.0]]  # x = 320.5 clipped to the edge
    assert report["counts"]["clipped_points"] == 1
    assert_valid(out)


def test_pixmo_quarantine_and_mapping_file(pixmo, tmp_path):
    out, report, info = pixmo
    assert {(q["source_id"], q["reason"]) for q in quarantine_lines(out)} == {
        (f"{FILE0}:1", "missing_image_file"),
        (f"{FILE0}:4", "image_hash_mismatch"),
    }
    assert report["skipped_by_reason"] == {"no_points": 1}
    mapped = info.images_dir.parent / "pixmo-mapped"
    via_mapping = run_conversion(
        "pixmo-points",
        info.input_path,
        tmp_path / "m",
        images_dir=mapped / "mapping.csv",
        workers=0,
        show_progress=False,
    )
    assert via_mapping["written_samples"] == report["written_samples"]
    assert {k: s.image_bytes for k, s in samples_by_key(tmp_path / "m").items()} == {
        k: s.image_bytes for k, s in samples_by_key(out).items()
    }


@pytest.fixture(scope="module")
def sharerobot(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharerobot")
    info = build_sharerobot(root / "fx", n=2)
    report = run_conversion("sharerobot", info.input_path, root / "out", workers=0, show_progress=False)
    return root / "out", report


def test_sharerobot_traces(sharerobot):
    out, _ = sharerobot
    samples = samples_by_key(out)
    readme = samples["sharerobot_trajectory_trajectory_000000"].record.items[0]
    assert readme.task == "trace" and readme.query == "reach for the carrot"
    assert readme.trace == [[265.45, 120.0], [275.15, 162.42], [280.0, 213.33], [280.0, 259.39]]
    off = samples["sharerobot_trajectory_trajectory_000001"].record.items[0]
    assert off.trace == [[630.0, 470.0], [640.0, 479.0], [10.0, 10.0]]
    assert off.meta["clipped_points"] == [1] and off.meta["dropped_points"] == [2]
    rescaled = samples["sharerobot_trajectory_trajectory_000002"].record.items[0]
    assert rescaled.trace == [[100.0, 50.0], [200.0, 150.0], [300.0, 250.0]]
    assert rescaled.meta["rescaled_from"] == [1280, 960]
    by_id = samples["sharerobot_trajectory_trajectory_000005"].record
    assert by_id.image.origin == "trajectory/rtx_frames_success_38/62_robo_set#episode_12881/frame_3.png"
    assert {(q["reason"], q["source_id"].split("#")[1]) for q in quarantine_lines(out)} == {
        ("trace_too_short", "3:459"),
        ("missing_image_file", "4:460"),
    }


def test_sharerobot_affordance_boxes(sharerobot):
    out, report = sharerobot
    samples = samples_by_key(out)
    readme = samples["sharerobot_affordance_affordance_000000"].record.items[0]
    # x 352.874 + w 19.296 = 372.170, y 186.479 + h 14.472 = 200.951
    assert readme.task == "box" and readme.boxes == [[352.87, 186.48, 372.17, 200.95]]
    clipped = samples["sharerobot_affordance_affordance_000001"].record.items[0]
    assert clipped.boxes == [[600.0, 100.0, 640.0, 140.0]] and clipped.meta["clipped"] is True
    assert samples["sharerobot_affordance_test_000000"].record.split == "test"
    assert report["per_split"]["test"]["samples"] == 1 and report["counts"]["clipped_boxes"] == 1
    assert_valid(out)
