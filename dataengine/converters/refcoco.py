"""RefCOCO / RefCOCO+ / RefCOCOg in the `refer` layout -> one sample per (COCO image, split).

Each sample holds every referring expression of the image in that split: one `box` item per sentence (query = the
raw sentence, label = COCO category) and one `point` item per referred object, placed inside its segmentation.
Refs pickles are loaded with the restricted unpickler; COCO xywh boxes become xyxy, clipped to the image.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dataengine.converters.base import Converter, ImagesOption, Output, Reject, Sample, SplitByOption, TaskStats
from dataengine.converters.common import (
    ImageProblem,
    UnsafePathError,
    coco_image_id,
    image_info,
    make_key,
    read_image_file,
    safe_relpath,
)
from dataengine.converters.files import InputFiles
from dataengine.converters.refcoco_parquet import (
    COCO_CATEGORIES,
    EVAL_COLUMNS,
    EVAL_OPTIONAL,
    EVAL_SCHEME,
    REFS_COLUMNS,
    REFS_OPTIONAL,
    dataset_named,
    detect_layout,
    eval_row,
    file_split,
    parquet_files,
    refs_row,
)
from dataengine.converters.safe_pickle import safe_loads
from dataengine.errors import InputError
from dataengine.geometry import (
    clip_box_xyxy,
    coco_segmentation_to_mask,
    mask_crop_inner_point,
    polygon_inner_points,
    xywh_to_xyxy,
)

IMAGES_PER_PARTITION = 250
_FAKE_SUFFIX_RE = re.compile(r"^(?P<stem>.*_\d{12})_\d+(?P<ext>\.[A-Za-z]+)$")
IMAGE_DIR_CANDIDATES = (
    "images/mscoco/images/train2014",
    "images/train2014",
    "train2014",
    "images/train2017",
    "train2017",
)
SPLIT_ORDER = {"train": 0, "val": 1, "test": 2, "testA": 3, "testB": 4, "testC": 5}


def strip_fake_suffix(file_name: str) -> str:
    """refs' `file_name` is not a real file: `COCO_train2014_000000460986_3.jpg` -> `..._000000460986.jpg`."""
    match = _FAKE_SUFFIX_RE.match(file_name)
    return f"{match['stem']}{match['ext']}" if match else file_name


def image_file_candidates(image_id: int, instances_name: str | None, ref_name: str | None) -> list[str]:
    """Relative names to try in the images folder: COCO train2014 names first, then train2017 (`<id:012d>.jpg`)."""
    names = [n for n in (instances_name, strip_fake_suffix(ref_name) if ref_name else None) if n]
    names += [f"COCO_train2014_{image_id:012d}.jpg", f"{image_id:012d}.jpg"]
    return list(dict.fromkeys(names))


REFER_DATASETS = ("refcoco", "refcoco+", "refcocog")  # folder names of lichengunc/refer's data/


class RefCocoOptions(ImagesOption, SplitByOption):
    """refcoco options: the COCO image folder and the split scheme."""


