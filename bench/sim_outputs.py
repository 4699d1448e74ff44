"""Throughput of what generated episodes become: LeRobot exports, grounding QA and previews.

    python bench/sim_outputs.py --episodes-dir DIR      # an existing `dataengine sim generate` output
    python bench/sim_outputs.py --generate 8            # or generate N fast-preset demo episodes first

Baseline, measured in the same run on the same episodes: reading every episode shard and decoding every stored
JPEG (the work any consumer of the frames must do). Each output is reported as frames (camera images) per second
and as a ratio to that baseline; to-grounding, which copies JPEG bytes without decoding, is compared with reading
alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes-dir", type=Path)
    parser.add_argument("--generate", type=int, default=0, help="generate this many demo episodes first")
    args = parser.parse_args()

    from dataengine.converters.runner import run_conversion
    from dataengine.export.lerobot import export_lerobot
    from dataengine.inspect.sim_preview import preview_episode
    from dataengine.shards.episode import iter_episodes

    work = Path(tempfile.mkdtemp(prefix="bench_simout_"))
    try:
        src = args.episodes_dir
        if src is None:
            from dataengine.fixtures.sim_frames import build_sim_episodes

            src = work / "episodes"
            build_sim_episodes(src, n=max(1, args.generate or 8))
        episodes = list(iter_episodes(src))
        images = sum(e.num_steps * len(e.cameras) for e in episodes)
        read_s = timed(lambda: list(iter_episodes(src)))

        def decode_all():
            for ep in iter_episodes(src):
                for cam in ep.cameras:
                    for t in range(ep.num_steps):
                        ep.rgb(cam, t)

        decode_s = timed(decode_all)
        results = {
            "episodes": len(episodes),
            "camera_images": images,
            "baseline_read_s": round(read_s, 3),
            "baseline_read_decode_s": round(decode_s, 3),
        }
        for fmt in ("v3.0", "v2.1"):
            seconds = timed(lambda fmt=fmt: export_lerobot(src, work / f"lerobot_{fmt}", format=fmt))
            results[f"export_{fmt}_s"] = round(seconds, 3)
            results[f"export_{fmt}_images_per_s"] = round(images / seconds, 1)
            results[f"export_{fmt}_vs_decode"] = round(seconds / decode_s, 2)
        seconds = timed(lambda: run_conversion("sim-frames", src, work / "grounding", workers=0, show_progress=False))
        results["to_grounding_s"] = round(seconds, 3)
        results["to_grounding_vs_read"] = round(seconds / read_s, 2)
        key = episodes[0].key
        seconds = timed(lambda: preview_episode(src, key, work / "p.gif", labels=True))
        results["preview_gif_s"] = round(seconds, 3)
        results["preview_gif_steps_per_s"] = round(episodes[0].num_steps / seconds, 1)
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
