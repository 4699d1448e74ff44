"""RefCOCO / RefCOCO+ / RefCOCOg from the Hugging Face parquet layouts: the same refs as the refer fixture give the
same records (jxu124) or the same coordinates (lmms-lab), bad rows are quarantined, wrong inputs refused."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataengine.converters import run_conversion
from dataengine.converters.refcoco_parquet import dataset_named, file_split
from dataengine.errors import InputError
from dataengine.fixtures.refcoco_hf import build_refcoco_hf
from tests.fixtures.converters import assert_valid, quarantine_lines, samples_by_key

JXU124 = {"refcoco": "refcoco", "refcoco+": "refcocoplus", "refcocog": "refcocog"}
LMMS = {"refcoco": "RefCOCO", "refcocog": "RefCOCOg"}
SCHEME = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
MISSING_ANN_REF = {"refcoco": 7, "refcoco+": 5007, "refcocog": 7007}  # the ref naming annotation 9999


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("refcoco_hf")
    info = build_refcoco_hf(root / "fx", n=6, seed=3)
    fx, out = root / "fx", {}
    for source in JXU124:
        common = {"images_dir": info.images_dir, "workers": 0, "show_progress": False}
        out[("refer", source)] = (
            root / f"refer_{source}",
            run_conversion(source, fx / "refer", root / f"refer_{source}", **common),
        )
        hf = fx / "hf" / "jxu124" / JXU124[source]
        out[("jxu124", source)] = (root / f"jxu_{source}", run_conversion(source, hf, root / f"jxu_{source}", **common))
    for source, name in LMMS.items():
        hf = fx / "hf" / "lmms-lab" / name
        report = run_conversion(source, hf, root / f"lmms_{source}", workers=0, show_progress=False)
        out[("lmms", source)] = (root / f"lmms_{source}", report)
    return info, out


@pytest.mark.parametrize("source", list(JXU124))
def test_jxu124_rows_give_the_refer_records_byte_for_byte(converted, source):
    _, out = converted
    refer_dir, refer_report = out[("refer", source)]
    hf_dir, hf_report = out[("jxu124", source)]
    refer, hf = samples_by_key(refer_dir), samples_by_key(hf_dir)
    assert sorted(hf) == sorted(refer) and len(hf) >= 5
    for key, sample in refer.items():
        assert hf[key].record.to_json_bytes() == sample.record.to_json_bytes(), key
        assert hf[key].image_bytes == sample.image_bytes
    assert hf_report["split_by"] == SCHEME[source] == refer_report["split_by"]
    # the same rejects, except the ref whose annotation is missing: the Hub row has no box instead
    bad = f"ref_id={MISSING_ANN_REF[source]}"
    refer_q = {(q["source_id"], q["reason"]) for q in quarantine_lines(refer_dir)}
    hf_q = {(q["source_id"], q["reason"]) for q in quarantine_lines(hf_dir)}
    assert refer_q - hf_q == {(bad, "missing_annotation")}
    assert hf_q - refer_q == {(bad, "bad_box")}
    assert_valid(hf_dir)


def _coordinates(sample) -> list[tuple]:
    return [(it.task, it.query, it.boxes if it.task == "box" else it.points) for it in sample.record.items]


@pytest.mark.parametrize("source", list(LMMS))
def test_lmms_rows_give_the_refer_coordinates_on_the_same_refs(converted, source):
    _, out = converted
    refer = samples_by_key(out[("refer", source)][0])
    lmms_dir, report = out[("lmms", source)]
    lmms = samples_by_key(lmms_dir)
    assert report["split_by"] == "lmms-eval" and len(lmms) >= 3
    assert {s.record.split for s in lmms.values()} <= {"val", "test", "testA", "testB"}
    compared_points = 0
    for key, sample in lmms.items():
        twin = refer[key.replace("_lmms-eval_", f"_{SCHEME[source]}_")]
        assert sample.image_bytes == twin.image_bytes  # embedded bytes pass through untouched
        assert sample.record.image.coco_image_id == twin.record.image.coco_image_id
        mine, theirs = _coordinates(sample), _coordinates(twin)
        if sample.record.image.coco_image_id == 43:  # the RLE car: lmms-lab's flat polygon column cannot hold it
            theirs = [c for c in theirs if c[0] == "box"]
        assert mine == theirs, key
        compared_points += sum(c[0] == "point" for c in mine)
        assert all(it.label is None for it in sample.record.items)  # the layout has no category
        assert all(it.source_id.startswith("question_id=") for it in sample.record.items)
    assert compared_points >= 3
    assert_valid(lmms_dir)


def test_lmms_bad_rows_are_quarantined_with_reasons(converted):
    _, out = converted
    lines = {(q["source_id"], q["reason"]) for q in quarantine_lines(out[("lmms", "refcoco")][0])}
    assert lines == {
        ("question_id=1005", "missing_image_bytes"),  # image 44 has no file, so its row has no bytes
        ("question_id=9999", "bad_box"),  # the ref naming a missing annotation: a row without a box
        ("question_id=1004/answer=1", "empty_query"),  # a blank sentence (item level)
    }


def test_malformed_jxu124_row_and_split_filter(converted, tmp_path):
    info, _ = converted
    folder = tmp_path / "refcoco" / "data"
    folder.mkdir(parents=True)
    for path in sorted((info.input_path / "data").glob("*.parquet")):
        table = pq.read_table(path)
        if path.name.startswith("validation"):
            row = {**table.slice(0, 1).to_pylist()[0], "image_id": None, "ref_id": 123456}
            table = pa.concat_tables([table, pa.Table.from_pylist([row], schema=table.schema)])
            rows = table.num_rows
        pq.write_table(table, folder / path.name, row_group_size=3)
    out = tmp_path / "out"
    report = run_conversion(
        "refcoco", folder.parent, out, images_dir=info.images_dir, splits=["val"], workers=0, show_progress=False
    )
    assert report["quarantined_by_reason"] == {"malformed_row": 1, "empty_query": 1}
    malformed = [q["source_id"] for q in quarantine_lines(out) if q["reason"] == "malformed_row"]
    assert malformed == [f"validation-00000-of-00001.parquet#row={rows - 1}"]
    assert {s.record.split for s in samples_by_key(out).values()} == {"val"}
    assert report["skipped_by_reason"]["split_not_selected"] > 0


def test_wrong_hub_inputs_are_refused(converted, tmp_path):
    info, _ = converted
    hf = info.input_path.parent
    common = {"images_dir": info.images_dir, "workers": 0, "show_progress": False}
    with pytest.raises(InputError, match="needs the refer layout"):
        run_conversion("refcoco", hf / "refcoco", tmp_path / "a", split_by="google", **common)
    with pytest.raises(InputError, match="is a refcoco download"):
        run_conversion("refcocog", hf / "refcoco", tmp_path / "b", **common)
    with pytest.raises(InputError, match="is a refcoco\\+ download"):
        run_conversion("refcoco", hf.parent / "lmms-lab" / "RefCOCOplus", tmp_path / "c", **common)
    other = tmp_path / "other" / "data"
    other.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "caption": ["b"]}), other / "train-00000-of-00001.parquet")
    with pytest.raises(InputError, match="has columns \\['caption', 'id'\\]"):
        run_conversion("refcoco", other.parent, tmp_path / "d", **common)


def test_hub_names():
    from pathlib import Path

    assert file_split(Path("validation-00000-of-00001.parquet")) == "val"
    assert file_split(Path("testA-00000-of-00001.parquet")) == "testA"
    assert file_split(Path("refcoco_unc_val-00000-of-00002-fa0b3103286599b1.parquet")) == "refcoco_unc_val"
    assert file_split(Path("refs.parquet")) is None
    assert dataset_named(Path("/x/datasets--jxu124--refcocog/snapshots/" + "a" * 40)) == "refcocog"
    assert dataset_named(Path("/x/RefCOCOplus/data")) == "refcoco+"
    assert dataset_named(Path("/x/my_download")) is None