class RefCocoConverter(Converter):
    name = "refcoco"
    slug = "refcoco"
    dataset_dir = "refcoco"
    split_schemes = ("unc", "google")
    license = "RefCOCO annotations (lichengunc/refer, Apache-2.0 code); COCO images under their Flickr terms"
    layout = (
        "--input: the `refer` data root holding refcoco/{instances.json, refs(unc).p, refs(google).p}, "
        "refcoco+/{instances.json, refs(unc).p}, refcocog/{instances.json, refs(umd).p, refs(google).p} (or one of "
        "those folders). --images: COCO train2014 (COCO_train2014_<12-digit id>.jpg) or train2017 (<12-digit "
        "id>.jpg); default <input>/images/mscoco/images/train2014. --split-by unc|google (refcoco), unc (refcoco+), "
        "umd|google (refcocog). Pickles load through a restricted unpickler. Or --input: a Hugging Face download "
        "(<folder>/data/<split>-0000k-of-0000N.parquet) of jxu124/refcoco, refcocoplus or refcocog (one row per "
        "ref, xyxy boxes; --images as above) or of lmms-lab/RefCOCO, RefCOCOplus or RefCOCOg (images embedded)."
    )
    Options = RefCocoOptions

    # --- layout --------------------------------------------------------------------------------------------

    @property
    def hf_files(self) -> list[Path]:
        """The parquet files of a Hugging Face download given as --input (empty for the refer layout)."""
        if not hasattr(self, "_hf_files"):
            self._hf_files = parquet_files(self.input_path)
        return self._hf_files

    @property
    def hf_layout(self) -> str | None:
        """`refs` (jxu124), `eval` (lmms-lab) or None (the refer layout)."""
        if not hasattr(self, "_hf_layout"):
            self._hf_layout = detect_layout(self.files, self.hf_files, self.name) if self.hf_files else None
        return self._hf_layout

    @property
    def split_by(self) -> str | None:
        """The split scheme: as asked (refer layout), the release's own (jxu124: unc, umd), or `lmms-eval`."""
        return EVAL_SCHEME if self.hf_layout == "eval" else super().split_by

    @property
    def dataset_root(self) -> Path:
        nested = self.input_path / self.dataset_dir
        return nested if nested.is_dir() else self.input_path

    @property
    def refs_path(self) -> Path:
        return self.dataset_root / f"refs({self.split_by}).p"

    @property
    def instances_path(self) -> Path:
        return self.dataset_root / "instances.json"

    def images_root(self) -> Path:
        if self.source_options.images_dir:
            return Path(self.source_options.images_dir)
        for rel in IMAGE_DIR_CANDIDATES:
            if (self.input_path / rel).is_dir():
                return self.input_path / rel
        raise InputError(
            f"{self.name}: no COCO image folder found under {self.input_path} "
            f"(tried {', '.join(IMAGE_DIR_CANDIDATES)}); pass --images pointing to COCO train2014 or train2017"
        )

    def check(self) -> None:
        super().check()
        if self.hf_files:
            self._check_hf()
            return
        other = self.input_path.name in REFER_DATASETS and self.input_path.name != self.dataset_dir
        if other and not (self.input_path / self.dataset_dir).is_dir():
            raise InputError(
                f"{self.name}: --input {self.input_path} is the {self.input_path.name} folder of the refer data; "
                f"point it at the {self.dataset_dir} folder or at the data folder that holds it"
            )
        if not self.refs_path.is_file() or not self.instances_path.is_file():
            present = sorted(p.name for p in self.dataset_root.glob("*")) if self.dataset_root.is_dir() else []
            raise InputError(
                f"{self.name}: expected {self.refs_path} and {self.instances_path}; found {present or 'nothing'}.\n"
                f"{self.layout}"
            )
        images = self.images_root()
        if not images.is_dir():
            raise InputError(f"{self.name}: --images {images} is not a directory")

    def _check_hf(self) -> None:
        asked = getattr(self.source_options, "split_by", None)
        if asked is not None and asked != self.split_schemes[0]:
            raise InputError(
                f"{self.name}: --split-by {asked} needs the refer layout; the Hugging Face parquet files hold one "
                f"scheme ({self.split_schemes[0]} for jxu124, the evaluation splits for lmms-lab)"
            )
        named = dataset_named(self.input_path)
        if named is not None and named != self.name:
            raise InputError(
                f"{self.name}: --input {self.input_path} is a {named} download; convert it as {named} or point "
                f"--input at the {self.name} folder"
            )
        if self.hf_layout == "refs":
            images = self.images_root()
            if not images.is_dir():
                raise InputError(f"{self.name}: --images {images} is not a directory")

    def fingerprint_files(self) -> list[Path]:
        if self.hf_files:
            return list(self.hf_files)
        return [self.refs_path, self.instances_path]

    # --- planning (driver) ---------------------------------------------------------------------------------

    def plan(self) -> list[dict[str, Any]]:
        if self.hf_files:
            return self._plan_hf()
        refs = safe_loads(self.files.read_annotation(self.refs_path), str(self.refs_path))
        if not isinstance(refs, list):
            raise InputError(f"{self.refs_path}: expected a pickled list of ref dicts, got {type(refs).__name__}")
        instances = _load_instances(self.files, self.instances_path)
        images = {img["id"]: img for img in instances["images"] if isinstance(img, dict) and "id" in img}
        anns = {a["id"]: a for a in instances["annotations"] if isinstance(a, dict) and "id" in a}
        categories = {c["id"]: c.get("name") for c in instances.get("categories", []) if isinstance(c, dict)}

        by_image: dict[Any, list[dict]] = defaultdict(list)
        malformed: list[dict] = []
        skipped = 0
        for ref in refs:
            if not isinstance(ref, dict) or not isinstance(ref.get("image_id"), int):
                malformed.append({"ref": repr(ref)[:200]})
                continue
            if not self.wants_split(str(ref.get("split"))):
                skipped += 1
                continue
            by_image[ref["image_id"]].append(ref)  # passed as loaded: rebuilding 50K dicts costs more
        image_ids = sorted(by_image)
        if self.options.limit is not None:
            image_ids = image_ids[: self.options.limit]
        partitions = []
        for start in range(0, len(image_ids), IMAGES_PER_PARTITION):
            entries = []
            for image_id in image_ids[start : start + IMAGES_PER_PARTITION]:
                image_refs = sorted(by_image[image_id], key=_ref_order)
                ann_ids = sorted(
                    {r["ann_id"] for r in image_refs if isinstance(r.get("ann_id"), int) and r["ann_id"] in anns}
                )
                entries.append(
                    {
                        "image_id": image_id,
                        "image": _usable_image(images.get(image_id)),
                        "refs": image_refs,
                        "anns": [anns[a] for a in ann_ids],
                    }
                )
            cat_ids = {a["category_id"] for e in entries for a in e["anns"]}
            partitions.append({"images": entries, "categories": [[c, categories.get(c)] for c in sorted(cat_ids)]})
        if partitions:
            partitions[0]["malformed_refs"] = malformed
            if skipped:
                partitions[0]["skipped_in_plan"] = {"split_not_selected": skipped}
        elif malformed:
            partitions.append({"images": [], "categories": [], "malformed_refs": malformed})
        return partitions

    # --- reading (task) ------------------------------------------------------------------------------------

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:
        if "hf_layout" in partition:
            yield from self._read_hf(partition, stats)
            return
        for bad in partition.get("malformed_refs", []):
            stats.read += 1
            yield Reject(bad["ref"], "malformed_ref", "ref is not a dict with an integer image_id")
        categories = {c: name for c, name in partition["categories"]}
        points = self._inner_points(partition["images"])
        images_root = self.images_root()
        for entry in partition["images"]:
            stats.read += len(entry["refs"])
            yield from self._image_samples(entry, categories, points, images_root, stats)

    def _inner_points(self, entries: list[dict]) -> dict[Any, list[float] | None]:
        """Inner point of every referred annotation of the partition (polygons batched, RLE one by one)."""
        polygon_objects, polygon_ids, points = [], [], {}
        for entry in entries:
            image = entry["image"]
            if image is None:
                continue
            for ann in entry["anns"]:
                seg = ann.get("segmentation")
                if isinstance(seg, list):  # malformed polygons are skipped by polygon_inner_points
                    polygon_objects.append((seg, image["height"], image["width"]))
                    polygon_ids.append(ann["id"])
                elif isinstance(seg, dict):
                    try:
                        mask = coco_segmentation_to_mask(seg, image["height"], image["width"])
                        points[ann["id"]] = mask_crop_inner_point(mask)
                    except Exception:  # malformed RLE: the object keeps its box items, without a point
                        points[ann["id"]] = None
        for ann_id, point in zip(polygon_ids, polygon_inner_points(polygon_objects), strict=True):
            points[ann_id] = point
        return points

    def _image_samples(self, entry, categories, points, images_root: Path, stats: TaskStats) -> Iterator[Output]:
        image_id, image, refs = entry["image_id"], entry["image"], entry["refs"]
        ref_ids = _LazyRefIds(refs)
        if image is None:
            yield from (Reject(r, "missing_image_info", f"image {image_id} is not in instances.json") for r in ref_ids)
            return
        try:
            rel, data = self._read_image(
                images_root, image_id, _text(image.get("file_name")), _text(refs[0].get("file_name"))
            )
            info = image_info(data, rel, coco_image_id=image_id)
        except ImageProblem as exc:
            yield from (Reject(r, exc.reason, f"image {image_id}: {exc}") for r in ref_ids)
            return
        if (info["width"], info["height"]) != (image["width"], image["height"]):
            detail = f"instances.json says {image['width']}x{image['height']}, file is {info['width']}x{info['height']}"
            yield from (Reject(r, "image_size_mismatch", detail) for r in ref_ids)
            return
        yield from self._split_samples(entry, info, data, categories, points, stats)

    def _split_samples(self, entry, info, data: bytes, categories, points, stats: TaskStats) -> Iterator[Output]:
        """One sample per split of an image whose bytes and size are known: every usable ref's items."""
        image_id, refs = entry["image_id"], entry["refs"]
        anns = {a["id"]: a for a in entry["anns"]}
        by_split: dict[str, list[dict]] = defaultdict(list)
        for ref in refs:
            by_split[str(ref.get("split"))].append(ref)
        for split in sorted(by_split, key=lambda s: (SPLIT_ORDER.get(s, 99), s)):
            items, used = [], []
            for ref in by_split[split]:
                outcome = self._ref_items(ref, anns, categories, points, info, image_id, stats)
                if isinstance(outcome, Reject):
                    yield outcome
                    continue
                ref_items, rejects = outcome
                yield from rejects
                if ref_items:
                    items.extend(ref_items)
                    used.append(_ref_source_id(ref))
                else:
                    yield Reject(_ref_source_id(ref), "no_usable_sentence", "every sentence was empty")
            if items:
                key = make_key(self.slug, self.split_by, image_id, split)
                record = self.record(key, split, info, items)
                yield Sample(record, data, used)

    def _read_image(self, root: Path, image_id: int, instances_name, ref_name) -> tuple[str, bytes]:
        missing, folder = [], str(root)
        for name in image_file_candidates(image_id, instances_name, ref_name):
            try:
                rel = safe_relpath(name)
            except UnsafePathError as exc:
                raise ImageProblem("unsafe_path", str(exc)) from exc
            try:
                return rel, read_image_file(self.files, f"{folder}/{rel}")
            except ImageProblem as exc:
                if exc.reason != "missing_image_file":
                    raise
                missing.append(rel)
        raise ImageProblem("missing_image_file", f"none of {missing} exists in {root}")

    def _ref_items(self, ref, anns, categories, points, info, image_id, stats: TaskStats):
        """Items of one ref, or a Reject for the whole ref. Returns (items, item-level rejects)."""
        ref_id = _ref_source_id(ref)
        ann = anns.get(ref.get("ann_id")) if isinstance(ref.get("ann_id"), int | str) else None
        if ann is None:
            return Reject(ref_id, "missing_annotation", f"ann_id {ref.get('ann_id')} is not in instances.json")
        if ann.get("image_id") != image_id:
            detail = f"ann {ann['id']} belongs to image {ann.get('image_id')}"
            return Reject(ref_id, "annotation_image_mismatch", detail)
        xyxy = "bbox_xyxy" in ann  # the Hub's jxu124 rows give x1, y1, x2, y2
        bbox = ann.get("bbox_xyxy" if xyxy else "bbox")
        shape = "[x1, y1, x2, y2]" if xyxy else "[x, y, w, h]"
        if not isinstance(bbox, list) or len(bbox) != 4 or isinstance(bbox[0], bool):
            return Reject(ref_id, "bad_box", f"bbox {bbox!r} is not {shape}")
        try:
            finite = math.isfinite(bbox[0] + bbox[1] + bbox[2] + bbox[3])  # a non-number raises TypeError
        except TypeError:
            return Reject(ref_id, "bad_box", f"bbox {bbox!r} is not {shape}")
        width, height = (bbox[2] - bbox[0], bbox[3] - bbox[1]) if xyxy else (bbox[2], bbox[3])
        if not finite or width <= 0 or height <= 0:
            return Reject(ref_id, "bad_box", f"bbox {bbox!r} has no area or is not finite")
        box, clipped = clip_box_xyxy(list(bbox) if xyxy else xywh_to_xyxy(bbox), info["width"], info["height"])
        if box is None:
            return Reject(ref_id, "box_outside_image", f"bbox {bbox!r} lies outside {info['width']}x{info['height']}")
        if clipped:
            stats.count("clipped_boxes")
        label = categories.get(ann.get("category_id"))
        items, rejects = [], []
        sentences = ref.get("sentences")
        for sentence in sentences if isinstance(sentences, list) else []:
            if not isinstance(sentence, dict):
                continue
            query = (_text(sentence.get("raw")) or _text(sentence.get("sent")) or "").strip()
            sent_id = sentence.get("source_id") or f"{ref_id}/sent_id={sentence.get('sent_id')}"
            if not query:
                rejects.append(Reject(sent_id, "empty_query", "sentence has no raw or sent text", scope="item"))
                continue
            item = {"task": "box", "query": query, "query_kind": "expression", "boxes": [box], "source_id": sent_id}
            if label:
                item["label"] = label
            items.append(item)
        if not items:
            return [], rejects
        point = points.get(ann["id"])
        if point is None:
            stats.count("objects_without_segmentation")
        else:
            first = items[0]
            point_item = {
                "task": "point",
                "query": first["query"],
                "query_kind": "expression",
                "points": [point],
                "source_id": ann.get("point_source_id") or f"{ref_id}/ann_id={ann['id']}",
                "meta": {"point": "inside_segmentation", "query_from": first["source_id"]},
            }
            if label:
                point_item["label"] = label
            items.append(point_item)
        return items, rejects

    # --- the Hugging Face parquet layouts -----------------------------------------------------------------

    def _plan_hf(self) -> list[dict[str, Any]]:
        """Every file read one row group at a time, without image bytes; rows grouped by image as the refer path
        groups refs. jxu124 images are ordered by id (as refer's); lmms-lab images by their first row, so a task
        reads a run of row groups for their bytes."""
        layout = self.hf_layout
        entries: dict[Any, dict] = {}
        malformed: list[dict] = []
        skipped = 0
        for file_index, path in enumerate(self.hf_files):
            parquet = self.files.parquet(path)
            names = parquet.schema_arrow.names
            wanted = (*REFS_COLUMNS, *REFS_OPTIONAL) if layout == "refs" else (*EVAL_COLUMNS, *EVAL_OPTIONAL)
            columns = [c for c in wanted if c in names and c != "image"]
            from_name = file_split(path)
            if layout == "eval" and from_name is None:
                expected = "<split>-0000k-of-0000N.parquet"
                raise InputError(f"{self.name}: cannot tell the split of {path} (expected {expected})")
            row_number = 0
            for group in range(parquet.metadata.num_row_groups):
                for index, row in enumerate(parquet.read_row_group(group, columns=columns).to_pylist()):
                    row_id = f"{path.name}#row={row_number}"
                    row_number += 1
                    outcome = self._hf_row(layout, row, row_id, from_name, [file_index, group, index])
                    if isinstance(outcome, dict):
                        malformed.append(outcome)
                        continue
                    if outcome is None:
                        skipped += 1
                        continue
                    key, ref, ann, image, image_at = outcome
                    entry = entries.get(key)
                    if entry is None:
                        entry = entries[key] = {"image_id": key, "image": image, "refs": [], "anns": {}}
                        entry["image_at"] = image_at
                    elif entry["image"] is None:
                        entry["image"] = image
                    entry["refs"].append(ref)
                    if ann is not None:
                        entry["anns"].setdefault(ann["id"], ann)
        order = sorted(entries, key=_image_order) if layout == "refs" else list(entries)
        if self.options.limit is not None:
            order = order[: self.options.limit]
        files = [str(p) for p in self.hf_files]
        partitions = []
        for start in range(0, len(order), IMAGES_PER_PARTITION):
            chunk = []
            for key in order[start : start + IMAGES_PER_PARTITION]:
                entry = entries[key]
                refs = sorted(entry["refs"], key=_ref_order) if layout == "refs" else entry["refs"]
                chunk.append({**entry, "refs": refs, "anns": list(entry["anns"].values())})
            cat_ids = {a.get("category_id") for e in chunk for a in e["anns"]}
            categories = [[c, COCO_CATEGORIES.get(c)] for c in sorted(c for c in cat_ids if isinstance(c, int))]
            partitions.append({"hf_layout": layout, "files": files, "images": chunk, "categories": categories})
        if partitions:
            partitions[0]["malformed_rows"] = malformed
            if skipped:
                partitions[0]["skipped_in_plan"] = {"split_not_selected": skipped}
        elif malformed:
            empty = {"hf_layout": layout, "files": files, "images": [], "categories": []}
            partitions.append({**empty, "malformed_rows": malformed})
        return partitions

    def _hf_row(self, layout: str, row: dict, row_id: str, from_name: str | None, image_at: list[int]):
        """(image key, ref, annotation, image entry, where its bytes are) of one row; a dict for a malformed row;
        None for a row of a split not asked for."""
        if layout == "refs":
            split = row.get("split") if isinstance(row.get("split"), str) and row.get("split") else from_name
            image_id = row.get("image_id")
            if split is None or not isinstance(image_id, int) or isinstance(image_id, bool):
                detail = f"no split or integer image_id (split {split!r}, image_id {image_id!r})"
                return {"id": row_id, "detail": detail}
            if not self.wants_split(split):
                return None
            ref, ann, image = refs_row(row, split)
            return image_id, ref, ann, image, None
        group = image_group(row.get("file_name"))
        if group is None:
            return {"id": row_id, "detail": f"file_name {row.get('file_name')!r} names no image"}
        if not self.wants_split(from_name):
            return None
        ref, ann = eval_row(row, from_name, row_id)
        ann["image_id"] = group
        return group, ref, ann, None, image_at

    def _read_hf(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:
        for bad in partition.get("malformed_rows", []):
            stats.read += 1
            yield Reject(bad["id"], "malformed_row", bad["detail"])
        categories = {c: name for c, name in partition["categories"]}
        entries = partition["images"]
        if partition["hf_layout"] == "eval":
            embedded = self._embedded_images(partition["files"], [e["image_at"] for e in entries])
        else:
            images_root = self.images_root()
        loaded = []
        for entry in entries:
            stats.read += len(entry["refs"])
            ref_ids = _LazyRefIds(entry["refs"])
            image_id, known = entry["image_id"], entry["image"] or {}
            try:
                if partition["hf_layout"] == "eval":
                    rel, data = self._embedded(embedded, entry)
                else:
                    ref_name = _text(entry["refs"][0].get("file_name"))
                    rel, data = self._read_image(images_root, image_id, _text(known.get("file_name")), ref_name)
                info = image_info(data, rel, coco_image_id=image_id if isinstance(image_id, int) else None)
            except ImageProblem as exc:
                yield from (Reject(r, exc.reason, f"image {image_id}: {exc}") for r in ref_ids)
                continue
            if "width" in known and (info["width"], info["height"]) != (known["width"], known["height"]):
                said, found = f"{known['width']}x{known['height']}", f"{info['width']}x{info['height']}"
                detail = f"raw_image_info says {said}, file is {found}"
                yield from (Reject(r, "image_size_mismatch", detail) for r in ref_ids)
                continue
            loaded.append(({**entry, "image": {"width": info["width"], "height": info["height"]}}, info, data))
        points = self._inner_points([entry for entry, _, _ in loaded])
        for entry, info, data in loaded:
            yield from self._split_samples(entry, info, data, categories, points, stats)

    def _embedded_images(self, files: list[str], places: list[list[int]]) -> dict[tuple[int, int, int], dict]:
        """The `image` cells of the rows at `places` ([file, row group, row]), one row group read at a time."""
        wanted: dict[tuple[int, int], set[int]] = defaultdict(set)
        for file_index, group, index in places:
            wanted[(file_index, group)].add(index)
        cells: dict[tuple[int, int, int], dict] = {}
        opened: dict[int, Any] = {}
        for (file_index, group), rows in sorted(wanted.items()):
            if file_index not in opened:
                opened = {file_index: self.files.parquet(files[file_index])}  # one file open at a time
            column = opened[file_index].read_row_group(group, columns=["image"]).column("image")
            for index in sorted(rows):
                cells[(file_index, group, index)] = column[index].as_py()
        return cells

    def _embedded(self, embedded: dict, entry: dict) -> tuple[str, bytes]:
        cell = embedded.get(tuple(entry["image_at"]))
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if not data:
            raise ImageProblem("missing_image_bytes", "its row has no image bytes")
        path = cell.get("path") if isinstance(cell.get("path"), str) and cell.get("path") else None
        name = path or _text(entry["refs"][0].get("file_name")) or str(entry["image_id"])
        return name, bytes(data)


class RefCocoPlusConverter(RefCocoConverter):
    name = "refcoco+"
    slug = "refcocoplus"
    dataset_dir = "refcoco+"
    split_schemes = ("unc",)


class RefCocoGConverter(RefCocoConverter):
    name = "refcocog"
    slug = "refcocog"
    dataset_dir = "refcocog"
    split_schemes = ("umd", "google")


def _load_instances(files: InputFiles, path: Path) -> dict[str, Any]:
    data = files.load_json(path)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        raise InputError(f"{path}: expected a COCO dict with 'images', 'annotations' and 'categories' lists")
    return data


class _LazyRefIds:
    """`ref_id=R` names of an image's refs, built only when a whole image is rejected (the rare path)."""

    def __init__(self, refs: list[dict]) -> None:
        self._refs = refs

    def __iter__(self):
        return (_ref_source_id(r) for r in self._refs)


def _ref_source_id(ref: dict) -> str:
    """`ref_id=R` (refer and jxu124 rows), or the id a Hub row brings (`question_id=Q`)."""
    return ref.get("source_id") or f"ref_id={ref.get('ref_id')}"


def _image_order(key: Any) -> tuple:
    return (0, key, "") if isinstance(key, int) else (1, 0, str(key))


def image_group(file_name: Any) -> int | str | None:
    """The image an lmms-lab row shows: its COCO id from `file_name` (the refs' `_<n>` suffix allowed), else the
    file name itself."""
    if not isinstance(file_name, str) or not file_name:
        return None
    image_id = coco_image_id(strip_fake_suffix(file_name))
    return image_id if image_id is not None else file_name


def _ref_order(ref: dict) -> tuple:
    ref_id = ref.get("ref_id")
    return (0, ref_id, "") if isinstance(ref_id, int) else (1, 0, str(ref_id))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _usable_image(image: dict | None) -> dict[str, Any] | None:
    """The instances.json image entry when it has integer width and height, else None."""
    if (
        not isinstance(image, dict)
        or not isinstance(image.get("width"), int)
        or not isinstance(image.get("height"), int)
    ):
        return None
    return image
