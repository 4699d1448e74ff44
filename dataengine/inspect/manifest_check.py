"""Whether a folder's `manifest.parquet` describes exactly the tars found there (then it may stand in for them)."""

from __future__ import annotations

from pathlib import Path

from dataengine.shards.grounding import MANIFEST_NAME, MANIFEST_SCHEMA


def usable_manifest(root: Path, shard_names: list[str]) -> tuple[Path | None, str | None]:
    """(manifest path, None) when `root/manifest.parquet` lists exactly these shards (by relative path or by file
    name); (None, why) when it exists but does not; (None, None) when there is none."""
    import polars as pl

    manifest = root / MANIFEST_NAME
    if not root.is_dir() or not manifest.is_file():
        return None, None
    try:
        frame = pl.scan_parquet(manifest)
        missing_columns = sorted(set(MANIFEST_SCHEMA) - set(frame.collect_schema().names()))
        if missing_columns:
            return None, f"{MANIFEST_NAME} lacks columns {missing_columns}; reading the tars instead"
        listed = set(frame.select(pl.col("shard").unique()).collect().to_series().to_list())
    except (pl.exceptions.PolarsError, OSError) as exc:
        return None, f"{MANIFEST_NAME} is unreadable ({exc}); reading the tars instead"
    found = set(shard_names)
    if listed == found or listed == {Path(n).name for n in found}:
        return manifest, None
    missing = len(listed - found - {Path(n).name for n in found})
    extra = len({n for n in found if n not in listed and Path(n).name not in listed})
    return None, (
        f"{MANIFEST_NAME} does not match the tars here ({missing} listed shards missing, {extra} tars not listed); "
        "reading the tars instead"
    )
