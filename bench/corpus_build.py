"""Corpus build benchmark: a synthetic N-pair build against a raw tar copy of the same image bytes, same run.

    python bench/corpus_build.py --pairs 1000000 --small-pairs 100000 --workers 2 --out /tmp/bench_corpus

Input: three converted sources written directly as grounding/v1 shards, RefCOCO-like in density (about 11
pairs per input image: several referring boxes and in-object points, or several pointing questions), with
realistic overlaps: `refcoco` and
`refcocog` share 40% of their images (identical bytes: merged into one sample) and repeat some items exactly
(deduplicated); 5% of the images are val images held out of every source by SHA-1 and COCO id. Images are
640x480 JPEGs of about 100 KB (COCO-like), each made unique by a JPEG comment segment (no re-encode).

Measured, each build in a fresh `dataengine build` process (peak memory is the peak of the summed RSS of the whole
process tree: the build, Ray's raylet/GCS and every worker, sampled every 50 ms; CPU time is summed over that
tree too, so it does not depend on what else shares the machine):
- the N-pair build: pairs/s (wall), pairs/s per core (wall x workers) and pairs per CPU second;
- a raw tar copy of the same image bytes in the same run (read every input tar with `tarfile`, write each image
  into one plain tar): the speed ratio build / copy on input images per second (wall), and on CPU time;
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
SIZE = (640, 480)
WORDS = ["left", "right", "middle", "front", "back", "big", "small", "red", "blue", "green", "near the window"]
NOUNS = ["person", "car", "bottle", "chair", "cup", "dog", "laptop", "book"]


def base_jpegs(count: int = 8, seed: int = 0) -> list[bytes]:
    """A few photo-like 640x480 JPEGs (gradient, noise, shapes) of about 100 KB, like COCO images."""
    rng = np.random.default_rng(seed)
    out = []
    x = np.linspace(0, 1, SIZE[0])[None, :, None]
    y = np.linspace(0, 1, SIZE[1])[:, None, None]
    for _ in range(count):
        smooth = rng.uniform(30, 200, (1, 1, 3)) + rng.uniform(-80, 80, (1, 1, 3)) * x + 60 * np.sin(6 * y + x)
        pixels = np.clip(smooth + rng.normal(0, 20, (SIZE[1], SIZE[0], 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def _refer_items(rng: np.random.Generator, image_id: int, source: str, n_objects: int) -> list[dict]:
    """RefCOCO-like: per object three referring expressions (boxes) and one in-object point."""
    items = []
    for obj in range(n_objects):
        x1, y1 = float(rng.uniform(0, 500)), float(rng.uniform(0, 380))
        box = [round(x1, 2), round(y1, 2), round(x1 + rng.uniform(20, 130), 2), round(y1 + rng.uniform(20, 95), 2)]
        noun = NOUNS[(image_id + obj) % len(NOUNS)]
        for s in range(3):
            word = WORDS[int(rng.integers(len(WORDS)))]
            query = f"the {word} {noun} {obj}" if s else f"{noun} number {obj}"  # s=0 repeats across sources
            sid = f"{source}-{image_id}-{obj}-{s}"
            items.append({"task": "box", "query": query, "boxes": [box], "label": noun, "source_id": sid})
        centre = [round((box[0] + box[2]) / 2, 2), round((box[1] + box[3]) / 2, 2)]
        items.append({"task": "point", "query": f"{noun} number {obj}", "points": [centre], "label": noun})
    return items


def _point_items(image_id: int) -> list[dict]:
    """PixMo-like: several pointing questions per image."""
    return [
        {"task": "point", "query": f"point to the {NOUNS[(image_id + k) % len(NOUNS)]} {k}",
         "points": [[float(40 + 60 * k), float(30 + 45 * k)]]}
        for k in range(8)
    ]  # fmt: skip


def write_sources(root: Path, pairs: int, seed: int = 0) -> dict[str, Path]:
    """Write the three sources; returns name -> shard folder. About `pairs` pairs before dedup and holdouts, about
    11 pairs per input image: `refcoco` on images [1, U/2] (3 objects), `refcocog` on [0.3U, 0.8U] (2 objects;
    40% of its images are refcoco's), `pointing` on (0.8U, U] (8 points each); every 20th image is a val image."""
    rng = np.random.default_rng(seed)
    bases = base_jpegs(seed=seed)
    unique = max(20, int(pairs / 10.8))
    plans = {
        "refcoco": range(1, unique // 2 + 1),
        "refcocog": range(int(unique * 0.3) + 1, int(unique * 0.8) + 1),
        "pointing": range(int(unique * 0.8) + 1, unique + 1),
    }
    paths = {}
    for source, ids in plans.items():
        out = root / source
        writer = ShardWriter(out, source, max_samples=5_000)
        for image_id in ids:
            image = with_comment(bases[image_id % len(bases)], f"bench image {image_id}".encode())
            split = "val" if image_id % 20 == 0 else "train"
            if source == "pointing":
                items = _point_items(image_id)
            else:
                items = _refer_items(rng, image_id, source, n_objects=3 if source == "refcoco" else 2)
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


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def measured_build(recipe: Path, out: Path, workers: int) -> dict:
    """Run `dataengine build` in a fresh process: wall time, peak RSS of its process tree (and of the driver),
    and CPU seconds of the whole tree (the last reading of every process seen, sampled every 50 ms)."""
    cmd = [sys.executable, "-m", "dataengine.cli.app", "build", str(recipe), "--out", str(out)]
    cmd += ["--workers", str(workers)]
    peak = peak_driver = 0
    cpu: dict[int, float] = {}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ps = psutil.Process(proc.pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_driver
        while not stop.is_set():
            total = 0
            for p in _tree(ps):
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
                    times = p.cpu_times()
                    cpu[p.pid] = times.user + times.system
                    if p.pid == ps.pid:
                        peak_driver = max(peak_driver, p.memory_info().rss)
            peak = max(peak, total)
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
        "cpu_seconds": sum(cpu.values()),
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
    parser.add_argument(
        "--sources-only", action="store_true", help="write the inputs for --pairs and OUT/big.yaml, then stop"
    )
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    if args.sources_only:  # e.g. for `dataengine build OUT/big.yaml --dry-run --nodes 8 --cpus-per-node 64`
        write_sources(args.out / "big_sources", args.pairs)
        (args.out / "big.yaml").write_text(RECIPE.format(label="big", root=args.out / "big_sources"))
        return
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
            f"MiB (driver {build['peak_driver_rss'] / 2**20:,.0f} MiB); {build['cpu_seconds']:.1f} CPU s",
            flush=True,
        )
        if not args.keep:  # free the disk before the copy
            shutil.rmtree(args.out / f"{label}_out", ignore_errors=True)
        if label == "big":
            os.sync()
            cpu0 = time.process_time()
            copy_s, images, nbytes = raw_tar_copy(sources, args.out / "raw_copy.tar")
            cpu_s = time.process_time() - cpu0
            results["copy"] = {"seconds": copy_s, "cpu_seconds": cpu_s, "images": images, "bytes": nbytes}
            print(f"raw tar copy: {images:,} images, {nbytes / 1e9:.2f} GB in {copy_s:.1f}s", flush=True)
            if not args.keep:
                (args.out / "raw_copy.tar").unlink()
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
        "build_pairs_per_s_per_core": round(pairs / big["seconds"] / max(1, args.workers)),  # workers 0: inline
        "copy_seconds": round(copy["seconds"], 2),
        "build_input_images_per_s": round(build_img_s),
        "copy_images_per_s": round(copy_img_s),
        "speed_ratio_build_over_copy": round(build_img_s / copy_img_s, 3),
        "build_cpu_seconds": round(big["cpu_seconds"], 1),
        "copy_cpu_seconds": round(copy["cpu_seconds"], 1),
        "build_pairs_per_cpu_second": round(pairs / big["cpu_seconds"]),
        "cpu_ratio_copy_over_build": round(copy["cpu_seconds"] / big["cpu_seconds"], 3),
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
