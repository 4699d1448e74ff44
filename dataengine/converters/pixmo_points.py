"""PixMo-Points -> `point` items, one sample per image (rows of the same image in a partition are merged).

Images are not in the release (it lists URLs and SHA-256 hashes): they come from a local folder of files named by
their SHA-256 (any extension) or from a mapping file (image_sha256 or image_url -> path). The bytes must hash to
the row's SHA-256. The coordinate scale is decided per parquet file from the data, because the card says pixels
while Molmo's loader treats the values as 0-100 percent: a file whose largest coordinate exceeds 100 is in pixels,
otherwise in percent of the image size. The decision and the maximum seen go into the report and every item.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from dataengine.converters.base import Converter, ImagesOption, Output, Reject, Sample, TaskStats
from dataengine.converters.common import (
    ImageProblem,
    image_info,
    make_key,
    read_image_under,
)
from dataengine.errors import InputError
from dataengine.geometry import point_inside, round_coords

ROWS_PER_PARTITION = 5_000
MAPPING_NAMES = ("mapping.jsonl", "mapping.json", "mapping.csv", "mapping.tsv")
PERCENT_MAX = 100.0  # a file whose coordinates never exceed this is read as percent
CLIP_TOLERANCE_PX = 1.0  # points at most this far outside the image are clipped, farther ones rejected
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class PixmoPointsOptions(ImagesOption):
    """pixmo-points options: the folder or mapping file of the downloaded images."""


class PixmoPointsConverter(Converter):
    name = "pixmo-points"
    slug = "pixmo_points"
    license = "ODC-BY-1.0 (allenai/pixmo-points); images under their own terms"
    layout = (
        "--input: PixMo-Points parquet (a file, or a folder such as data/train-0000k-of-0000N.parquet) or JSONL with "
        "image_url, image_sha256, points[{x, y}], count, label, collection_method. --images: a folder of the "
        "downloaded images named <image_sha256> (any extension), or a mapping file (or a folder holding "
        "mapping.jsonl/.json/.csv/.tsv) with columns image_sha256 or image_url, and path."
    )
    Options = PixmoPointsOptions

    def parquet_files(self) -> list[Path]:
        if self.input_path.is_file():
            return [self.input_path]
        return sorted(self.input_path.rglob("*.parquet"))

    def mapping_file(self) -> Path | None:
        images = Path(self.source_options.images_dir) if self.source_options.images_dir else None
        if images is None:
            return None
        if images.is_file():
            return images
        return next((images / n for n in MAPPING_NAMES if (images / n).is_file()), None)

    def check(self) -> None:
        super().check()
        if not self.parquet_files():
            raise InputError(f"{self.name}: no .parquet files at {self.input_path}.\n{self.layout}")
        if not self.source_options.images_dir or not Path(self.source_options.images_dir).exists():
            raise InputError(
                f"{self.name}: --images is required (a folder of images named by SHA-256, or a mapping file): "
                f"got {self.source_options.images_dir}"
            )

    def fingerprint_files(self) -> list[Path]:
        mapping = self.mapping_file()
        return self.parquet_files() + ([mapping] if mapping else [])

    # --- planning ------------------------------------------------------------------------------------------

    def plan(self) -> list[dict[str, Any]]:

        index, images_root = self._image_index()
        partitions: list[dict[str, Any]] = []
        budget = self.options.limit
        root = self.input_path if self.input_path.is_dir() else self.input_path.parent
        for file_index, path in enumerate(self.parquet_files()):
            parquet = self.files.parquet(path)
            names = set(parquet.schema_arrow.names)
            if not {"points", "label"} <= names or not names & {"image_sha256", "image_url"}:
                raise InputError(
                    f"{path}: expected columns points, label and image_sha256/image_url; found {sorted(names)}"
                )
            scale = _decide_scale(parquet)
            first_row = 0
            groups = list(range(parquet.metadata.num_row_groups))
            while groups and (budget is None or budget > 0):
                chosen, rows = [], 0
                while groups and (
                    not chosen or rows + parquet.metadata.row_group(groups[0]).num_rows <= ROWS_PER_PARTITION
                ):
                    rows += parquet.metadata.row_group(groups[0]).num_rows
                    chosen.append(groups.pop(0))
                max_rows = None
                if budget is not None:
                    max_rows = min(rows, budget)
                    budget -= max_rows
                keys = _image_keys(parquet, chosen)
                partitions.append(
                    {
                        "file": str(path),
                        "file_name": str(path.relative_to(root)),
                        "file_index": file_index,
                        "row_groups": chosen,
                        "first_row": first_row,
                        "max_rows": max_rows,
                        "scale": scale,
                        "images_root": str(images_root),
                        "images": {k: index.get(k) for k in keys},
                    }
                )
                first_row += rows
        return partitions

    def _image_index(self) -> tuple[dict[str, str], Path]:
        """(key -> path relative to the images root, images root); keys are SHA-256 hex digests and URLs."""
        mapping = self.mapping_file()
        if mapping is not None:
            return _read_mapping(mapping, self.files.read_annotation(mapping)), mapping.parent
        root = Path(self.source_options.images_dir)
        index = {}
        for path in sorted(root.rglob("*")):
            stem = path.name.split(".", 1)[0].lower()
            if path.is_file() and _SHA256_RE.match(stem):
                index.setdefault(stem, str(path.relative_to(root)))
        return index, root

    # --- reading -------------------------------------------------------------------------------------------

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:

        scale = partition["scale"]
        stats.decide("coordinate_scale", partition["file_name"], scale)
        parquet = self.files.parquet(partition["file"])
        table = parquet.read_row_groups(partition["row_groups"])
        rows = table.to_pylist()[: partition["max_rows"]] if partition["max_rows"] is not None else table.to_pylist()
        stats.read += len(rows)
        groups: dict[str, list[tuple[int, dict]]] = {}
        for offset, row in enumerate(rows):
            groups.setdefault(_row_key(row), []).append((partition["first_row"] + offset, row))
        for key, members in groups.items():
            yield from self._image_sample(partition, key, members, scale, stats)

    def _image_sample(self, partition, key: str, members, scale: dict, stats: TaskStats) -> Iterator[Output]:
        ids = [f"{partition['file_name']}:{row_number}" for row_number, _ in members]
        rel = partition["images"].get(key)
        if not key or rel is None:
            where = self.source_options.images_dir
            detail = f"no local image for {key or 'a row without image_sha256/image_url'} in {where}"
            yield from (Reject(i, "missing_image_file", detail) for i in ids)
            return
        first = members[0][1]
        try:
            _, data = read_image_under(self.files, Path(partition["images_root"]), rel)
            expected = (first.get("image_sha256") or "").lower()
            if expected and _sha256(data) != expected:
                raise ImageProblem("image_hash_mismatch", f"{rel} does not hash to {expected}")
            info = image_info(data, first.get("image_url") or rel, image_sha256=expected or None)
        except ImageProblem as exc:
            yield from (Reject(i, exc.reason, str(exc)) for i in ids)
            return
        items, used = [], []
        for (_, row), source_id in zip(members, ids, strict=True):
            outcome = self._row_item(row, source_id, info, scale, stats)
            if isinstance(outcome, Reject):
                yield outcome
            elif outcome is not None:
                items.append(outcome)
                used.append(source_id)
        if items:
            record = self.record(
                make_key(self.slug, f"{partition['file_index']:03d}", f"{members[0][0]:08d}"), "train", info, items
            )
            yield Sample(record, data, used)

    def _row_item(self, row: dict, source_id: str, info: dict, scale: dict, stats: TaskStats):
        label = row.get("label").strip() if isinstance(row.get("label"), str) else ""
        if not label:
            return Reject(source_id, "empty_query", f"label is {row.get('label')!r}")
        raw_points = row.get("points") or []
        if not raw_points:
            stats.skip("no_points")  # "there are none" counting rows: no target to ground
            return None
        width, height = info["width"], info["height"]
        factor_x, factor_y = (width / 100.0, height / 100.0) if scale["scale"] == "percent" else (1.0, 1.0)
        points = []
        for point in raw_points:
            x, y = point.get("x"), point.get("y")
            if not isinstance(x, int | float) or not isinstance(y, int | float):
                return Reject(source_id, "bad_point", f"point {point!r} has no numeric x and y")
            px, py = x * factor_x, y * factor_y
            if not point_inside([px, py], width, height):
                if (
                    -CLIP_TOLERANCE_PX <= px <= width + CLIP_TOLERANCE_PX
                    and -CLIP_TOLERANCE_PX <= py <= height + CLIP_TOLERANCE_PX
                ):
                    px, py = min(max(px, 0.0), width), min(max(py, 0.0), height)
                    stats.count("clipped_points")
                else:
                    return Reject(source_id, "point_outside_image", f"({px:.1f}, {py:.1f}) is outside {width}x{height}")
            points.append(round_coords([px, py]))
        meta = {"coordinate_scale": scale["scale"]}
        for name in ("collection_method", "count"):
            if row.get(name) is not None:
                meta[name] = row[name]
        return {
            "task": "point",
            "query": label,
            "query_kind": "expression",
            "points": points,
            "label": label,
            "source_id": source_id,
            "meta": meta,
        }


def _row_key(row: dict) -> str:
    sha = row.get("image_sha256")
    if isinstance(sha, str) and sha:
        return sha.lower()
    url = row.get("image_url")
    return url if isinstance(url, str) else ""


def _image_keys(parquet, row_groups: list[int]) -> list[str]:
    columns = [c for c in ("image_sha256", "image_url") if c in parquet.schema_arrow.names]
    rows = parquet.read_row_groups(row_groups, columns=columns).to_pylist()
    return sorted({_row_key(r) for r in rows} - {""})


def _decide_scale(parquet) -> dict[str, Any]:
    """{"scale": "pixels" | "percent", "max_coordinate": m}: pixels when any x or y exceeds 100."""
    import pyarrow.compute as pc

    points = parquet.read(columns=["points"]).column("points").combine_chunks()
    flat = pc.list_flatten(points)
    values = [pc.max(pc.struct_field(flat, name)).as_py() if len(flat) else None for name in ("x", "y")]
    values = [v for v in values if v is not None]
    maximum = max(values) if values else None
    scale = "pixels" if maximum is not None and maximum > PERCENT_MAX else "percent"
    return {"scale": scale, "max_coordinate": maximum, "rule": f"max > {PERCENT_MAX:g} means pixels"}


def _read_mapping(path: Path, text: bytes) -> dict[str, str]:
    """Mapping rows (image_sha256 and/or image_url, path) -> {key: path}; JSON, JSONL, CSV or TSV."""
    if path.suffix == ".jsonl":
        rows = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    elif path.suffix == ".json":
        data = orjson.loads(text)
        rows = [{"image_sha256": k, "path": v} for k, v in data.items()] if isinstance(data, dict) else data
    else:
        dialect = "excel-tab" if path.suffix == ".tsv" else "excel"
        rows = list(csv.DictReader(io.StringIO(text.decode("utf-8")), dialect=dialect))
    index = {}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("path"), str):
            raise InputError(f"{path}: every mapping row needs a 'path' and an image_sha256 or image_url")
        for name in ("image_sha256", "image_url"):
            key = row.get(name)
            if isinstance(key, str) and key:
                index.setdefault(key.lower() if name == "image_sha256" else key, row["path"])
    return index


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
