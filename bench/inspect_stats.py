"""`dataengine stats` and `dataengine show` against reading the same tars with plain `tarfile`, in the same run.

    python bench/inspect_stats.py --samples 20000 --out /dev/shm/bench_inspect

Data: grounding samples of a 640x480 JPEG (~130 KB) with a box, a point, a trace and a vqa item each, written by
`GroundingShardWriter` (1,000 samples a shard) with `manifest.parquet` and sidecar indexes.
Baseline: `tarfile` streaming every tar and reading every member's bytes (the I/O floor of any full scan).
Engine: `compute_stats` (full scan: every record validated, histograms filled), the same with 2 worker processes,
`compute_stats(distributions=False)` (manifest only), and `select_samples` for a 16-sample contact sheet through
manifest + index versus by streaming the tars. Reports samples/s, MB/s and ratios against the baseline.
"""

from __future__ import annotations

import argparse
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np

from dataengine.images import sha1_hex
from dataengine.inspect.select import select_samples
from dataengine.inspect.stats import compute_stats
from dataengine.records import GroundingRecord
from dataengine.shards import GroundingShardWriter, list_shards, write_manifest

try:
    from bench.shard_writer import make_payloads
except ImportError:  # run as a script from the repo root
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.shard_writer import make_payloads


def write_set(count: int, out: Path) -> int:
    rng = np.random.default_rng(1)
    total = 0
    with GroundingShardWriter(out, "bench", max_samples=1000) as writer:
        for i, data in enumerate(make_payloads(count, distinct=32)):
            x1, y1 = rng.uniform(0, 400), rng.uniform(0, 300)
            w, h = rng.uniform(10, 240), rng.uniform(10, 180)
            trace = [[round(float(x), 2), round(float(y), 2)] for x, y in rng.uniform([0, 0], [640, 480], (8, 2))]
            record = GroundingRecord.model_validate(
                {
                    "key": f"bench_{i:08d}",
                    "source": f"source{i % 5}",
                    "split": "train" if i % 10 else "val",
                    "license": "CC-BY-4.0",
                    "image": {
                        "width": 640,
                        "height": 480,
                        "sha1": sha1_hex(data),
                        "origin": f"{i}.jpg",
                        "format": "jpeg",
                    },
                    "items": [
                        {"task": "box", "query": "the red cup", "boxes": [[x1, y1, x1 + w, y1 + h]], "label": "cup"},
                        {"task": "point", "query": "the red cup", "points": [[x1 + w / 2, y1 + h / 2]]},
                        {"task": "trace", "query": "move the cup to the bowl", "trace": trace},
                        {
                            "task": "vqa",
                            "conversation": [
                                {"from": "human", "value": "What is this?"},
                                {"from": "gpt", "value": "A cup."},
                            ],
                        },
                    ],
                }
            )
            writer.write(record, data)
            total += len(data)
    write_manifest(writer.rows, out / "manifest.parquet")
    return total


def plain_read(root: Path) -> int:
    total = 0
    for shard in list_shards(root):
        with tarfile.open(shard, mode="r|") as tar:
            for member in tar:
                total += len(tar.extractfile(member).read())
    return total


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_inspect"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    image_bytes = write_set(args.samples, args.out)
    bare = args.out.with_name(args.out.name + "_bare")  # same tars, no manifest and no indexes
    shutil.rmtree(bare, ignore_errors=True)
    shutil.copytree(args.out, bare, ignore=shutil.ignore_patterns("manifest.parquet", "*.idx.json"))
    tar_bytes = sum(p.stat().st_size for p in list_shards(args.out))
    n, mb = args.samples, tar_bytes / 1e6
    print(f"{n} samples, {mb:.0f} MB of tars ({image_bytes / n / 1e3:.0f} KB images)")

    plain_read(args.out)  # warm the page cache for everyone
    runs = {
        "plain tarfile read (baseline)": lambda: plain_read(args.out),
        "stats, full scan, 1 process": lambda: compute_stats(args.out, progress=False),
        "stats, full scan, 2 processes": lambda: compute_stats(args.out, progress=False, workers=2),
        "stats --counts-only (manifest)": lambda: compute_stats(args.out, progress=False, distributions=False),
        "show --n 16: manifest + index": lambda: select_samples(args.out, 16),
        "show --n 16: stream the tars": lambda: select_samples(bare, 16),
    }
    times = {name: timed(fn, args.repeat) for name, fn in runs.items()}
    base = times["plain tarfile read (baseline)"]
    print("| job | time (s) | samples/s | MB/s | time / baseline |\n|---|---|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.3f} | {n / seconds:,.0f} | {mb / seconds:,.0f} | {seconds / base:.2f} |")


if __name__ == "__main__":
    main()
