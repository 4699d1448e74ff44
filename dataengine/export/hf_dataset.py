"""`dataengine export hf SHARDS --out OUT`: grounding shards -> a Hugging Face dataset folder (parquet + card).

`OUT/data/<split>-NNNNN-of-MMMMM.parquet` holds one row per sample: `image` (an `Image` feature with the untouched
bytes embedded; null for text-only samples) and the record's fields as columns (`key`, `source`, `split`,
`license`, `schema`, `image_info`, `items`; an item's free-form `meta` is its exact JSON text). The features travel
in each file's metadata and in `OUT/README.md`, whose front matter is what the Hub reads: licence, one `configs`
entry with a `data_files` glob per split (the records' own splits), `dataset_info.features` and split sizes.
`datasets.load_dataset(OUT)` loads it with every field; `push_to_hub` uploads the folder with `huggingface_hub`.
Rows are streamed to the files in batches, so memory stays bounded; files roll over every `rows_per_file` rows.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataengine.corpus.card import TAGS, TASK_CATEGORIES, hf_license
from dataengine.errors import InputError
from dataengine.shards import iter_grounding

DATA_DIR = "data"
CARD_NAME = "README.md"
ROWS_PER_FILE = 5_000
BATCH_ROWS = 256
_SPLIT_RE = re.compile(r"^\w+(\.\w+)*$")  # the split names `datasets` accepts


@dataclass
class HfExportReport:
    rows_by_split: Counter = field(default_factory=Counter)
    bytes_by_split: Counter = field(default_factory=Counter)  # parquet bytes written per split
    files: list[str] = field(default_factory=list)
    licenses: set[str] = field(default_factory=set)


def hf_row_features():
    """Features of one exported row: `image` plus the record's fields, its image metadata as `image_info`."""
    from datasets import Features, Image, List, Value

    from dataengine.records.grounding import hf_features

    record = dict(hf_features()["json"])
    # meta as a plain string column of its JSON text: parquet cannot store Arrow's JSON extension type
    items = List({**record.pop("items").feature, "meta": Value("string")})
    columns = {"key": record.pop("key"), "image": Image(), "image_info": record.pop("image")}
    return Features({**columns, **record, "items": items})


def export_hf(shards: str | Path, out: str | Path, *, rows_per_file: int = ROWS_PER_FILE, overwrite: bool = False):
    """Write the dataset folder `out` from every grounding sample under `shards`; returns an `HfExportReport`."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from datasets import Json  # noqa: F401  (datasets >= 5, whose features the rows use)
    except ImportError as exc:
        raise InputError(f"export hf needs the hf extra: pip install 'dataengine[hf]' ({exc})") from None
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"{out} is not empty; pass --overwrite to replace it")
        shutil.rmtree(out)
    (out / DATA_DIR).mkdir(parents=True)
    features = hf_row_features()
    schema = features.arrow_schema
    report = HfExportReport()
    writers: dict[str, Any] = {}
    buffers: dict[str, list[dict]] = {}
    parts: dict[str, list[Path]] = {}

    def flush(split: str) -> None:
        rows = buffers.pop(split, [])
        if rows:
            writers[split].write_table(pa.Table.from_pylist([features.encode_example(r) for r in rows], schema))

    for sample in iter_grounding(shards):
        record = json.loads(sample.record.to_json_bytes())
        split = record["split"]
        if not _SPLIT_RE.match(split):
            raise InputError(f"split {split!r} of {record['key']} is not a valid Hugging Face split name")
        if report.rows_by_split[split] % rows_per_file == 0:  # start the split's next file
            if split in writers:
                flush(split)
                writers[split].close()
            path = out / DATA_DIR / f"{split}-{len(parts.setdefault(split, [])):05d}.parquet.tmp"
            parts[split].append(path)
            writers[split] = pq.ParquetWriter(path, schema)
        buffers.setdefault(split, []).append(_row(record, sample.image_bytes))
        report.rows_by_split[split] += 1
        report.licenses.add(record["license"])
        if len(buffers[split]) >= BATCH_ROWS:
            flush(split)
    for split, writer in writers.items():
        flush(split)
        writer.close()
    if not report.rows_by_split:
        raise InputError(f"no grounding samples under {shards}")
    for split, paths in sorted(parts.items()):
        for index, path in enumerate(paths):
            final = path.with_name(f"{split}-{index:05d}-of-{len(paths):05d}.parquet")
            path.rename(final)
            report.bytes_by_split[split] += final.stat().st_size
            report.files.append(str(final.relative_to(out)))
    (out / CARD_NAME).write_text(render_hf_card(out.name, report, features), encoding="utf-8")
    return report


def _row(record: dict, image_bytes: bytes | None) -> dict:
    for item in record["items"]:
        if "meta" in item:
            item["meta"] = json.dumps(item["meta"], ensure_ascii=False, sort_keys=True)
    info = record.pop("image")
    image = None if image_bytes is None else {"bytes": image_bytes, "path": f"{record['key']}.{_ext(info)}"}
    return {**record, "image": image, "image_info": info}


def _ext(info: dict | None) -> str:
    return {"jpeg": "jpg", "png": "png", "webp": "webp"}.get((info or {}).get("format") or "", "img")


def render_hf_card(name: str, report: HfExportReport, features) -> str:
    """README.md: the Hub's front matter, then what the columns hold and how to load them."""
    splits = sorted(report.rows_by_split)
    front = {
        "license": hf_license(sorted(report.licenses)),
        "pretty_name": name,
        "task_categories": TASK_CATEGORIES,
        "tags": [t for t in TAGS if t != "webdataset"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"{DATA_DIR}/{s}-*.parquet"} for s in splits],
            }
        ],
        "dataset_info": {
            "config_name": "default",
            "features": features._to_yaml_list(),
            "splits": [
                {"name": s, "num_bytes": report.bytes_by_split[s], "num_examples": report.rows_by_split[s]}
                for s in splits
            ],
            "download_size": sum(report.bytes_by_split.values()),
            "dataset_size": sum(report.bytes_by_split.values()),
        },
    }
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=120)
    rows = "\n".join(f"| {s} | {report.rows_by_split[s]:,} |" for s in splits)
    licenses = "\n".join(f"- {lic}" for lic in sorted(report.licenses))
    return (
        f"---\n{head}---\n\n# {name}\n\nSpatial grounding samples exported by dataengine from `grounding/v1` shards: "
        "one row per image with every box, point, trace and vqa item about it. Coordinates are absolute pixels of "
        "the stored image (`[x1, y1, x2, y2]` boxes, `[x, y]` points). An item's `query_kind` says whether its "
        "query is a referring expression or a full instruction; `meta` is its notes as JSON text.\n\n"
        f"| split | rows |\n|---|---|\n{rows}\n\n## Licences\n\n{licenses}\n\n## Loading\n\n"
        '```python\nimport datasets\nds = datasets.load_dataset("path/or/repo")\n```\n'
    )


def push_to_hub(out: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Upload the exported folder to the Hub dataset `repo_id` (created if needed); returns the commit URL.
    Uses the token `huggingface_hub` finds (`HF_TOKEN` or `hf auth login`)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=str(out), repo_id=repo_id, repo_type="dataset")
    return str(commit)
