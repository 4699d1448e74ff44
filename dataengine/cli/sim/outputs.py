"""`dataengine sim to-grounding | preview | bench`: what generated episodes become (docs/sim_outputs.md); `preview`
of a recipe shows the scenes it samples (docs/sim.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from dataengine.runtime.logs import console


def _camera_list(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def to_grounding(
    path: Path = typer.Argument(..., help="Directory of episode/v1 shards (`dataengine sim generate` output)."),
    out: Path = typer.Option(..., "--out", help="Output folder of grounding/v1 shards + manifest.parquet."),
    frames_per_episode: int = typer.Option(4, "--frames-per-episode", min=1, help="Frames per episode and camera."),
    cameras: str | None = typer.Option(None, "--cameras", help="Comma-separated cameras (default: all)."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Parallel tasks (0 = inline, no Ray)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Join a running Ray cluster."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
) -> None:
    """Box, point and trace QA (grounding/v1) from rendered frames, where the target is visible enough: the
    `sim-frames` converter (`dataengine convert sim-frames`) with these options."""
    from dataengine.converters.runner import run_conversion
    from dataengine.runtime.logs import setup_logging

    setup_logging()
    options = {"frames_per_episode": frames_per_episode, "cameras": _camera_list(cameras)}
    report = run_conversion(
        "sim-frames", path, out, source_options=options, workers=workers, ray_address=ray_address, resume=resume
    )
    tasks = ", ".join(f"{k} {v}" for k, v in report["items_by_task"].items()) or "none"
    console.print(
        f"{report['written_samples']} samples, {report['pairs']} pairs ({tasks}) from {report['read']} episodes "
        f"-> {out}",
        highlight=False,
    )
    for reason, count in report["skipped_by_reason"].items():
        console.print(f"  left out {reason}: {count}", highlight=False)
    console.print(f"report: {out / 'convert_report.json'}  check: dataengine validate {out}", highlight=False)


def preview(
    path: Path = typer.Argument(
        ..., help="Directory of episode/v1 shards, or a simulation recipe YAML (a contact sheet of sampled scenes)."
    ),
    out: Path = typer.Option(..., "--out", help="FILE.gif or FILE.mp4 (episodes); FILE.png or .jpg (a recipe)."),
    episode: str | None = typer.Option(None, "--episode", help="Episode key (default: the first episode)."),
    labels: bool = typer.Option(False, "--labels", help="Draw boxes, grasp/place points and the tool trace."),
    cameras: str | None = typer.Option(
        None, "--cameras", help="Comma-separated cameras (default: all; a recipe's sheet: its first world camera)."
    ),
    stride: int = typer.Option(1, "--stride", min=1, help="Keep every N-th step."),
    n: int = typer.Option(16, "--n", min=1, max=400, help="A recipe's sheet: how many scenes (0 .. n-1)."),
    cols: int | None = typer.Option(None, "--cols", min=1, help="A recipe's sheet: tiles per row."),
) -> None:
    """A video of one episode, cameras side by side; or, given a recipe, a contact sheet of the scenes it samples
    (layouts and looks, no physics) to see its randomization before generating."""
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        from dataengine.inspect.scene_sheet import preview_recipe
        from dataengine.sim.recipe import load_recipe

        names = _camera_list(cameras)
        done = preview_recipe(load_recipe(path), out, n=n, camera=names[0] if names else None, cols=cols)
        width, height = done["size"]
        console.print(f"{done['scenes']} scenes from {done['camera']} ({width}x{height}) -> {out}", highlight=False)
        return
    from dataengine.inspect.sim_preview import preview_episode

    result = preview_episode(path, episode, out, labels=labels, cameras=_camera_list(cameras), stride=stride)
    console.print(
        f"{result['episode']}: {result['frames']} frames ({', '.join(result['cameras'])}) at "
        f"{result['fps']:g} fps -> {out}",
        highlight=False,
    )


def bench(
    write: bool = typer.Option(
        False, "--write", help="Rewrite the frozen track catalogs and configurations.jsonl (physics-only runs)."
    ),
    workers: int | None = typer.Option(0, "--workers", min=0, help="Parallel tasks for --write (0 = inline)."),
) -> None:
    """The held-out benchmark (recipes/sim/bench/): list its tracks and check they are disjoint from training."""
    from collections import Counter

    from dataengine.sim import bench as simbench

    if write:
        for path in simbench.write_catalogs():
            console.print(f"wrote {path.relative_to(simbench.REPO_DIR)}", highlight=False)
        rows = simbench.list_configurations(workers=workers)
        path = simbench.write_configurations(rows)
        console.print(f"wrote {len(rows)} configurations to {path.relative_to(simbench.REPO_DIR)}", highlight=False)
    spec, bench_dir = simbench.load_bench()
    listed = bench_dir / simbench.CONFIGURATIONS_NAME
    counts = Counter(r["track"] for r in simbench.read_configurations(listed)) if listed.is_file() else Counter()
    for track in spec.tracks:
        console.print(
            f"{track.name:32s} {counts.get(track.name, 0):3d} configurations  holds out {', '.join(track.holds_out)}"
            f"  -> dataengine sim generate recipes/sim/bench/{track.recipe} --out DIR",
            highlight=False,
        )
    problems = simbench.held_out_violations()
    for problem in problems:
        console.print(f"[red]not held out:[/] {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)
    console.print(f"{sum(counts.values())} configurations; every held-out factor is absent from the training recipes")


def register(app: typer.Typer) -> None:
    from dataengine.cli.groups import reads_job_folders, sim_app

    sim_app.command("to-grounding")(reads_job_folders(to_grounding))
    sim_app.command("preview")(reads_job_folders(preview))
    sim_app.command("bench")(bench)
