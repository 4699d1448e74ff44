"""Benchmark: RefCOCO conversion speed against a plain tar copy of the same image bytes, in the same run.

    python bench/convert_refcoco.py --n 20000 --work /tmp/dataengine_convert_bench [--repeat 2]

Builds (or reuses) a synthetic RefCOCO-layout dataset of N COCO-sized JPEGs (`dataengine fixtures
refcoco-synthetic`), warms the page cache and a local Ray (2 CPUs), then times (outputs to --out-root, RAM by
default, so that every method writes at memory speed and the disk's write-back does not decide the result)
  (a) a plain tar copy of every image file (read, append to one USTAR tar; the baseline),
  (b) `run_conversion("refcoco", ..., workers=1)` on Ray,
  (c) the same with workers=2,
each `--repeat` times, keeping the best (other jobs on the machine only slow a run down). Targets: speed(b) >=
0.5 x speed(a); speed(c) >= 1.6 x speed(b). Prints the figures, the load average around each run, the CPU time
spent (this process plus the local Ray's processes: a load-robust view of the cost) and a JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path


def generate(work: Path, n: int, seed: int):
    from dataengine.fixtures.base import FixtureInfo
    from dataengine.fixtures.synthetic_refcoco import build_synthetic_refer

    marker = work / "dataset.json"
    if marker.exists() and json.loads(marker.read_text()) == {"n": n, "seed": seed}:
        return FixtureInfo("refcoco", work / "data" / "refer", work / "data" / "coco" / "train2014")
    shutil.rmtree(work / "data", ignore_errors=True)
    started = time.perf_counter()
    info = build_synthetic_refer(work / "data", n=n, seed=seed)
    print(f"generated {n} images in {time.perf_counter() - started:.1f}s")
    marker.write_text(json.dumps({"n": n, "seed": seed}))
    return info


def image_files(images_dir: Path) -> list[Path]:
    return sorted(p for p in images_dir.iterdir() if p.suffix == ".jpg")


IO_BUFFER = 1 << 20  # the shard writer's file buffer and tar copy size, so the baseline is as tuned


def tar_copy(files: list[Path], out: Path) -> float:
    """The baseline: read every image and append it to one USTAR tar (fixed mtime), with the same 1 MB file
    buffer and tar copy size as the shard writer."""
    started = time.perf_counter()
    with (
        open(out, "wb", buffering=IO_BUFFER) as fh,
        tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT, copybufsize=IO_BUFFER) as tar,
    ):
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return time.perf_counter() - started


def convert(info, out: Path, workers: int) -> tuple[float, dict]:
    from dataengine.converters import run_conversion

    started = time.perf_counter()
    report = run_conversion(
        "refcoco", info.input_path, out, images_dir=info.images_dir, workers=workers, show_progress=False
    )
    return time.perf_counter() - started, report


def stage_costs(info, files: list[Path], repeats: int = 5) -> dict[str, float]:
    """CPU microseconds per image of each step, each the minimum over `repeats` runs (outputs in RAM when
    /dev/shm exists): where a conversion spends its time compared with the tar copy."""
    import tempfile

    from dataengine.converters.base import ConvertOptions
    from dataengine.converters.refcoco import RefCocoConverter

    n = len(files)
    scratch = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    options = ConvertOptions(input_path=str(info.input_path), images_dir=str(info.images_dir), limit=n)
    converter = RefCocoConverter(options)
    best: dict[str, float] = {}

    def timed(name, fn):
        started = time.process_time()
        result = fn()
        best[name] = min(best.get(name, float("inf")), (time.process_time() - started) / n * 1e6)
        return result

    try:
        for _ in range(repeats):
            _stage_round(converter, files, scratch, timed)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    plan = "convert: plan (reads the annotations of the whole set)"
    best[plan] *= n / len(image_files(info.images_dir))  # per image of the whole set
    return best


def _stage_round(converter, files: list[Path], scratch: Path, timed) -> None:
    from dataengine.converters.base import Sample, TaskStats
    from dataengine.converters.common import gc_paused, image_info
    from dataengine.records.grounding import GroundingRecord
    from dataengine.shards.grounding import manifest_rows
    from dataengine.shards.writer import ShardWriter

    datas = timed("baseline: read image files", lambda: [p.read_bytes() for p in files])
    timed("baseline: tar the bytes", lambda: tar_bytes(files, datas, scratch / "base.tar"))
    with gc_paused():
        parts = timed("convert: plan (reads the annotations of the whole set)", converter.plan)
        timed("convert: inner points of polygons", lambda: [converter._inner_points(p["images"]) for p in parts])
        timed("convert: SHA-1 + image header", lambda: [image_info(d, "x") for d in datas])
        outs = timed(
            "convert: read() (files, SHA-1, header, points, items)",
            lambda: [o for p in parts for o in converter.read(p, TaskStats()) if isinstance(o, Sample)],
        )
        records = timed(
            "convert: validate records (pydantic)", lambda: [GroundingRecord.model_validate(o.record) for o in outs]
        )
    jsons = timed("convert: record JSON (to_json_bytes)", lambda: [r.to_json_bytes() for r in records])
    timed("convert: manifest rows", lambda: [manifest_rows(r, "x") for r in records])

    def write_shards():
        with ShardWriter(scratch / "shards", "p") as writer:
            for record, output, data in zip(records, outs, jsons, strict=True):
                writer.write(record.key, {"json": data, "jpg": output.image_bytes})
        shutil.rmtree(scratch / "shards")

    timed("convert: tar the JSON and image members (ShardWriter)", write_shards)


def tar_bytes(files: list[Path], datas: list[bytes], out: Path) -> None:
    with (
        open(out, "wb", buffering=IO_BUFFER) as fh,
        tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT, copybufsize=IO_BUFFER) as tar,
    ):
        for path, data in zip(files, datas, strict=True):
            info = tarfile.TarInfo(path.name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and every descendant (the local Ray: raylet, GCS, workers)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="images in the synthetic dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dataengine_convert_bench"), help="scratch folder")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement, best kept (0: stages only)")
    parser.add_argument(
        "--stages", type=int, default=0, help="also print CPU us/image of each step on the first N images"
    )
    parser.add_argument(
        "--out-root",
        type=Path,
        default=Path("/dev/shm/dataengine_convert_bench_out") if Path("/dev/shm").is_dir() else None,
        help="where the outputs of each measurement go (deleted after it); default /dev/shm, so that the disk's "
        "write-back speed does not decide the result (the input is read from the warm page cache)",
    )
    args = parser.parse_args()
    out_root = args.out_root or args.work / "outputs"
    out_root.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    info = generate(args.work, args.n, args.seed)
    files = image_files(info.images_dir)
    total_bytes = sum(p.stat().st_size for p in files)
    print(f"{len(files)} images, {total_bytes / 1e9:.2f} GB, {total_bytes / len(files) / 1e3:.0f} KB average")
    for path in files:  # warm the page cache so every measurement reads from memory
        path.read_bytes()
    if args.stages:
        print(f"CPU us/image of each step (first {args.stages} images, best of 5, load {load()}):")
        for name, micros in stage_costs(info, files[: args.stages]).items():
            print(f"  {name:58s} {micros:7.1f}")
    if args.repeat < 1:
        return

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        warm = out_root / "warmup"
        shutil.rmtree(warm, ignore_errors=True)
        from dataengine.converters import run_conversion

        run_conversion(
            "refcoco", info.input_path, warm, images_dir=info.images_dir, limit=600, workers=2, show_progress=False
        )  # starts both workers and imports the engine in them
        shutil.rmtree(warm)
        times: dict[str, list[float]] = {"tar_copy": [], "workers_1": [], "workers_2": []}
        cpu: dict[str, list[float]] = {name: [] for name in times}
        reports = {}
        for round_ in range(args.repeat):
            for name in times:
                os.sync()  # start every measurement with no dirty pages from the previous one
                before, cpu_before = load(), cpu_seconds()
                if name == "tar_copy":
                    target = out_root / "baseline.tar"
                    seconds = tar_copy(files, target)
                    target.unlink()
                else:
                    out = out_root / f"out_{name}"
                    shutil.rmtree(out, ignore_errors=True)
                    seconds, reports[name] = convert(info, out, workers=int(name[-1]))
                    shutil.rmtree(out)
                times[name].append(seconds)
                cpu[name].append(cpu_seconds() - cpu_before)
                print(
                    f"round {round_ + 1} {name:10s} {seconds:7.2f}s  {len(files) / seconds:7.0f} images/s  "
                    f"cpu {cpu[name][-1]:6.2f}s  load before {before}, after {load()}"
                )
    finally:
        ray.shutdown()
        with contextlib.suppress(OSError):
            out_root.rmdir()  # only when empty
    best = {name: min(values) for name, values in times.items()}
    speed = {name: len(files) / seconds for name, seconds in best.items()}
    result = {
        "images": len(files),
        "gigabytes": round(total_bytes / 1e9, 3),
        "pairs": reports["workers_1"]["pairs"],
        "seconds": {k: round(v, 2) for k, v in best.items()},
        "images_per_second": {k: round(v, 1) for k, v in speed.items()},
        "ratio_1_worker_vs_tar_copy": round(speed["workers_1"] / speed["tar_copy"], 3),
        "ratio_2_workers_vs_1_worker": round(speed["workers_2"] / speed["workers_1"], 3),
        "cpu_seconds": {k: round(min(v), 2) for k, v in cpu.items()},
        "cpu_ratio_tar_copy_vs_1_worker": round(min(cpu["tar_copy"]) / min(cpu["workers_1"]), 3),
        "cpus": os.cpu_count(),
    }
    print(
        f"1 worker: {result['ratio_1_worker_vs_tar_copy']:.2f}x the tar copy (target >= 0.5); "
        f"2 workers: {result['ratio_2_workers_vs_1_worker']:.2f}x 1 worker (target >= 1.6)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
