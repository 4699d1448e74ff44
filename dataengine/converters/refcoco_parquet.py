"""RefCOCO / RefCOCO+ / RefCOCOg as the Hugging Face Hub stores them: a folder of parquet files -> the entries the
refer path (`converters.refcoco`) turns into samples.

Two layouts, told apart by their columns (sources in docs/converters.md):
- `refs` (jxu124/refcoco, refcocoplus, refcocog): one row per ref with the refer fields (`ref_id`, `ann_id`,
  `image_id`, `split`, `sentences`, `category_id`, `file_name`), `bbox` as xyxy pixels, the COCO annotation and
  image entries as JSON text (`raw_anns`, `raw_image_info`); no image bytes (images come from COCO train2014).
- `eval` (lmms-lab/RefCOCO, RefCOCOplus, RefCOCOg): one row per ref with the COCO image embedded (`image: {bytes,
  path}`), `answer` = its sentences, `bbox` as xywh pixels, `segmentation` one flat polygon, `file_name`; only the
  evaluation splits, named by the files (`val-00000-of-00004.parquet`).
Every file is read one row group at a time; image bytes are only read by the tasks, only for the rows they need.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dataengine.converters.files import InputFiles
from dataengine.errors import InputError

REFS_COLUMNS = ("ref_id", "ann_id", "image_id", "split", "sentences", "category_id", "bbox", "file_name")
REFS_OPTIONAL = ("raw_anns", "raw_image_info", "image_path")
EVAL_COLUMNS = ("question_id", "image", "answer", "bbox", "file_name")
EVAL_OPTIONAL = ("segmentation", "iscrowd")
EVAL_SCHEME = "lmms-eval"  # the key's scheme part for the eval layout (its splits are not the refer splits)
FILE_SPLITS = {"validation": "val"}  # Hub file split names -> refer split names
_FILE_SPLIT_RE = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}(?:-[0-9a-f]+)?\.parquet$")
_HF_CACHE_RE = re.compile(r"^datasets--.+?--(?P<name>.+)$")
# Hub dataset names (lower case) -> the converter that owns them
DATASET_NAMES = {
    "refcoco": "refcoco",
    "refcocoplus": "refcoco+",
    "refcoco+": "refcoco+",
    "refcoco_plus": "refcoco+",
    "refcocog": "refcocog",
}

# COCO's 80 category names by id (the names instances.json carries; the parquet layouts keep only the id)
COCO_CATEGORIES = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck",
    9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench",
    16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear",
    24: "zebra", 25: "giraffe", 27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase",
    34: "frisbee", 35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat",
    40: "baseball glove", 41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle",
    46: "wine glass", 47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple",
    54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut",
    61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet",
    72: "tv", 73: "laptop", 74: "mouse", 75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave",
    79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 84: "book", 85: "clock", 86: "vase",
    87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}  # fmt: skip


def parquet_files(root: Path) -> list[Path]:
    """The parquet files of a downloaded Hub dataset folder (`root/*.parquet` or `root/data/*.parquet`), or of one
    file; sorted by name. Empty when `root` holds none (the refer layout)."""
    if root.is_file():
        return [root] if root.suffix == ".parquet" else []
    if not root.is_dir():
        return []
    direct = sorted(root.glob("*.parquet"))
    return direct or sorted((root / "data").glob("*.parquet"))


def file_split(path: Path) -> str | None:
    """The split a Hub file name gives (`validation-00000-of-00001.parquet` -> `val`), None for other names."""
    match = _FILE_SPLIT_RE.match(path.name)
    if not match:
        return None
    return FILE_SPLITS.get(match["split"], match["split"])


def dataset_named(root: Path) -> str | None:
    """The RefCOCO dataset a downloaded folder's name says it is (`refcocoplus`, `RefCOCOg`, the Hub cache's
    `datasets--jxu124--refcocog/snapshots/<revision>`), or None when its name says nothing."""
    folder = root.parent if root.is_file() else root
    if folder.name == "data":
        folder = folder.parent
    if re.fullmatch(r"[0-9a-f]{40}", folder.name) and folder.parent.name == "snapshots":
        folder = folder.parent.parent
    cache = _HF_CACHE_RE.match(folder.name)
    return DATASET_NAMES.get((cache["name"] if cache else folder.name).lower())


def detect_layout(files: InputFiles, paths: list[Path], source: str) -> str:
    """`refs` or `eval` from the first file's columns (every file must agree), or InputError naming what was
    expected."""
    layouts = set()
    for path in paths:
        names = set(files.parquet(path).schema_arrow.names)
        if set(REFS_COLUMNS) <= names:
            layouts.add("refs")
        elif set(EVAL_COLUMNS) <= names:
            layouts.add("eval")
        else:
            raise InputError(
                f"{source}: {path} has columns {sorted(names)}; a Hugging Face RefCOCO parquet file has either "
                f"{', '.join(REFS_COLUMNS)} (jxu124 layout) or {', '.join(EVAL_COLUMNS)} (lmms-lab layout)"
            )
    if len(layouts) > 1:
        raise InputError(f"{source}: the parquet files under {paths[0].parent} mix the jxu124 and lmms-lab layouts")
    return layouts.pop()


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _number_list(value: Any) -> list | None:
    return [float(v) for v in value] if isinstance(value, list) and all(_is_number(v) for v in value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def refs_row(row: dict, split: str) -> tuple[dict, dict | None, dict | None]:
    """(ref, annotation, image entry) of a jxu124 row, in the refer path's shapes. The annotation's box is the
    row's xyxy `bbox` (`bbox_xyxy`), its segmentation the one in `raw_anns`; the image entry (for the size check
    and the file name) is `raw_image_info` when it is a COCO image dict."""
    ref = {
        "ref_id": row.get("ref_id"),
        "ann_id": row.get("ann_id"),
        "image_id": row.get("image_id"),
        "category_id": row.get("category_id"),
        "split": split,
        "sentences": row.get("sentences"),
        "file_name": row.get("file_name"),
    }
    raw_ann = _json(row.get("raw_anns"))
    ann = None
    if isinstance(row.get("ann_id"), int):
        ann = {
            "id": row["ann_id"],
            "image_id": row.get("image_id"),
            "category_id": row.get("category_id"),
            "bbox_xyxy": row.get("bbox"),
        }
        if isinstance(raw_ann, dict) and raw_ann.get("segmentation"):
            ann["segmentation"] = raw_ann["segmentation"]
    info = _json(row.get("raw_image_info"))
    image = None
    if isinstance(info, dict) and isinstance(info.get("width"), int) and isinstance(info.get("height"), int):
        image = {"width": info["width"], "height": info["height"], "file_name": info.get("file_name")}
    elif isinstance(row.get("image_path"), str):
        image = {"file_name": row["image_path"].rsplit("/", 1)[-1]}
    return ref, ann, image


def eval_row(row: dict, split: str, row_id: str) -> tuple[dict, dict]:
    """(ref, annotation) of an lmms-lab row: the `answer` sentences become the ref's sentences (source ids
    `question_id=Q/answer=i`), the flat `segmentation` its one polygon."""
    question_id = row.get("question_id")
    label = f"question_id={question_id}" if isinstance(question_id, str | int) and str(question_id) else row_id
    answers = row.get("answer")
    sentences = [
        {"raw": text, "source_id": f"{label}/answer={i}"}
        for i, text in enumerate(answers if isinstance(answers, list) else [])
    ]
    ref = {
        "source_id": label,
        "split": split,
        "sentences": sentences,
        "ann_id": row_id,  # internal: the row's own annotation (question ids may repeat across files)
        "file_name": row.get("file_name"),
    }
    ann: dict[str, Any] = {"id": row_id, "bbox": _number_list(row.get("bbox")), "point_source_id": f"{label}/point"}
    polygon = _number_list(row.get("segmentation"))
    if polygon and len(polygon) >= 6 and len(polygon) % 2 == 0:
        ann["segmentation"] = [polygon]
    return ref, ann
