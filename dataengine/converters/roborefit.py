"""RoboRefIt (VL-Grasp) -> one sample per RGB image: a `box` and a `point` item per referring expression.

Rows of `final_dataset/<split>/roborefit_<split>.json` name their files with Windows backslashes relative to the
data root; they are normalized and must stay inside it. Boxes ([x1, y1, x2, y2] integer pixels, some past the image
edge) are clipped and counted; the point lies inside the object's mask (3-channel PNG, object = any channel > 0);
the scene goes into each item's `meta`.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dataengine.converters.base import Converter, Output, Reject, Sample, TaskStats
from dataengine.converters.common import (
    ImageProblem,
    UnsafePathError,
    image_info,
    make_key,
    read_image_file,
    read_image_under,
    safe_relpath,
)
from dataengine.errors import InputError
from dataengine.geometry import clip_box_xyxy, mask_crop_inner_point
from dataengine.records.query import guess_query_kind

SPLITS = ("train", "testA", "testB")
IMAGES_PER_PARTITION = 200


class RoboRefItConverter(Converter):
    name = "roborefit"
    slug = "roborefit"
    license = "RoboRefIt (luyh20/VL-Grasp, MIT code; data terms per the VL-Grasp release)"
    layout = (
        "--input: the RoboRefIt data root holding final_dataset/{train,testA,testB}/roborefit_<split>.json with "
        "image/, depth/ and mask/<idx>/<k>.png beside them (or the final_dataset folder itself). Paths in the JSON "
        "use Windows backslashes, relative to the data root."
    )

    @property
    def data_root(self) -> Path:
        """The folder the JSON paths are relative to (it holds `final_dataset/`)."""
        if (self.input_path / "final_dataset").is_dir():
            return self.input_path
        return self.input_path.parent  # --input was final_dataset itself

    def split_file(self, split: str) -> Path:
        return self.data_root / "final_dataset" / split / f"roborefit_{split}.json"

    def check(self) -> None:
        super().check()
        if not any(self.split_file(s).is_file() for s in SPLITS):
            expected = ", ".join(str(self.split_file(s)) for s in SPLITS)
            raise InputError(f"{self.name}: found none of {expected}.\n{self.layout}")

    def fingerprint_files(self) -> list[Path]:
        return [self.split_file(s) for s in SPLITS if self.split_file(s).is_file()]

    def plan(self) -> list[dict[str, Any]]:
        partitions: list[dict[str, Any]] = []
        budget = self.options.limit
        skipped = 0
        for split in SPLITS:
            path = self.split_file(split)
            if not path.is_file():
                continue
            rows = self.files.load_json(path)
            if not isinstance(rows, list):
                raise InputError(f"{path}: expected a JSON list of expression rows, got {type(rows).__name__}")
            if not self.wants_split(split):
                skipped += len(rows)
                continue
            by_image: dict[str, list[dict]] = defaultdict(list)
            malformed = []
            for index, row in enumerate(rows):
                if isinstance(row, dict) and isinstance(row.get("rgb_path"), str):
                    by_image[row["rgb_path"].replace("\\", "/")].append({**row, "_index": index})
                else:
                    malformed.append({"index": index, "row": repr(row)[:200]})
            images = sorted(by_image)
            if budget is not None:
                images, budget = images[:budget], budget - min(budget, len(images))
            chunks = [images[i : i + IMAGES_PER_PARTITION] for i in range(0, len(images), IMAGES_PER_PARTITION)]
            for n, chunk in enumerate(chunks or [[]]):
                part = {"split": split, "images": [{"rgb_path": k, "rows": by_image[k]} for k in chunk]}
                if n == 0:
                    part["malformed"] = malformed
                if part["images"] or malformed:
                    partitions.append(part)
        if partitions and skipped:
            partitions[0]["skipped_in_plan"] = {"split_not_selected": skipped}
        return partitions

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:
        split = partition["split"]
        for bad in partition.get("malformed", []):
            stats.read += 1
            yield Reject(f"{split}#{bad['index']}", "malformed_row", f"not a dict with an rgb_path: {bad['row']}")
        for entry in partition["images"]:
            rows = sorted(entry["rows"], key=lambda r: (_num(r), r["_index"]))
            stats.read += len(rows)
            yield from self._image_sample(split, entry["rgb_path"], rows, stats)

    def _image_sample(self, split: str, rgb_path: str, rows: list[dict], stats: TaskStats) -> Iterator[Output]:
        ids = [f"{split}#num={_num(r)}" for r in rows]
        try:
            rel, data = read_image_under(self.files, self.data_root, rgb_path)
            info = image_info(data, rel)
        except ImageProblem as exc:
            yield from (Reject(i, exc.reason, str(exc)) for i in ids)
            return
        items, used = [], []
        for row, source_id in zip(rows, ids, strict=True):
            outcome = self._row_items(row, source_id, info, stats)
            if isinstance(outcome, Reject):
                yield outcome
                continue
            row_items, rejects = outcome
            yield from rejects
            items.extend(row_items)
            used.append(source_id)
        if items:
            record = self.record(make_key(self.slug, split, Path(rel).stem), split, info, items)
            yield Sample(record, data, used)

    def _row_items(self, row: dict, source_id: str, info: dict, stats: TaskStats):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            return Reject(source_id, "empty_query", f"text is {text!r}")
        bbox = row.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            return Reject(source_id, "bad_box", f"bbox {bbox!r} is not [x1, y1, x2, y2]")
        if not all(math.isfinite(v) for v in bbox):
            return Reject(source_id, "bad_box", f"bbox {bbox!r} is not finite")
        box, clipped = clip_box_xyxy(bbox, info["width"], info["height"])
        if box is None:
            return Reject(source_id, "box_outside_image", f"bbox {bbox!r} leaves no area in the image")
        if clipped:
            stats.count("clipped_boxes")
        meta = {"scene": row["scene"]} if isinstance(row.get("scene"), str) else {}
        if clipped:
            meta["clipped_from"] = [float(v) for v in bbox]
        query = {"query": text.strip(), "query_kind": guess_query_kind(text)}  # RoboRefIt mixes both kinds
        box_item = {"task": "box", **query, "boxes": [box], "source_id": source_id, "meta": meta or None}
        label = row.get("class")
        if isinstance(label, str) and label:
            box_item["label"] = label
        items, rejects = [box_item], []
        point, problem = self._mask_point(row, info)
        if problem is not None:
            rejects.append(Reject(source_id, problem[0], problem[1], scope="item"))
        elif point is None:
            stats.count("empty_masks")
        else:
            point_meta = {**meta, "mask": safe_relpath(row["mask_path"])}
            point_meta.pop("clipped_from", None)
            point_item = {"task": "point", **query, "points": [point], "source_id": source_id}
            point_item["meta"] = point_meta
            if "label" in box_item:
                point_item["label"] = box_item["label"]
            items.append(point_item)
        return items, rejects

    def _mask_point(self, row: dict, info: dict) -> tuple[list[float] | None, tuple[str, str] | None]:
        """(inner point of the row's mask, None) or (None, (reason, detail)) when the mask cannot be used."""
        from PIL import Image

        try:
            rel = safe_relpath(row.get("mask_path"))
        except UnsafePathError as exc:
            return None, ("unsafe_path", str(exc))
        try:
            data = read_image_file(self.files, self.data_root / rel)
            with Image.open(io.BytesIO(data)) as im:
                pixels = np.asarray(im)
        except ImageProblem as exc:
            reason = "missing_mask_file" if exc.reason == "missing_image_file" else "unreadable_mask"
            return None, (reason, str(exc))
        except Exception as exc:  # PIL raises several types for garbage
            return None, ("unreadable_mask", f"{rel}: {exc}")
        mask = pixels.any(axis=2) if pixels.ndim == 3 else pixels > 0
        if mask.shape != (info["height"], info["width"]):
            size = f"{mask.shape[1]}x{mask.shape[0]}"
            return None, ("mask_size_mismatch", f"{rel} is {size}, image is {info['width']}x{info['height']}")
        return mask_crop_inner_point(mask), None


def _num(row: dict) -> Any:
    num = row.get("num")
    return num if isinstance(num, int) else row.get("_index")
