"""LLaVA-OneVision: row-group reading, literal subset names, bytes passed through, text-only rows."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import dataengine.converters.llava_onevision as llava_module
from dataengine.converters import run_conversion
from dataengine.fixtures.llava_onevision import build_llava_onevision
from tests.fixtures.converters import assert_valid, quarantine_lines, samples_by_key

COCO = "sharegpt4v(coco)"
V7W = "visual7w(cauldron,llava_format)"


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return build_llava_onevision(tmp_path_factory.mktemp("llava") / "fx", n=4)


@pytest.fixture(scope="module")
def converted(fixture, tmp_path_factory):
    out = tmp_path_factory.mktemp("llava_out") / "out"
    return out, run_conversion("llava-onevision", fixture.input_path, out, workers=0, show_progress=False)


def _by_source_id(out):
    return {s.record.items[0].source_id: s for s in samples_by_key(out).values()}


def test_counts_and_quarantine(converted):
    out, report = converted
    assert report["read"] == 6 + 4 + 4 + 3
    assert report["skipped_by_reason"] == {"text_only": 4}
    assert {(q["source_id"], q["reason"]) for q in quarantine_lines(out)} == {
        (f"{COCO}/gif_row", "unsupported_image_format"),
        (f"{COCO}/truncated_row", "truncated_image"),
        (f"{COCO}/no_answer", "no_qa_pair"),
    }
    assert report["written_samples"] == 17 - 4 - 3
    assert report["pairs"] == report["written_samples"] + 4  # the visual7w rows have two pairs each
    assert_valid(out)


def test_image_bytes_pass_through_and_image_token_is_removed(fixture, converted):
    out, _ = converted
    samples = _by_source_id(out)
    first = samples[f"{COCO}/000000000042"]
    original = pq.read_table(fixture.input_path / COCO / "train-00000-of-00002.parquet").to_pylist()[0]
    assert first.image_bytes == original["image"]["bytes"]
    assert first.record.image.origin == "coco/train2017/000000000042.jpg"
    assert first.record.image.coco_image_id == 42
    turns = first.record.items[0].conversation
    assert [(t.from_, t.value) for t in turns] == [
        ("human", "What is on the table?"),
        ("gpt", "A red cup and a bottle."),
    ]
    assert first.record.items[0].meta == {"subset": COCO, "data_source": "sharegpt4v_coco", "image_token_removed": True}
    v7w = samples[f"{V7W}/v7w_0"]
    assert v7w.record.image.format == "png"
    assert v7w.record.items[0].conversation[0].value == "Which object is left of the cup?"
    assert v7w.record.items[0].meta["subset"] == V7W  # parentheses and commas kept literally
    uni = samples[f"{COCO}/unicode_row"]
    assert uni.record.items[0].conversation[1].value == "Une tasse — 一个杯子 ☕"
    keys = list(samples_by_key(out))
    assert all("." not in k and "(" not in k for k in keys) and len(set(keys)) == len(keys)


def test_text_only_rows_kept_on_request_and_limit(fixture, tmp_path):
    out = tmp_path / "kept"
    report = run_conversion(
        "llava-onevision", fixture.input_path, out, keep_text_only=True, limit=5, workers=0, show_progress=False
    )
    samples = list(samples_by_key(out).values())
    text_only = [s for s in samples if s.record.image is None]
    # subsets sorted by name: magpie_pro (3 text-only rows) first, then two sharegpt4v(coco) rows
    assert report["read"] == 5 and len(text_only) == 4 and report["counts"]["text_only_kept"] == 4
    assert all(s.image_bytes is None for s in text_only)
    assert_valid(out)


def test_reads_row_groups_never_whole_files(fixture, tmp_path, monkeypatch):
    def whole_file_read(*args, **kwargs):
        raise AssertionError("ParquetFile.read loads a whole file")

    monkeypatch.setattr(pq.ParquetFile, "read", whole_file_read)
    monkeypatch.setattr(llava_module, "ROWS_PER_PARTITION", 3)  # one row group per partition
    report = run_conversion("llava-onevision", fixture.input_path, tmp_path / "o", workers=0, show_progress=False)
    assert report["tasks"] == 7
    reference = run_conversion(
        "llava-onevision", fixture.input_path, tmp_path / "ref", workers=0, show_progress=False, limit=100
    )
    assert {k: s.record for k, s in samples_by_key(tmp_path / "o").items()} == {
        k: s.record for k, s in samples_by_key(tmp_path / "ref").items()
    }
    assert reference["written_samples"] == report["written_samples"]
