"""`dataengine export lerobot`: simulated episode shards -> LeRobot v3.0 (default) or v2.1 + GR00T modality.json."""

from __future__ import annotations

from pathlib import Path

import typer

from dataengine.runtime.logs import console


def lerobot(
    path: Path = typer.Argument(..., help="Directory of episode/v1 shards (`dataengine sim generate` output)."),
    out: Path = typer.Option(..., "--out", help="Output dataset folder (written as OUT.partial, then renamed)."),
    format: str = typer.Option("v3.0", "--format", help="v3.0 (LeRobotDataset today) or v2.1 (+ meta/modality.json)."),
    codec: str = typer.Option("h264", "--codec", help="Video codec: h264 (fast, default) or av1 (LeRobot's default)."),
    crf: int | None = typer.Option(None, "--crf", help="Encoder quality (lower = closer); default h264 18, av1 30."),
    instruction: str = typer.Option(
        "base", "--instruction", help="Which instruction becomes the LeRobot task: base, attr, semantic, spatial."
    ),
    robot_type: str = typer.Option("franka_panda", "--robot-type", help="info.json robot_type."),
    grounding: list[str] = typer.Option(
        [],
        "--grounding",
        help="A `dataengine export llava-json` output to co-train with, DIR or DIR%NN (sampling rate, percent); "
        "repeatable; default: the `llava` folder beside OUT. Goes into OUT/trainer/.",
    ),
    trainer: str = typer.Option(
        "starvla",
        "--trainer",
        help="The loader meta/stats_gr00t.json and OUT/trainer/ are written for: starvla (any format) or "
        "internvla-m1 (needs --format v2.1).",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Export at most this many episodes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty OUT."),
) -> None:
    """Write a LeRobot dataset: chunked parquet + one MP4 per camera, meta with tasks, stats and camera params, and
    OUT/trainer/ with the starVLA / InternVLA-M1 configuration."""
    from dataengine.export.lerobot import export_lerobot
    from dataengine.export.lerobot_common import ExportOptions
    from dataengine.export.trainer_config import GroundingSource
    from dataengine.export.video import VideoSettings
    from dataengine.runtime.logs import setup_logging

    setup_logging()
    video = VideoSettings(codec=codec, crf=crf if crf is not None else (18 if codec == "h264" else 30))
    sources = [GroundingSource.parse(text) for text in grounding]
    options = ExportOptions(
        video=video, instruction=instruction, robot_type=robot_type, grounding=sources, trainer=trainer
    )
    report = export_lerobot(path, out, format=format, options=options, overwrite=overwrite, limit=limit)
    console.print(
        f"LeRobot {report.format}: {report.episodes} episodes, {report.frames} frames, {report.tasks} tasks, "
        f"{report.videos} videos ({', '.join(report.cameras)}) in {report.wall_s:.1f} s -> {out}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    from dataengine.cli.groups import export_app, reads_job_folders

    export_app.command("lerobot")(reads_job_folders(lerobot))
