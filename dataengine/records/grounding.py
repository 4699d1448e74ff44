"""The canonical grounding record, `grounding/v1`: one image plus every QA item about it.

This model is the single definition of the record. `schemas/grounding.v1.schema.json` is generated from it
(`python -m dataengine.records.schemas --write`) and a test checks that both agree.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from dataengine.geometry import COORD_DECIMALS
from dataengine.records.query import QueryKind

SCHEMA_NAME = "grounding/v1"
KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$"  # dot-free, slash-free, fits a USTAR member name

# Pixel coordinates: finite floats, rounded to 2 decimals on the way in.
Coord = Annotated[float, Field(allow_inf_nan=False, strict=False), AfterValidator(lambda v: round(v, COORD_DECIMALS))]
Box = Annotated[list[Coord], Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] pixels")]
Point = Annotated[list[Coord], Field(min_length=2, max_length=2, description="[x, y] pixels")]


class _Model(BaseModel):
    # Additive fields are allowed (and kept); renaming the documented ones is not.
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=False)


class ImageInfo(_Model):
    """The stored image: its size in pixels, the SHA-1 of its exact bytes and where it came from."""

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    sha1: str = Field(pattern=r"^[0-9a-f]{40}$")
    origin: str = Field(description="path or id of the image in its source dataset")
    format: Literal["jpeg", "png", "webp"] | None = Field(default=None, description="encoded format of the bytes")
    coco_image_id: int | None = Field(default=None, description="the COCO image id, where the source gives one")
    image_sha256: str | None = Field(default=None, description="the source's own SHA-256 of the image (PixMo)")


class _Item(_Model):
    source_id: str | None = None
    meta: dict[str, Any] | None = Field(default=None, description="converter notes, e.g. clipped or dropped points")


class _SpatialItem(_Item):
    query: str = Field(min_length=1)
    query_kind: QueryKind | None = Field(
        default=None,
        description="expression: a noun phrase that question templates wrap; instruction: a full instruction or "
        "question used as written. Absent in records written before the field existed (readers guess it).",
    )
    label: str | None = Field(default=None, description="a short name of the target (a category or phrase)")


class BoxItem(_SpatialItem):
    task: Literal["box"]
    boxes: list[Box] = Field(min_length=1)


class PointItem(_SpatialItem):
    task: Literal["point"]
    points: list[Point] = Field(min_length=1)


class TraceItem(_SpatialItem):
    task: Literal["trace"]
    trace: list[Point] = Field(min_length=2)


class Turn(_Model):
    from_: Literal["human", "gpt"] = Field(alias="from")
    value: str


class VqaItem(_Item):
    task: Literal["vqa"]
    conversation: list[Turn] = Field(min_length=2)

    @field_validator("conversation")
    @classmethod
    def _has_pair(cls, turns: list[Turn]) -> list[Turn]:
        if count_conversation_pairs(turns) == 0:
            raise ValueError("a vqa conversation needs at least one human turn followed by a gpt turn")
        return turns


Item = Annotated[BoxItem | PointItem | TraceItem | VqaItem, Field(discriminator="task")]
TASKS = ("box", "point", "trace", "vqa")


def count_conversation_pairs(turns: list[Turn]) -> int:
    """Human->gpt turn pairs in a conversation."""
    return sum(1 for a, b in pairwise(turns) if a.from_ == "human" and b.from_ == "gpt")


class GroundingRecord(_Model):
    """One WebDataset sample: the image bytes live in the sibling `.jpg`/`.png` member, this is its `.json`."""

    schema_: Literal["grounding/v1"] = Field(default=SCHEMA_NAME, alias="schema")
    key: str = Field(pattern=KEY_PATTERN)
    source: str = Field(min_length=1)
    split: str = Field(min_length=1)
    license: str = Field(min_length=1)
    image: ImageInfo | None = Field(description="null only for text-only vqa samples")
    items: list[Item] = Field(min_length=1)

    @model_validator(mode="after")
    def _inside_image(self) -> GroundingRecord:
        if self.image is None:
            bad = [i for i, it in enumerate(self.items) if it.task != "vqa"]
            if bad:
                raise ValueError(f"items {bad} need an image but the record has image: null")
            return self
        w, h = self.image.width, self.image.height
        for idx, item in enumerate(self.items):
            if isinstance(item, BoxItem):
                for box in item.boxes:
                    x1, y1, x2, y2 = box
                    if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
                        raise ValueError(f"item {idx}: box {box} is empty or outside the {w}x{h} image")
            elif isinstance(item, PointItem | TraceItem):
                pts = item.points if isinstance(item, PointItem) else item.trace
                for x, y in pts:
                    if not (0 <= x <= w and 0 <= y <= h):
                        raise ValueError(f"item {idx}: point {[x, y]} is outside the {w}x{h} image")
        return self

    def num_pairs(self) -> int:
        """A pair is one box/point/trace item or one human->gpt turn of a vqa item."""
        return sum(item_pairs(it) for it in self.items)

    def to_json_bytes(self) -> bytes:
        """Deterministic JSON (sorted keys, no whitespace, UTF-8); absent optional fields are omitted."""
        data = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        data["image"] = data.get("image")  # text-only samples keep an explicit null
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json_bytes(cls, data: bytes) -> GroundingRecord:
        return cls.model_validate_json(data)


def item_pairs(item: BoxItem | PointItem | TraceItem | VqaItem) -> int:
    if isinstance(item, VqaItem):
        return count_conversation_pairs(item.conversation)
    return 1


TARGET_FIELDS = {"box": "boxes", "point": "points", "trace": "trace"}  # task -> the field holding its targets


def item_targets(item: BoxItem | PointItem | TraceItem | VqaItem) -> int:
    """Number of coordinate targets of an item (boxes, points or trace points; pairs for vqa)."""
    if isinstance(item, VqaItem):
        return count_conversation_pairs(item.conversation)
    return len(getattr(item, TARGET_FIELDS[item.task]))


def hf_features():
    """Hugging Face `datasets` features for grounding/v1 shards: every field of the record, images as `Image`.

    Pass them to `datasets.load_dataset("webdataset", data_files=..., features=hf_features())`: without them,
    `datasets` infers types from the first five samples and drops what those lack (a `.png` column when they are
    `.jpg`, item kinds they do not hold). Free-form item `meta` is kept as its exact JSON text (`json.loads` it):
    `Json(decode=False)`, because `datasets` decodes `Json` columns with a parser that may change a float's last
    digit. A test checks that these features name every field of the record models.
    """
    from datasets import Features, Image, Json, List, Value

    turn = {"from": Value("string"), "value": Value("string")}
    coords = List(List(Value("float64")))
    item = {
        "task": Value("string"),
        "query": Value("string"),
        "query_kind": Value("string"),
        "label": Value("string"),
        "source_id": Value("string"),
        "boxes": coords,
        "points": coords,
        "trace": coords,
        "conversation": List(turn),
        "meta": Json(decode=False),
    }
    record = {
        "schema": Value("string"),
        "key": Value("string"),
        "source": Value("string"),
        "split": Value("string"),
        "license": Value("string"),
        "image": {
            "width": Value("int64"),
            "height": Value("int64"),
            "sha1": Value("string"),
            "origin": Value("string"),
            "format": Value("string"),
            "coco_image_id": Value("int64"),
            "image_sha256": Value("string"),
        },
        "items": List(item),
    }
    return Features(
        {
            "__key__": Value("string"),
            "__url__": Value("string"),
            "jpg": Image(),
            "png": Image(),
            "webp": Image(),
            "json": record,
        }
    )
