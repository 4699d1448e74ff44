"""ShareRobot (RoboBrain) trajectory and affordance annotations -> `trace` and `box` items.

Trajectory rows give end-effector points in pixels of the original frame (`meta_data.original_width/height`);
when the stored image has another size they are rescaled and the item says so. Points slightly off the image
(within TRACE_CLIP_FRACTION of its longer side) are clipped, farther ones dropped; the item's `meta` lists the
indices of both, and a trace left with fewer than two points is quarantined. Affordance rows give an xywh box,
which becomes a clipped xyxy `box` item. A file named `test.json` is split test, every other file train.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dataengine.converters.base import Converter, Output, Reject, Sample, TaskStats
from dataengine.converters.common import (
    ImageProblem,
    image_info,
    make_key,
    read_image_under,
    slug,
)
from dataengine.errors import InputError
from dataengine.geometry import clip_box_xyxy, round_coords, xywh_to_xyxy

KINDS = ("trajectory", "affordance")
ROWS_PER_PARTITION = 1_000
TRACE_CLIP_FRACTION = 0.02  # points at most 2% of the image's longer side outside it are clipped, others dropped


class ShareRobotConverter(Converter):
    name = "sharerobot"
    slug = "sharerobot"
    license = "ShareRobot (BAAI/ShareRobot; benchmark split apache-2.0); frames from Open X-Embodiment datasets"
    layout = (
        "--input: the ShareRobot root holding trajectory/*.json (+ trajectory/images/) and/or affordance/*.json (+ "
        "affordance/images/); rows {id, image, meta_data{original_width, original_height}, instruction, points | "
        "affordance{x, y, width, height}}, image paths relative to <kind>/images/. A file named test.json gives split "
        "test, others train."
    )

    def json_files(self) -> list[tuple[str, Path]]:
        """(kind, file) for every annotation JSON, trajectory first, files sorted by name."""
        found = []
        for kind in KINDS:
            folder = self.input_path / kind
            if folder.is_dir():
                found += [(kind, p) for p in sorted(folder.glob("*.json"))]
        return found

    def check(self) -> None:
        super().check()
        if not self.json_files():
            raise InputError(
                f"{self.name}: no trajectory/*.json or affordance/*.json under {self.input_path}.\n{self.layout}"
            )

    def fingerprint_files(self) -> list[Path]:
        return [p for _, p in self.json_files()]

    def plan(self) -> list[dict[str, Any]]:
        partitions = []
        budget = self.options.limit
        skipped = 0
        for kind, path in self.json_files():
            rows = self.files.load_json(path)
            if not isinstance(rows, list):
                raise InputError(f"{path}: expected a JSON list of {kind} rows, got {type(rows).__name__}")
            split = "test" if path.stem == "test" else "train"
            if not self.wants_split(split):
                skipped += len(rows)
                continue
            if budget is not None:
                rows, budget = rows[:budget], budget - min(budget, len(rows))
            for start in range(0, len(rows), ROWS_PER_PARTITION):
                partitions.append(
                    {
                        "kind": kind,
                        "file": path.name,
                        "split": split,
                        "first": start,
                        "rows": rows[start : start + ROWS_PER_PARTITION],
                    }
                )
        if partitions and skipped:
            partitions[0]["skipped_in_plan"] = {"split_not_selected": skipped}
        return partitions

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:
        kind = partition["kind"]
        folder = self.input_path / kind
        images_root = folder / "images" if (folder / "images").is_dir() else folder
        for offset, row in enumerate(partition["rows"]):
            stats.read += 1
            yield from self._row_sample(partition, partition["first"] + offset, row, images_root, stats)

    def _row_sample(self, partition, index: int, row: Any, images_root: Path, stats: TaskStats) -> Iterator[Output]:
        kind = partition["kind"]
        source_id = f"{kind}/{partition['file']}#{index}"
        if not isinstance(row, dict):
            yield Reject(source_id, "malformed_row", f"row is {type(row).__name__}, not a dict")
            return
        if row.get("id") is not None:
            source_id += f":{row['id']}"
        instruction = row.get("instruction").strip() if isinstance(row.get("instruction"), str) else ""
        if not instruction:
            yield Reject(source_id, "empty_query", f"instruction is {row.get('instruction')!r}")
            return
        image = row.get("image")
        image = image[0] if isinstance(image, list) and image else image
        if not isinstance(image, str):
            image = row.get("id") if isinstance(row.get("id"), str) else ""
        if not image.strip():
            yield Reject(source_id, "missing_image", f"the row names no image (image is {row.get('image')!r})")
            return
        try:
            rel, data = read_image_under(self.files, images_root, image)
            info = image_info(data, f"{kind}/{rel}")
        except ImageProblem as exc:
            yield Reject(source_id, exc.reason, str(exc))
            return
        if kind == "trajectory":
            item, problem = self._trace_item(row, instruction, info, source_id, stats)
        else:
            item, problem = self._box_item(row, instruction, info, source_id, stats)
        if problem is not None:
            yield Reject(source_id, *problem)
            return
        record = self.record(
            make_key(self.slug, kind, slug(Path(partition["file"]).stem, 20), f"{index:06d}"),
            partition["split"],
            info,
            [item],
        )
        yield Sample(record, data, [source_id])

    def _trace_item(self, row, instruction, info, source_id, stats: TaskStats):
        points = row.get("points")
        if not isinstance(points, list) or not all(_is_xy(p) for p in points):
            return None, ("bad_trace", "points must be a list of [x, y] numbers")
        width, height = info["width"], info["height"]
        meta: dict[str, Any] = {}
        scale_x, scale_y = _frame_scale(row, width, height)
        if (scale_x, scale_y) != (1.0, 1.0):
            meta["rescaled_from"] = [row["meta_data"]["original_width"], row["meta_data"]["original_height"]]
        tolerance = TRACE_CLIP_FRACTION * max(width, height)
        trace, clipped, dropped = [], [], []
        for i, (x, y) in enumerate(points):
            px, py = x * scale_x, y * scale_y
            if 0 <= px <= width and 0 <= py <= height:
                trace.append(round_coords([px, py]))
            elif -tolerance <= px <= width + tolerance and -tolerance <= py <= height + tolerance:
                trace.append(round_coords([min(max(px, 0.0), width), min(max(py, 0.0), height)]))
                clipped.append(i)
            else:
                dropped.append(i)
        if clipped:
            meta["clipped_points"] = clipped
            stats.count("clipped_trace_points", len(clipped))
        if dropped:
            meta["dropped_points"] = dropped
            stats.count("dropped_trace_points", len(dropped))
        if len(trace) < 2:
            return None, ("trace_too_short", f"{len(trace)} of {len(points)} points left on the image")
        if isinstance(row.get("meta_data"), dict) and row["meta_data"].get("original_dataset"):
            meta["original_dataset"] = row["meta_data"]["original_dataset"]
        item = {
            "task": "trace",
            "query": instruction,
            "query_kind": "instruction",
            "trace": trace,
            "source_id": source_id,
            "meta": meta or None,
        }
        return item, None

    def _box_item(self, row, instruction, info, source_id, stats: TaskStats):
        box = row.get("affordance")
        keys = ("x", "y", "width", "height")
        if not isinstance(box, dict) or not all(_is_number(box.get(k)) for k in keys):
            return None, ("bad_box", f"affordance {box!r} is not {{x, y, width, height}}")
        scale_x, scale_y = _frame_scale(row, info["width"], info["height"])
        x, y, w, h = box["x"] * scale_x, box["y"] * scale_y, box["width"] * scale_x, box["height"] * scale_y
        if w <= 0 or h <= 0:
            return None, ("bad_box", f"affordance {box!r} has no area")
        clipped_box, clipped = clip_box_xyxy(xywh_to_xyxy([x, y, w, h]), info["width"], info["height"])
        if clipped_box is None:
            return None, ("box_outside_image", f"affordance {box!r} lies outside the image")
        meta: dict[str, Any] = {"kind": "affordance"}
        if clipped:
            stats.count("clipped_boxes")
            meta["clipped"] = True
        if (scale_x, scale_y) != (1.0, 1.0):
            meta["rescaled_from"] = [row["meta_data"]["original_width"], row["meta_data"]["original_height"]]
        item = {
            "task": "box",
            "query": instruction,
            "query_kind": "instruction",
            "boxes": [clipped_box],
            "source_id": source_id,
            "meta": meta,
        }
        return item, None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_xy(point: Any) -> bool:
    return isinstance(point, list | tuple) and len(point) == 2 and all(_is_number(v) for v in point)


def _frame_scale(row: dict, width: int, height: int) -> tuple[float, float]:
    """Factors from the annotated frame (meta_data.original_width/height) to the stored image."""
    meta = row.get("meta_data")
    if not isinstance(meta, dict):
        return 1.0, 1.0
    original_w, original_h = meta.get("original_width"), meta.get("original_height")
    if not (_is_number(original_w) and _is_number(original_h)) or original_w <= 0 or original_h <= 0:
        return 1.0, 1.0
    return width / original_w, height / original_h
