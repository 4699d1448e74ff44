"""Shard writer throughput against a plain tar of the same bytes, measured in the same run.

    python bench/shard_writer.py --samples 20000 --out /tmp/bench_shards

Baseline: `tarfile` adding each image and its JSON (the bytes alone). Engine: building and validating a
`GroundingRecord`, hashing the image, writing through `GroundingShardWriter` (rollover, index, manifest rows).
Reports samples/s, MB/s and the ratio engine / baseline.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dataengine.images import probe_image, sha1_hex
from dataengine.records import GroundingRecord
from dataengine.shards import GroundingShardWriter, write_manifest


def make_payloads(count: int, distinct: int = 64) -> list[bytes]:
    """COCO-like JPEGs (640x480, ~100+ KB): a few distinct encodings, each made unique by an appended comment."""
    rng = np.random.default_rng(0)
    bases = []
    for _ in range(distinct):
        noise = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        noise[::2] = noise[::2] // 2
        buf = io.BytesIO()
        Image.fromarray(noise).save(buf, "JPEG", quality=60)
        bases.append(buf.getvalue())
    # Bytes differ per sample (distinct sha1) without re-encoding: JPEG decoders ignore data after EOI.
    return [bases[i % distinct] + i.to_bytes(8, "little") + b"\xff\xd9" for i in range(count)]


def baseline_tar(payloads: list[bytes], out: Path) -> float:
    out.mkdir(parents=True)
    start = time.perf_counter()
    with tarfile.open(out / "plain.tar", "w") as tar:
        for i, data in enumerate(payloads):
            for name, blob in ((f"s{i:08d}.jpg", data), (f"s{i:08d}.json", b'{"k":1}')):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    return time.perf_counter() - start


def engine_write(payloads: list[bytes], out: Path) -> float:
    start = time.perf_counter()
    with GroundingShardWriter(out, "bench", max_samples=10_000) as writer:
        for i, data in enumerate(payloads):
            header = probe_image(data)
            record = GroundingRecord.model_validate(
                {
                    "key": f"bench_{i:08d}",
                    "source": "bench",
                    "split": "train",
                    "license": "CC-BY-4.0",
                    "image": {
                        "width": header.width,
                        "height": header.height,
                        "sha1": sha1_hex(data),
                        "origin": f"img/{i}.jpg",
                        "format": header.format,
                    },
                    "items": [
                        {"task": "box", "query": "the red cup on the left", "boxes": [[10.5, 20, 200, 300]]},
                        {"task": "point", "query": "the red cup on the left", "points": [[100, 150]]},
                    ],
                }
            )
            writer.write(record, data)
    write_manifest(writer.rows, out / "manifest.parquet")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_shards"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    payloads = make_payloads(args.samples)
    total_mb = sum(len(p) for p in payloads) / 1e6
    best_base, best_engine = float("inf"), float("inf")
    for _ in range(args.repeats):
        shutil.rmtree(args.out, ignore_errors=True)
        best_base = min(best_base, baseline_tar(payloads, args.out / "baseline"))
        best_engine = min(best_engine, engine_write(payloads, args.out / "engine"))
    shutil.rmtree(args.out, ignore_errors=True)
    print(f"samples {args.samples}, image bytes {total_mb:.0f} MB, best of {args.repeats}")
    print(f"plain tar      : {args.samples / best_base:9.0f} samples/s  {total_mb / best_base:7.0f} MB/s")
    print(f"shard writer   : {args.samples / best_engine:9.0f} samples/s  {total_mb / best_engine:7.0f} MB/s")
    print(f"ratio writer / plain tar: {best_base / best_engine:.2f}")


if __name__ == "__main__":
    main()
