"""HF `datasets` loads a mixed shard set of every source (jpg and png, every optional field) losing nothing."""

from __future__ import annotations

import json
import typing

import pytest
from pydantic import BaseModel

from dataengine.records import grounding
from dataengine.records.grounding import GroundingRecord, hf_features
from dataengine.shards import iter_grounding

datasets = pytest.importorskip("datasets")


def _model_fields(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def test_features_name_every_field_of_the_record():
    record = hf_features()["json"]
    assert _model_fields(GroundingRecord) == set(record)
    assert _model_fields(grounding.ImageInfo) == set(record["image"])
    items = set(record["items"].feature)
    for model in typing.get_args(typing.get_args(grounding.Item)[0]):
        assert _model_fields(model) <= items, model.__name__
    assert _model_fields(grounding.Turn) == set(record["items"].feature["conversation"].feature)


def test_mixed_set_of_every_source_loads_with_nothing_lost(every_source, tmp_path):
    tars = sorted(str(p) for folder in every_source.values() for p in folder.glob("*.tar"))
    expected = {s.record.key: s for folder in every_source.values() for s in iter_grounding(folder)}
    formats = {s.record.image.format for s in expected.values() if s.record.image}
    assert {"jpeg", "png"} <= formats
    ds = datasets.load_dataset(
        "webdataset",
        data_files={"train": tars},
        split="train",
        features=hf_features(),
        cache_dir=str(tmp_path / "cache"),
    )
    assert len(ds) == len(expected)
    raw = ds.cast_column("jpg", datasets.Image(decode=False)).cast_column("png", datasets.Image(decode=False))
    for row in raw:
        sample = expected[row["__key__"]]
        want = json.loads(sample.record.to_json_bytes())
        assert _without_nulls(_loaded_record(row["json"])) == _without_nulls(want), row["__key__"]
        column = {"jpeg": "jpg", "png": "png"}.get(sample.record.image.format) if sample.record.image else None
        for name in ("jpg", "png"):
            got = row[name]["bytes"] if row[name] else None
            assert got == (sample.image_bytes if name == column else None), (row["__key__"], name)
    assert isinstance(ds.features["png"], datasets.Image) and isinstance(ds.features["jpg"], datasets.Image)


def _loaded_record(record: dict) -> dict:
    """A loaded row's record with each item's meta read back from its JSON text."""
    for item in record["items"]:
        if item.get("meta") is not None:
            item["meta"] = json.loads(item["meta"])
    return record


def _without_nulls(value):
    """Drop the None fields Arrow fills in for what a record leaves out (records omit absent optional fields)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_export_hf_folder_loads_with_every_field(every_source, tmp_path):
    from huggingface_hub import DatasetCard

    from dataengine.export.hf_dataset import export_hf

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for folder in every_source.values():
        for tar in folder.glob("*.tar"):
            (mixed / tar.name).write_bytes(tar.read_bytes())
    expected = {s.record.key: s for s in iter_grounding(mixed)}
    report = export_hf(mixed, tmp_path / "hf", rows_per_file=7)
    assert sum(report.rows_by_split.values()) == len(expected)
    card = DatasetCard.load(tmp_path / "hf" / "README.md").data
    assert {c["split"] for c in card.configs[0]["data_files"]} == set(report.rows_by_split)

    ds = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    assert {name: len(split) for name, split in ds.items()} == dict(report.rows_by_split)
    assert isinstance(ds["train"].features["image"], datasets.Image)
    for name, split in ds.items():
        for row in split.cast_column("image", datasets.Image(decode=False)):
            sample = expected[row["key"]]
            want = json.loads(sample.record.to_json_bytes())
            got = {k: v for k, v in row.items() if k not in ("image", "image_info")}
            got["image"] = row["image_info"]
            assert _without_nulls(_loaded_record(got)) == _without_nulls(want), row["key"]
            assert (row["image"] or {}).get("bytes") == sample.image_bytes, row["key"]
            assert row["split"] == name
