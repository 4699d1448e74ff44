"""Record models (the one definition of each on-disk record) and their JSON Schemas."""

from dataengine.records.grounding import (
    SCHEMA_NAME,
    BoxItem,
    GroundingRecord,
    ImageInfo,
    PointItem,
    TraceItem,
    Turn,
    VqaItem,
)

__all__ = [
    "SCHEMA_NAME",
    "BoxItem",
    "GroundingRecord",
    "ImageInfo",
    "PointItem",
    "TraceItem",
    "Turn",
    "VqaItem",
]
