"""Corpus build benchmark: a synthetic N-pair build against a raw tar copy of the same image bytes, same run.

    python bench/corpus_build.py --pairs 1000000 --small-pairs 100000 --workers 2 --out /tmp/bench_corpus

Input: three converted sources written directly as grounding/v1 shards, RefCOCO-like in density (about 9-10
pairs per image: several referring boxes and in-mask points per image), with realistic overlaps: `refcoco` and
`refcocog` share 40% of their images (identical bytes: merged into one sample) and repeat some items exactly
(deduplicated); 5% of the images are val images held out of every source by SHA-1 and COCO id. Images are
320x240 JPEGs (~30 KB), each made unique by a JPEG comment segment (no re-encode).

Measured, each build in a fresh process (its peak memory is the peak of the summed RSS of the whole process
tree: the build, Ray's raylet/GCS and every worker, sampled every 50 ms):
- the N-pair build: pairs/s and pairs/s per core (wall time x cores used);
- a raw tar copy of the same image bytes (read every input tar, write each image into one plain tar);
- a build of `--small-pairs` input: peak memory of the big build / the small one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from dataengine.fixtures.synthetic_refcoco import with_comment
from dataengine.images import sha1_hex
from dataengine.shards.writer import ShardWriter

REPO = Path(__file__).resolve().parents[1]
SIZE = (320, 240)
WORDS = ["left", "right", "middle", "front", "back", "big", "small", "red", "blue", "green", "near the window"]
NOUNS = ["person", "car", "bottle", "chair", "cup", "dog", "laptop", "book"]


def base_jpegs(count: int = 8, seed: int = 0) -> list[bytes]:
    """A few photo-like 320x240 JPEGs (gradient + noise + shapes), ~30 KB each."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x = np.linspace(0, 1, SIZE[0])[None, :, None]
        y = np.linspace(0, 1, SIZE[1])[:, None, None]
        smooth = rng.uniform(30, 200, (1, 1, 3)) + rng.uniform(-80, 80, (1, 1, 3)) * x + 60 * np.sin(6 * y + x)
        pixels = np.clip(smooth + rng.normal(0, 18, (SIZE[1], SIZE[0], 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _items(rng: np.random.Generator, image_id: int, source: str, n_objects: int) -> list[dict]:
    items = []
    for obj in range(n_objects):
        x1, y1 = float(rng.uniform(0, 200)), float(rng.uniform(0, 150))
        box = [round(x1, 2), round(y1, 2), round(x1 + rng.uniform(20, 110), 2), round(y1 + rng.uniform(20, 85), 2)]
        noun = NOUNS[(image_id + obj) % len(NOUNS)]
        for s in range(3):  # sentences per object, as in RefCOCO
            word = WORDS[int(rng.integers(len(WORDS)))]
            query = f"the {word} {noun} {obj}" if s else f"{noun} number {obj}"  # s=0 repeats across sources
            sid = f"{source}-{image_id}-{obj}-{s}"
            items.append({"task": "box", "query": query, "boxes": [box], "label": noun, "source_id": sid})
        centre = [round((box[0] + box[2]) / 2, 2), round((box[1] + box[3]) / 2, 2)]
        items.append({"task": "point", "query": f"{noun} number {obj}", "points": [centre], "label": noun})
    return items


def write_sources(root: Path, pairs: int, seed: int = 0) -> dict[str, Path]:
    """Write the three sources; returns name -> shard folder. About `pairs` pairs before dedup and holdouts."""
    rng = np.random.default_rng(seed)
    bases = base_jpegs(seed=seed)
    per_image = 2 * 4 + 1.5  # refcoco/refcocog: 2 objects x (3 boxes + 1 point); pointing: ~1.5
    n_images = max(10, int(pairs / per_image * 1.35))  # refcocog shares 40% of refcoco's images
    n_ref = int(n_images * 0.55)
    plans = {
        "refcoco": range(1, n_ref + 1),
        "refcocog": range(int(n_ref * 0.6) + 1, int(n_ref * 0.6) + n_ref + 1),
        "pointing": range(n_images - int(n_images * 0.2) + 1, n_images + 1),
    }
    paths = {}
    for source, ids in plans.items():
        out = root / source
        writer = ShardWriter(out, source, max_samples=5_000)
        for image_id in ids:
            image = with_comment(bases[image_id % len(bases)], f"bench image {image_id}".encode())
            split = "val" if image_id % 20 == 0 else "train"
            if source == "pointing":
                n = 1 + image_id % 2
                items = [
                    {"task": "point", "query": f"a free spot {k}", "points": [[float(10 + k), float(20 + k)]]}
                    for k in range(n)
                ]
            else:
                items = _items(rng, image_id, source, n_objects=2)
            record = {
                "schema": "grounding/v1",
                "key": f"{source}_{image_id:09d}",
                "source": source,
                "split": split,
                "license": "CC-BY-4.0",
                "image": {
                    "width": SIZE[0],
                    "height": SIZE[1],
                    "sha1": sha1_hex(image),
                    "origin": f"COCO_train2014_{image_id:012d}.jpg",
                    "format": "jpeg",
                },
                "items": items,
            }
            data = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
            writer.write(record["key"], {"jpg": image, "json": data})
        writer.close()
        paths[source] = out
    return paths


RECIPE = """\
name: bench_{label}
version: 1
seed: 1
sources:
  - {{name: refcoco, from: {{shards: {root}/refcoco}}, weight: 1, splits: [train]}}
  - {{name: refcocog, from: {{shards: {root}/refcocog}}, weight: 1, splits: [train]}}
  - {{name: pointing, from: {{shards: {root}/pointing}}, weight: 1}}
holdouts:
  - {{name: val_images, sources: [refcoco, refcocog], splits: [val]}}
"""


def raw_tar_copy(sources: dict[str, Path], out: Path) -> tuple[float, int, int]:
    """Read every input tar and write its image members into one plain tar; (seconds, images, bytes)."""
    start = time.perf_counter()
    images = total = 0
    with open(out, "wb", buffering=1 << 20) as fh, tarfile.open(fileobj=fh, mode="w") as dst:
        for folder in sources.values():
            for shard in sorted(folder.glob("*.tar")):
                with tarfile.open(shard, "r:") as src:
                    for member in src:
                        if member.name.endswith(".jpg"):
                            data = src.extractfile(member).read()
                            info = tarfile.TarInfo(member.name)
                            info.size = len(data)
                            dst.addfile(info, io.BytesIO(data))
                            images += 1
                            total += len(data)
    return time.perf_counter() - start, images, total


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def measured_build(recipe: Path, out: Path, workers: int) -> dict:
    """Run `dataengine build` in a fresh process; wall time and peak RSS of its process tree."""
    cmd = [sys.executable, "-m", "dataengine.cli.app", "build", str(recipe), "--out", str(out)]
    cmd += ["--workers", str(workers)]
    peak = peak_driver = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ps = psutil.Process(proc.pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_driver
        while not stop.is_set():
            peak = max(peak, _tree_rss(ps))
            with contextlib.suppress(psutil.Error):
                peak_driver = max(peak_driver, ps.memory_info().rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"build failed:\n{output.decode()[-3000:]}")
    stats = json.loads((out / "stats.json").read_text())
    timing = json.loads((out / "_state" / "timing.json").read_text())
    return {
        "seconds": seconds,
        "build_seconds": timing["seconds"],
        "peak_rss": peak,
        "peak_driver_rss": peak_driver,
        "stats": stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--small-pairs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_corpus"))
    parser.add_argument("--keep", action="store_true", help="keep the generated inputs and outputs")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    results = {}
    for label, pairs in (("small", args.small_pairs), ("big", args.pairs)):
        t0 = time.perf_counter()
        sources = write_sources(args.out / f"{label}_sources", pairs)
        print(f"{label}: wrote inputs for ~{pairs:,} pairs in {time.perf_counter() - t0:.1f}s", flush=True)
        recipe = args.out / f"{label}.yaml"
        recipe.write_text(RECIPE.format(label=label, root=args.out / f"{label}_sources"))
        os.sync()
        build = measured_build(recipe, args.out / f"{label}_out", args.workers)
        results[label] = build
        s = build["stats"]
        print(
            f"{label}: {s['pairs']:,} pairs, {s['samples']:,} samples, {s['bytes'] / 1e9:.2f} GB in "
            f"{build['seconds']:.1f}s (build {build['build_seconds']:.1f}s); peak RSS {build['peak_rss'] / 2**20:,.0f} "
            f"MiB (driver {build['peak_driver_rss'] / 2**20:,.0f} MiB)",
            flush=True,
        )
        if label == "big":
            copy_s, images, nbytes = raw_tar_copy(sources, args.out / "raw_copy.tar")
            results["copy"] = {"seconds": copy_s, "images": images, "bytes": nbytes}
            print(f"raw tar copy: {images:,} images, {nbytes / 1e9:.2f} GB in {copy_s:.1f}s", flush=True)
        if not args.keep:
            shutil.rmtree(args.out / f"{label}_out", ignore_errors=True)
    big, small, copy = results["big"], results["small"], results["copy"]
    pairs = big["stats"]["pairs"]
    input_images = copy["images"]
    build_img_s = input_images / big["seconds"]
    copy_img_s = input_images / copy["seconds"]
    summary = {
        "pairs": pairs,
        "samples": big["stats"]["samples"],
        "input_images": input_images,
        "input_image_bytes": copy["bytes"],
        "build_seconds_wall": round(big["seconds"], 2),
        "build_pairs_per_s": round(pairs / big["seconds"]),
        "build_pairs_per_s_per_core": round(pairs / big["seconds"] / args.workers),
        "copy_seconds": round(copy["seconds"], 2),
        "build_input_images_per_s": round(build_img_s),
        "copy_images_per_s": round(copy_img_s),
        "speed_ratio_build_over_copy": round(build_img_s / copy_img_s, 3),
        "peak_rss_big_mib": round(big["peak_rss"] / 2**20),
        "peak_rss_small_mib": round(small["peak_rss"] / 2**20),
        "small_pairs": small["stats"]["pairs"],
        "memory_ratio_big_over_small": round(big["peak_rss"] / small["peak_rss"], 3),
        "peak_driver_rss_big_mib": round(big["peak_driver_rss"] / 2**20),
        "peak_driver_rss_small_mib": round(small["peak_driver_rss"] / 2**20),
        "workers": args.workers,
    }
    print(json.dumps(summary, indent=1))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    if not args.keep:
        for label in ("small", "big"):
            shutil.rmtree(args.out / f"{label}_sources", ignore_errors=True)
        (args.out / "raw_copy.tar").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
