"""Smaller findings from converting real upstream rows: keys, missing images, split names, wrong folders, the report."""

from __future__ import annotations

import json

import pytest

from dataengine.converters import run_conversion
from dataengine.converters.common import make_key, slug
from dataengine.errors import InputError
from dataengine.fixtures.refcoco import build_refer
from dataengine.fixtures.sharerobot import build_sharerobot
from tests.fixtures.converters import quarantine_lines


@pytest.fixture(scope="module")
def refer(tmp_path_factory):
    return build_refer(tmp_path_factory.mktemp("refer") / "fx", n=2)


def test_long_names_keep_a_hash_of_their_cut_tail():
    left = "region_ref/scene_0001_long_description_of_the_scene-obj18_left"
    right = "region_ref/scene_0001_long_description_of_the_scene-obj18_right"
    assert slug(left, 40) != slug(right, 40)
    assert len(slug(left, 40)) <= 40 and slug(left, 40).startswith("region_ref_scene_0001")
    assert slug(left, 40) == slug(left, 40)  # deterministic
    assert slug("short_name", 40) == "short_name"
    assert make_key("robopoint", "0000001", slug(left, 40)) != make_key("robopoint", "0000001", slug(right, 40))


def test_sharerobot_row_without_image_is_a_missing_image(tmp_path):
    info = build_sharerobot(tmp_path / "fx", n=0)
    path = info.input_path / "affordance" / "affordance.json"
    rows = json.loads(path.read_text())
    rows.append({"id": 9999, "instruction": "grasp the cup", "affordance": {"x": 1, "y": 1, "width": 5, "height": 5}})
    rows.append({**rows[-1], "id": 9998, "image": ""})
    path.write_text(json.dumps(rows))
    run_conversion("sharerobot", info.input_path, tmp_path / "out", workers=0, show_progress=False)
    reasons = {q["source_id"].rsplit(":", 1)[-1]: q["reason"] for q in quarantine_lines(tmp_path / "out")}
    assert reasons["9999"] == reasons["9998"] == "missing_image"


def test_unknown_split_lists_the_splits_that_exist(refer, tmp_path):
    with pytest.raises(InputError, match=r"--splits tesA; its splits are .*testA.*train"):
        run_conversion(
            "refcoco",
            refer.input_path,
            tmp_path / "o",
            images_dir=refer.images_dir,
            splits=["tesA"],
            workers=0,
            show_progress=False,
        )


def test_refcocog_refuses_the_refcoco_folder(refer, tmp_path):
    with pytest.raises(InputError, match="is the refcoco folder"):
        run_conversion(
            "refcocog",
            refer.input_path / "refcoco",
            tmp_path / "o",
            images_dir=refer.images_dir,
            split_by="google",
            workers=0,
            show_progress=False,
        )


def test_report_options_name_the_split_scheme_used(refer, tmp_path):
    report = run_conversion(
        "refcoco", refer.input_path, tmp_path / "o", images_dir=refer.images_dir, workers=0, show_progress=False
    )
    assert report["options"]["split_by"] == report["split_by"] == "unc"


def test_declared_image_ids_reach_the_holdout_scan():
    from dataengine.corpus.scan import _id_fields, coco_image_id
    from tests.helpers import make_image, make_record

    record = make_record("k", make_image(), [{"task": "box", "query": "cup", "boxes": [[1, 1, 5, 5]]}])
    record.image.coco_image_id = 42  # a declared field now, no longer an extra
    assert coco_image_id(_id_fields(record)) == 42
