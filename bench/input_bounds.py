"""What the input bounds of issue 16 cost, each against its unchecked baseline in the same run.

    python bench/input_bounds.py --images 2000 --refs 50000 --work /tmp/bench_input_bounds

1. reading an image file: plain `open().read()` against `converters.files.InputFiles.read` (regular file inside
   the input root, size cap, checked on the file actually opened);
2. loading a RefCOCO-like refs pickle (protocol 2): plain `pickle.loads` against `safe_pickle.safe_loads`
   (restricted globals, opcode walk, memory budget);
3. a COCO-size JPEG: the header check every converter runs (`images.is_complete`) against
   `images.jpeg_fully_coded` (the decode behind `validate --decode` and `convert --verify-images`).
Best of `--repeat` rounds; microseconds (or seconds) per item and the ratio checked / baseline.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
from pathlib import Path

from dataengine.converters.files import InputFiles
from dataengine.converters.safe_pickle import safe_loads
from dataengine.fixtures.synthetic_refcoco import base_jpegs
from dataengine.images import is_complete, jpeg_fully_coded


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def refs_like(n: int) -> list[dict]:
    """Refs with the fields and sizes of `refs(unc).p` (3 sentences each)."""
    refs = []
    for i in range(n):
        sentences = [{"raw": f"the man on the left {j}", "sent": "the man on the left", "sent_id": i * 3 + j,
                      "tokens": ["the", "man", "on", "the", "left"]} for j in range(3)]  # fmt: skip
        refs.append({"ref_id": i, "ann_id": i * 7, "image_id": i // 3, "category_id": 1, "split": "train",
                     "sent_ids": [i * 3, i * 3 + 1, i * 3 + 2], "sentences": sentences,
                     "file_name": f"COCO_train2014_{i:012d}_{i}.jpg"})  # fmt: skip
    return refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--refs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_input_bounds"))
    args = parser.parse_args()
    jpegs = [data for group in base_jpegs(0).values() for data in group]
    paths = []
    for i in range(args.images):
        path = args.work / "images" / f"{i % 16:02d}" / f"{i:06d}.jpg"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jpegs[i % len(jpegs)])
        paths.append(path)
    files = InputFiles([args.work / "images"])

    def plain():
        for p in paths:
            with open(p, "rb", buffering=0) as fh:
                fh.read()

    def checked():
        for p in paths:
            files.read(p, "image")

    rows = [("image file read", best_of(plain, args.repeat) / len(paths), best_of(checked, args.repeat) / len(paths))]
    data = pickle.dumps(refs_like(args.refs), protocol=2)
    gc.disable()
    rows.append(("refs pickle load", best_of(lambda: pickle.loads(data), args.repeat),
                 best_of(lambda: safe_loads(data, "refs.p"), args.repeat)))  # fmt: skip
    gc.enable()
    sample = jpegs[: min(len(jpegs), 16)]
    header = best_of(lambda: [is_complete(d, "jpeg") for d in sample], args.repeat) / len(sample)
    decoded = best_of(lambda: [jpeg_fully_coded(d) for d in sample], args.repeat) / len(sample)
    rows.append(("JPEG truncation check", header, decoded))
    average_kb = sum(p.stat().st_size for p in paths) / len(paths) / 1e3
    print(
        f"{args.images} images ({average_kb:.0f} KB average), refs pickle {len(data) / 1e6:.1f} MB ({args.refs} refs)"
    )
    print(f"{'measurement':26s} {'baseline':>12s} {'checked':>12s} {'ratio':>7s}")
    for name, base, check in rows:
        unit, scale = ("s", 1) if base > 0.01 else ("us", 1e6)
        print(f"{name:26s} {base * scale:10.1f}{unit:>2s} {check * scale:10.1f}{unit:>2s} {check / base:6.2f}x")


if __name__ == "__main__":
    main()
