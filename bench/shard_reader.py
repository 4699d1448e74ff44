"""Shard reading throughput: `iter_samples` against tarfile's stream mode over the same shards, in the same run.

    python bench/shard_reader.py --samples 20000 --image-kb 20 --out /tmp/bench_read

Baseline: `tarfile.open(shard, "r|")`, every file member's bytes read (what `iter_samples` did before it parsed
plain USTAR headers itself). Engine: `iter_samples` (fast USTAR path; samples grouped, end-of-archive checked).
Rounds alternate so both see the same page cache; reports samples/s per round and the best-of ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tarfile
import time
from pathlib import Path

from dataengine.shards import ShardWriter, iter_samples, list_shards


def write_set(out: Path, samples: int, image_bytes: int) -> list[Path]:
    """Shards of `samples` samples: a ~1 KB JSON and `image_bytes` of random bytes each (nothing is decoded)."""
    if out.exists():
        shutil.rmtree(out)
    with ShardWriter(out, "bench", max_samples=5_000) as writer:
        for i in range(samples):
            writer.write(f"s{i:08d}", {"json": os.urandom(512).hex().encode(), "jpg": os.urandom(image_bytes)})
    return list_shards(out)


def baseline(shards: list[Path]) -> int:
    members = 0
    for shard in shards:
        with tarfile.open(shard, mode="r|") as tar:
            for member in tar:
                if member.isfile():
                    tar.extractfile(member).read()
                    members += 1
    return members // 2


def engine(shards: list[Path]) -> int:
    return sum(1 for shard in shards for _ in iter_samples(shard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--image-kb", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_shard_reader"))
    args = parser.parse_args()
    shards = write_set(args.out, args.samples, int(args.image_kb * 1024))
    best = {"tarfile": float("inf"), "iter_samples": float("inf")}
    for round_i in range(args.rounds):
        for name, fn in (("tarfile", baseline), ("iter_samples", engine)):
            start = time.perf_counter()
            count = fn(shards)
            elapsed = time.perf_counter() - start
            best[name] = min(best[name], elapsed)
            print(f"round {round_i} {name:13s} {count} samples {count / elapsed:10.0f} samples/s")
    ratio = best["tarfile"] / best["iter_samples"]
    print(f"best of {args.rounds}: iter_samples is {ratio:.2f}x the throughput of tarfile stream mode")
    shutil.rmtree(args.out)


if __name__ == "__main__":
    main()
