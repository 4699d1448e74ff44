"""`dataengine export lerobot`: episode/v1 shards -> a LeRobot dataset (v3.0 or v2.1, both with GR00T's
`meta/modality.json` and `meta/stats_gr00t.json`) and, in `trainer/`, the starVLA / InternVLA-M1 configuration.

The export is written into `OUT.partial/` and renamed to `OUT` when complete, so a crash never leaves a
half-written dataset that a reader would accept. Episodes are exported in shard order (the order `sim generate`
wrote them), numbered 0..N-1; `meta/` keeps each one's episode key. Frames are decoded from the stored JPEGs and
encoded once into MP4 (`dataengine.export.video`); everything else is copied from the episode arrays.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Literal

from dataengine.errors import InputError
from dataengine.export.lerobot_common import ExportOptions, ExportReport
from dataengine.export.trainer_config import check_trainer, write_trainer_config
from dataengine.shards.episode import iter_episodes

log = logging.getLogger(__name__)

FORMATS = ("v3.0", "v2.1")
REPORT_NAME = "export_report.json"


def export_lerobot(
    episodes_dir: str | Path,
    out_dir: str | Path,
    *,
    format: Literal["v3.0", "v2.1"] = "v3.0",
    options: ExportOptions | None = None,
    overwrite: bool = False,
    limit: int | None = None,
) -> ExportReport:
    """Export every episode under `episodes_dir` (at most `limit`) to `out_dir`. Returns the report."""
    if format not in FORMATS:
        raise InputError(f"unknown LeRobot format {format!r}; valid: {list(FORMATS)}")
    options = options or ExportOptions()
    check_trainer(options.trainer, format)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} is not empty; pass --overwrite to replace it")
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    episodes = iter_episodes(episodes_dir)
    if limit is not None:
        episodes = (ep for i, ep in enumerate(iter_episodes(episodes_dir)) if i < limit)
    wall0 = time.perf_counter()
    if format == "v3.0":
        from dataengine.export.lerobot_v30 import write_v30 as writer
    else:
        from dataengine.export.lerobot_v21 import write_v21 as writer
    try:
        report: ExportReport = writer(episodes, partial, options)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # never leave a half-written dataset behind
        raise
    if report.episodes == 0:
        shutil.rmtree(partial)
        raise InputError(f"no episodes under {episodes_dir}")
    report.videos = sum(1 for _ in (partial / "videos").rglob("*.mp4"))
    views = list(json.loads((partial / "meta" / "modality.json").read_text(encoding="utf-8"))["video"])
    write_trainer_config(
        partial,
        out,
        format=format,
        codec=options.video.codec,
        views=views,
        grounding=options.grounding,
        trainer=options.trainer,
    )
    summary = {**report.to_dict(), "source": str(Path(episodes_dir).resolve()), "fps": options.fps}
    summary["video"] = options.video.__dict__
    summary["instruction"] = options.instruction
    (partial / REPORT_NAME).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    partial.replace(out)
    report.wall_s = round(time.perf_counter() - wall0, 3)
    log.info("exported %d episodes (%d frames) to %s in %.1f s", report.episodes, report.frames, out, report.wall_s)
    return report
