"""Benchmark: the errors of rung 2b's first-frame network (docs/training.md, "Perceive once, then act") on fresh
first frames: layouts of the sim recipe rendered at t = 0 with seeds disjoint from its training frames (default
recipe seed + 3e6; training uses + 2e6) and from the evaluator's (+ 1e6). Prints one JSON line: medians and 90th
percentiles of the grasp / place point errors (3-D, m, after back-projection), the image-point errors (px), the
grasp yaw error modulo pi (deg; symmetric objects have several right answers, so this overstates it) and the size
errors (m), and the fraction of frames whose grasp point is within 1 cm / over 3 cm off.

    python bench/perception_errors.py --run RUN_DIR --sim EPISODES/recipe.resolved.json [--frames 240]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a vision_perceive_once run folder (perception.pt)")
    ap.add_argument("--sim", type=Path, required=True, help="the sim recipe (EPISODES/recipe.resolved.json)")
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--seed-offset", type=int, default=3_000_000)
    args = ap.parse_args()
    import torch

    from dataengine.train.first_frame import render_first_frames
    from dataengine.train.perception import PERCEPTION_FILE, FirstFrameSet, load_perceiver, perception_errors

    torch.set_num_threads(1)
    perceiver, cfg = load_perceiver(args.run / PERCEPTION_FILE)
    frames = render_first_frames(args.sim, args.frames, camera=cfg.camera, image_size=cfg.image_size,
                                 seed_offset=args.seed_offset, per_scene=cfg.per_scene)  # fmt: skip
    print(json.dumps(perception_errors(perceiver, FirstFrameSet(frames, cfg.crop_rows))))


if __name__ == "__main__":
    main()
