"""grounding/v1: the model, its JSON Schema file, and the rules every record obeys."""

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from dataengine.records import GroundingRecord
from dataengine.records.schemas import SCHEMA_MODELS, schema_text
from tests.helpers import make_image, make_record

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stem", sorted(SCHEMA_MODELS))
def test_schema_files_match_models(stem):
    path = ROOT / "schemas" / f"{stem}.schema.json"
    assert path.read_text(encoding="utf-8") == schema_text(stem), (
        f"{path} is stale: run python -m dataengine.records.schemas --write"
    )


def _record_dict(**over):
    base = {
        "schema": "grounding/v1",
        "key": "refcoco_1",
        "source": "refcoco",
        "split": "train",
        "license": "CC-BY-4.0",
        "image": {"width": 640, "height": 480, "sha1": "a" * 40, "origin": "COCO_train2014_000000000001.jpg"},
        "items": [
            {"task": "box", "query": "man on the left", "boxes": [[10, 20, 110.004, 220]], "label": "person"},
            {"task": "point", "query": "the cup", "points": [[1, 2], [640, 480]]},
            {"task": "trace", "query": "move", "trace": [[0, 0], [5.5, 6.25]]},
            {"task": "vqa", "conversation": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]},
        ],
    }
    base.update(over)
    return base


def test_valid_record_agrees_with_json_schema():
    schema = json.loads((ROOT / "schemas" / "grounding.v1.schema.json").read_text())
    record = GroundingRecord.model_validate(_record_dict())
    jsonschema.validate(json.loads(record.to_json_bytes()), schema)
    assert record.num_pairs() == 4
    assert record.items[0].boxes == [[10.0, 20.0, 110.0, 220.0]]  # rounded to 2 decimals


def test_json_is_deterministic_sorted_and_compact():
    a = GroundingRecord.model_validate(_record_dict()).to_json_bytes()
    b = GroundingRecord.model_validate(json.loads(a)).to_json_bytes()
    assert a == b
    assert list(json.loads(a)) == sorted(json.loads(a))
    assert b" " not in a.replace(b"man on the left", b"").replace(b"the cup", b"")


@pytest.mark.parametrize(
    "bad",
    [
        {"key": "has.dot"},
        {"key": "has/slash"},
        {"items": []},
        {"items": [{"task": "box", "query": "q", "boxes": [[10, 10, 5, 20]]}]},  # x1 > x2
        {"items": [{"task": "box", "query": "q", "boxes": [[0, 0, 641, 10]]}]},  # outside
        {"items": [{"task": "box", "query": "q", "boxes": [[0, 0, float("nan"), 10]]}]},
        {"items": [{"task": "point", "query": "q", "points": [[-1, 3]]}]},
        {"items": [{"task": "trace", "query": "q", "trace": [[1, 1]]}]},  # one point is no trace
        {"items": [{"task": "vqa", "conversation": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}]}]},
        {"items": [{"task": "bogus", "query": "q"}]},
        {"image": None},  # box items need an image
        {"schema": "grounding/v2"},
    ],
)
def test_invalid_records_are_rejected(bad):
    with pytest.raises(ValidationError):
        GroundingRecord.model_validate(_record_dict(**bad))


def test_text_only_vqa_record_keeps_explicit_null_image():
    record = GroundingRecord.model_validate(
        _record_dict(image=None, items=[_record_dict()["items"][3]]),
    )
    assert json.loads(record.to_json_bytes())["image"] is None


def test_additive_fields_survive_round_trip():
    data = _record_dict()
    data["items"][0]["meta"] = {"clipped": True}
    data["extra_top"] = {"note": 1}
    out = json.loads(GroundingRecord.model_validate(data).to_json_bytes())
    assert out["extra_top"] == {"note": 1} and out["items"][0]["meta"] == {"clipped": True}


def test_make_record_helper_matches_image_header():
    image = make_image(33, 21, "PNG")
    record = make_record("k1", image, [{"task": "box", "query": "q", "boxes": [[0, 0, 33, 21]]}])
    assert (record.image.width, record.image.height, record.image.format) == (33, 21, "png")
