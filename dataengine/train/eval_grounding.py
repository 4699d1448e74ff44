"""Grounding accuracy on held-out grounding shards: generate answers, parse them with the answer style, score.

- box: hit when the first predicted box has IoU >= 0.5 with a ground-truth box;
- point: each predicted point scores when it falls inside the item's mask (a COCO polygon/RLE in `meta.mask`, if
  the converter stored one) or, without a mask, lies within `point_radius` x image diagonal of a ground-truth
  point; the sample scores the fraction of its points that hit (RoboPoint's metric);
- trace: both traces are resampled to 16 points by arc length; hit when the mean distance is at most
  `trace_tolerance` x image diagonal;
- unparseable answers score 0 and are counted (`parse_failures`).
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict

import numpy as np
import torch

from dataengine.errors import InputError
from dataengine.geometry import box_iou, coco_segmentation_to_mask, point_in_mask
from dataengine.train.collate import Collator, to_device
from dataengine.train.constrained import check_style
from dataengine.train.grounding_data import count_item_units
from dataengine.train.shard_index import ShardEntry
from dataengine.train.streams import ShardStream, StreamLoader

TRACE_POINTS = 16


def resample_polyline(points: list[list[float]], n: int = TRACE_POINTS) -> np.ndarray:
    """n points evenly spaced by arc length along a polyline (a single point is repeated)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(p) == 1:
        return np.repeat(p, n, axis=0)
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    if cum[-1] <= 0:
        return np.repeat(p[:1], n, axis=0)
    s = np.linspace(0, cum[-1], n)
    return np.stack([np.interp(s, cum, p[:, 0]), np.interp(s, cum, p[:, 1])], axis=1)


def score_prediction(task: str, pred: list[list[float]], target: dict, point_radius: float, trace_tol: float) -> dict:
    """{"score": 0..1, plus "iou" or "trace_error"} for one parsed prediction against its target."""
    width, height = target["width"], target["height"]
    diag = math.hypot(width, height)
    gt = target["coords"]
    if not pred:
        return {"score": 0.0, "parsed": False}
    if task == "box":
        iou = max(box_iou(pred[0], g) for g in gt)
        return {"score": float(iou >= 0.5), "iou": iou, "parsed": True}
    if task == "point":
        mask = None
        meta = target.get("meta") or {}
        if meta.get("mask") is not None:
            mask = coco_segmentation_to_mask(meta["mask"], height, width)
        hits = []
        for p in pred:
            if mask is not None:
                hits.append(point_in_mask(p, mask))
            else:
                hits.append(min(math.dist(p, g) for g in gt) <= point_radius * diag)
        return {"score": float(np.mean(hits)), "parsed": True}
    if task == "trace":
        error = float(np.linalg.norm(resample_polyline(pred) - resample_polyline(gt), axis=1).mean() / diag)
        return {"score": float(error <= trace_tol), "trace_error": error, "parsed": True}
    raise InputError(f"cannot score task {task!r}")


def evaluate_grounding(
    policy,
    encoder,
    entries: list[ShardEntry],
    units,
    device: torch.device,
    *,
    max_samples: int,
    max_new_tokens: int,
    point_radius: float,
    trace_tolerance: float,
    batch_size: int = 8,
    constrained: bool = False,
) -> dict:
    """Accuracy over up to `max_samples` held-out items (every usable item of each record, in shard order); with
    `constrained`, answers are decoded under the answer style's grammar (`dataengine/train/constrained.py`)."""
    if constrained:
        check_style(units.style.name)
    entries = count_item_units([copy.copy(e) for e in entries], units)
    if not entries:
        return {"grounding_samples": 0}
    stream = ShardStream(entries, units, shuffle_buffer=1, shuffle_shards=False, epochs=1, rank=0, world_size=1)
    loader = StreamLoader(stream, batch_size, Collator(encoder, for_generation=True))
    style = units.style
    per_task: dict[str, list[float]] = defaultdict(list)
    ious, trace_errors, failures, examples = [], [], 0, []
    was_training = policy.training
    policy.eval()
    try:
        for batch in loader:
            tasks = [t["task"] for t in batch["meta"]["target"]] if constrained else None
            texts = policy.generate(to_device(batch, device), max_new_tokens=max_new_tokens, tasks=tasks)
            for text, target in zip(texts, batch["meta"]["target"], strict=True):
                if sum(map(len, per_task.values())) >= max_samples:
                    break
                task = target["task"]
                pred = style.parse(task, text, target["width"], target["height"])
                result = score_prediction(task, pred, target, point_radius, trace_tolerance)
                per_task[task].append(result["score"])
                failures += not result["parsed"]
                ious += [result["iou"]] if "iou" in result else []
                trace_errors += [result["trace_error"]] if "trace_error" in result else []
                if len(examples) < 5:
                    examples.append({"task": task, "answer": text, "score": result["score"]})
            if sum(map(len, per_task.values())) >= max_samples:
                break
    finally:
        policy.train(was_training)
    scores = [s for v in per_task.values() for s in v]
    return {
        "grounding_samples": len(scores),
        "grounding_accuracy": float(np.mean(scores)) if scores else float("nan"),
        "grounding_by_task": {t: {"n": len(v), "accuracy": float(np.mean(v))} for t, v in sorted(per_task.items())},
        "grounding_parse_failures": failures,
        "grounding_decoding": "constrained" if constrained else "free",
        "grounding_box_mean_iou": float(np.mean(ious)) if ious else None,
        "grounding_trace_mean_error": float(np.mean(trace_errors)) if trace_errors else None,
        "grounding_examples": examples,
    }
