"""llava-json export throughput against the floor of the same work, measured in the same run.

    python bench/export_llava_json.py --samples 5000 --repeat 3 --out /dev/shm/bench_llava

Input: grounding shards of 640x480 JPEGs (distinct bytes), each record with a box, a point and a trace item.
Baseline: reading the same tars and writing each image to `images/<sha1>.jpg` plus one JSON line per item with
no rendering or validation (the I/O floor). Engine: `export_llava_json` (record validation, sha1 and header
checks, template choice, answer rendering). Runs alternate; the best of `--repeat` runs counts (file creation
is noisy on a shared disk; a tmpfs `--out` isolates the CPU cost). Reports items/s and the ratio of times
engine / baseline for two styles.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from dataengine.export.llava_json import export_llava_json
from dataengine.images import sha1_hex
from dataengine.records import GroundingRecord
from dataengine.shards import GroundingShardWriter, iter_shard_set

try:
    from bench.shard_writer import make_payloads
except ImportError:  # run as a script from the repo root
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.shard_writer import make_payloads


def build_shards(root: Path, count: int) -> int:
    items = 0
    with GroundingShardWriter(root, "bench", max_samples=1000) as writer:
        for i, data in enumerate(make_payloads(count)):
            x = 10 + i % 300
            record = GroundingRecord.model_validate(
                {
                    "key": f"img_{i:07d}",
                    "source": "bench",
                    "split": "train",
                    "license": "CC-BY-4.0",
                    "image": {"width": 640, "height": 480, "sha1": sha1_hex(data), "origin": str(i), "format": "jpeg"},
                    "items": [
                        {"task": "box", "query": f"object {i}", "boxes": [[x, 20, x + 200, 300]], "label": "thing"},
                        {"task": "point", "query": "free space", "points": [[x, 400], [x + 5, 410]]},
                        {"task": "trace", "query": "move the cup", "trace": [[x, 50], [x + 100, 80], [600, 90]]},
                    ],
                }
            )
            writer.write(record, data)
            items += len(record.items)
    return items


def baseline(root: Path, out: Path) -> None:
    (out / "images").mkdir(parents=True)
    with open(out / "annotations.jsonl", "w", encoding="utf-8") as fh:
        for sample in iter_shard_set(root):
            record = json.loads(sample["json"])
            rel = f"images/{record['image']['sha1']}.jpg"
            (out / rel).write_bytes(sample["jpg"])
            for index, item in enumerate(record["items"]):
                row = {"id": f"{record['key']}-{index}", "images": [rel], "conversations": [item.get("query")]}
                fh.write(json.dumps(row) + "\n")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_llava"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    shards = args.out / "shards"
    items = build_shards(shards, args.samples)
    styles = ("qwen2.5-vl", "molmo")
    best = {name: float("inf") for name in ("baseline", *styles)}
    for _ in range(args.repeat):
        for name in best:
            out = args.out / name
            shutil.rmtree(out, ignore_errors=True)
            if name == "baseline":
                seconds = timed(lambda out=out: baseline(shards, out))
            else:
                seconds = timed(lambda out=out, name=name: export_llava_json(shards, out, style=name))
            best[name] = min(best[name], seconds)
    base_s = best["baseline"]
    print(f"samples {args.samples}  items {items}  best of {args.repeat}")
    print(f"baseline (read tars, copy images, plain JSON lines): {base_s:.2f} s  {items / base_s:,.0f} items/s")
    for style in styles:
        engine_s = best[style]
        print(
            f"export --style {style}: {engine_s:.2f} s  {items / engine_s:,.0f} items/s  "
            f"ratio engine/baseline {engine_s / base_s:.2f}x time"
        )
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
