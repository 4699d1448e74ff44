"""Tar writing and reading, manifests and sidecar indexes. The one place shards are made."""

from dataengine.shards.grounding import (
    MANIFEST_NAME,
    GroundingSample,
    GroundingShardWriter,
    iter_grounding,
    manifest_rows,
    merge_manifests,
    write_manifest,
)
from dataengine.shards.index import read_sample, sample_table, scan_tar
from dataengine.shards.reader import iter_samples, iter_shard_set, list_shards
from dataengine.shards.writer import ShardInfo, ShardWriter, index_path

__all__ = [
    "MANIFEST_NAME",
    "GroundingSample",
    "GroundingShardWriter",
    "ShardInfo",
    "ShardWriter",
    "index_path",
    "iter_grounding",
    "iter_samples",
    "iter_shard_set",
    "list_shards",
    "manifest_rows",
    "merge_manifests",
    "read_sample",
    "sample_table",
    "scan_tar",
    "write_manifest",
]
