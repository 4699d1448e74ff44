"""LLaVA-OneVision-Data -> one `vqa` sample per row, image bytes passed through untouched.

Parquet files are read one row group at a time (never a whole file); partitions are runs of whole row groups.
Subset folder names are used literally (`sharegpt4v(coco)`, `visual7w(cauldron,llava_format)`); keys carry a
slug of the name plus a short hash of the literal name, so two subsets never collide. The `<image>` placeholder is
removed from the first human turn (exports add their own); rows without an image are skipped and counted, or kept
as text-only samples (`image: null`) with keep_text_only.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

from dataengine.converters.base import Converter, Output, Reject, Sample, TaskStats, TextOnlyOption
from dataengine.converters.common import (
    ImageProblem,
    coco_image_id,
    image_info,
    make_key,
    short_hash,
    slug,
    strip_image_token,
)
from dataengine.errors import InputError

ROWS_PER_PARTITION = 2_000
COLUMNS = ("id", "image", "conversations", "data_source")
ROLE_NAMES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt"}


class LlavaOneVisionOptions(TextOnlyOption):
    """llava-onevision options: whether rows without an image are kept."""


class LlavaOneVisionConverter(Converter):
    name = "llava-onevision"
    slug = "llava_onevision"
    license = "apache-2.0 (lmms-lab/LLaVA-OneVision-Data); images under their source datasets' terms"
    layout = (
        "--input: the LLaVA-OneVision-Data root with one folder per subset, named literally (e.g. 'sharegpt4v(coco)', "
        "'visual7w(cauldron,llava_format)'), each holding train-0000k-of-0000N.parquet with columns id, image{bytes, "
        "path}, conversations[{from, value}], data_source; or one subset folder, or one parquet file. Read by row "
        "group; text-only rows are skipped unless --keep-text-only."
    )
    Options = LlavaOneVisionOptions

    def parquet_files(self) -> list[tuple[str, Path]]:
        """(literal subset name, file) for every parquet file, sorted by subset then file name."""
        root = self.input_path
        if root.is_file():
            return [(root.parent.name, root)]
        direct = sorted(root.glob("*.parquet"))
        if direct:
            return [(root.name, p) for p in direct]
        files = []
        for subset_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            files += [(subset_dir.name, p) for p in sorted(subset_dir.rglob("*.parquet"))]
        return files

    def check(self) -> None:
        super().check()
        if not self.parquet_files():
            raise InputError(f"{self.name}: no .parquet files under {self.input_path}.\n{self.layout}")

    def fingerprint_files(self) -> list[Path]:
        return [p for _, p in self.parquet_files()]

    def plan(self) -> list[dict[str, Any]]:

        partitions: list[dict[str, Any]] = []
        budget = self.options.limit
        file_index: dict[str, int] = {}
        for subset, path in self.parquet_files():
            index = file_index[subset] = file_index.get(subset, -1) + 1
            parquet = self.files.parquet(path)
            meta, names = parquet.metadata, set(parquet.schema_arrow.names)
            if "conversations" not in names:
                raise InputError(f"{path}: no 'conversations' column (found {sorted(names)}).\n{self.layout}")
            first_row, current, rows_in_current = 0, None, 0
            for group in range(meta.num_row_groups):
                if budget is not None and budget <= 0:
                    break
                n_rows = meta.row_group(group).num_rows
                if current is None or rows_in_current + n_rows > ROWS_PER_PARTITION:
                    current = {
                        "subset": subset,
                        "file": str(path),
                        "file_index": index,
                        "row_groups": [],
                        "first_row": first_row,
                        "max_rows": None,
                    }
                    partitions.append(current)
                    rows_in_current = 0
                current["row_groups"].append(group)
                rows_in_current += n_rows
                first_row += n_rows
                if budget is not None:
                    if n_rows >= budget:
                        current["max_rows"] = rows_in_current - n_rows + budget
                    budget -= n_rows
        return partitions

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:

        parquet = self.files.parquet(partition["file"])
        columns = [c for c in COLUMNS if c in parquet.schema_arrow.names]
        subset = partition["subset"]
        key_prefix = (self.slug, slug(subset, 40), short_hash(subset, n=6), f"{partition['file_index']:03d}")
        row_number = partition["first_row"]
        remaining = partition["max_rows"]
        for group in partition["row_groups"]:
            rows = parquet.read_row_group(group, columns=columns).to_pylist()
            for row in rows:
                if remaining is not None and remaining <= 0:
                    return
                stats.read += 1
                yield from self._row_sample(row, subset, key_prefix, row_number, stats)
                row_number += 1
                if remaining is not None:
                    remaining -= 1

    def _row_sample(self, row: dict, subset: str, key_prefix, row_number: int, stats: TaskStats) -> Iterator[Output]:
        row_id = row.get("id") if isinstance(row.get("id"), str) and row.get("id") else f"row{row_number}"
        source_id = f"{subset}/{row_id}"
        conversation, problem, stripped = _conversation(row.get("conversations"))
        if problem is not None:
            yield Reject(source_id, problem[0], problem[1])
            return
        image = row.get("image")
        data = image.get("bytes") if isinstance(image, dict) else None
        meta = {"subset": subset}
        if isinstance(row.get("data_source"), str):
            meta["data_source"] = row["data_source"]
        if stripped:
            meta["image_token_removed"] = True
        item = {"task": "vqa", "conversation": conversation, "source_id": source_id, "meta": meta}
        record = self.record(make_key(*key_prefix, f"{row_number:07d}"), "train", None, [item])
        if not data:
            if not self.source_options.keep_text_only:
                stats.skip("text_only")
                return
            stats.count("text_only_kept")
            yield Sample(record, None, [source_id])
            return
        path = image.get("path") if isinstance(image.get("path"), str) and image.get("path") else None
        origin = path or source_id
        try:
            record["image"] = image_info(bytes(data), origin, coco_image_id=coco_image_id(path) if path else None)
        except ImageProblem as exc:
            yield Reject(source_id, exc.reason, str(exc))
            return
        yield Sample(record, bytes(data), [source_id])


def _conversation(turns: Any) -> tuple[list[dict] | None, tuple[str, str] | None, bool]:
    """(turns as grounding/v1 wants them, None, image token removed) or (None, (reason, detail), False)."""
    if not isinstance(turns, list) or not turns:
        return None, ("bad_conversation", f"conversations is {type(turns).__name__}, not a list of turns"), False
    out, stripped = [], False
    for turn in turns:
        role = ROLE_NAMES.get(turn.get("from")) if isinstance(turn, dict) else None
        value = turn.get("value") if isinstance(turn, dict) else None
        if role is None or not isinstance(value, str):
            return None, ("bad_conversation", f"turn {turn!r:.120} has no human/gpt role or no text"), False
        if not out and role == "human":
            value, stripped = strip_image_token(value)
        out.append({"from": role, "value": value})
    has_pair = any(a["from"] == "human" and b["from"] == "gpt" for a, b in pairwise(out))
    if not has_pair:
        return None, ("no_qa_pair", "no human turn followed by a gpt turn"), False
    return out, None, stripped
