"""`dataengine sim assets import | fixtures`: bring a user's meshes into the generator's asset catalog."""

from __future__ import annotations

from pathlib import Path

import typer

from dataengine.runtime.logs import console

assets_app = typer.Typer(no_args_is_help=True, help="Asset catalogs: import meshes as simulation-ready objects.")


def import_meshes(
    src: Path = typer.Argument(
        ..., help="Folder of meshes (.obj with .mtl and textures, .glb/.gltf, .stl, .ply) or MuJoCo object .xml files."
    ),
    out: Path = typer.Option(..., "--out", help="Catalog folder to write (catalog.yaml, meshes/, quarantine)."),
    collision: str = typer.Option(
        "coacd", "--collision", help="coacd (convex decomposition) or convex-hull (one hull: the cheap fallback)."
    ),
    split: str = typer.Option("seen", "--split", help="Split of the imported objects: seen or unseen."),
    unseen_categories: str = typer.Option(
        "", "--unseen-categories", help="Comma-separated categories held out as 'unseen' (evaluation tracks)."
    ),
    max_visual_faces: int = typer.Option(20_000, "--max-visual-faces", min=4, help="Decimate visual meshes to this."),
    max_size_m: float = typer.Option(0.6, "--max-size-m", help="Quarantine objects longer than this after scaling."),
    grasp_trials: int = typer.Option(
        3, "--grasp-trials", min=0, help="Scripted pick-and-place trials per object (0 skips the check)."
    ),
    grasp_min: int = typer.Option(2, "--grasp-min", min=0, help="Successful trials an object needs to be kept."),
    thumbnail_px: int = typer.Option(
        128, "--thumbnail-px", min=0, max=1024, help="Side of each object's PNG thumbnail (0: no thumbnails)."
    ),
    include: str = typer.Option(
        "",
        "--include",
        help="Comma-separated globs of paths under SRC to import (e.g. bread.xml,can.xml); default: all.",
    ),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Parallel workers (0 = inline, no Ray)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Join a running Ray cluster."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted import in --out."),
    describe: str = typer.Option(
        "offline",
        "--describe",
        help="offline (names from metadata and file names) or openai (a model describes "
        "each object from its thumbnail; key from OPENAI_API_KEY).",
    ),
    describe_model: str = typer.Option("gpt-4o-mini", "--describe-model", help="openai: the model."),
    openai_base_url: str | None = typer.Option(
        None, "--openai-base-url", help="openai: an OpenAI-compatible endpoint (default $OPENAI_BASE_URL)."
    ),
    describe_cache_dir: Path | None = typer.Option(
        None, "--describe-cache-dir", help="openai reply cache (default $DATAENGINE_CACHE_DIR/describe)."
    ),
    describe_max_cost: float | None = typer.Option(
        None, "--describe-max-cost", help="openai: stop asking once this many US dollars are spent."
    ),
) -> None:
    """Import every mesh under SRC: metres, upright, recentred, decimated, convex collision, mass, catalog YAML."""
    from dataengine.errors import InputError
    from dataengine.runtime.logs import setup_logging
    from dataengine.sim.importer.describe import DescribeOptions
    from dataengine.sim.importer.job import CATALOG_NAME, QUARANTINE_NAME, ImportOptions, import_assets

    setup_logging()
    if collision not in ("coacd", "convex-hull"):
        raise InputError(f"--collision must be coacd or convex-hull, not {collision!r}")
    if split not in ("seen", "unseen"):
        raise InputError(f"--split must be seen or unseen, not {split!r}")
    opts = ImportOptions(
        collision=collision,
        split=split,
        unseen_categories=[c.strip() for c in unseen_categories.split(",") if c.strip()],
        max_visual_faces=max_visual_faces,
        max_size_m=max_size_m,
        grasp_trials=grasp_trials,
        grasp_min=grasp_min,
        thumbnail_px=thumbnail_px,
        include=[p.strip() for p in include.split(",") if p.strip()],
    )
    describer = DescribeOptions(describe, model=describe_model, base_url=openai_base_url,
                                cache_dir=describe_cache_dir, max_cost_usd=describe_max_cost)  # fmt: skip
    report = import_assets(src, out, opts, workers=workers, ray_address=ray_address, resume=resume, describe=describer)
    console.print(
        f"imported {report['imported']} of {report['meshes']} meshes ({report['textured']} textured, "
        f"{report['from_cache']} from the cache, {report['thumbnails']} thumbnails) in {report['wall_s']:.1f} s "
        f"-> {out / CATALOG_NAME}"
    )

    info = report["description"]
    if info["describer"] != "offline":
        counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items())
        cost = "unknown" if info["cost_usd"] is None else f"${info['cost_usd']:.4f}"
        console.print(
            f"described with {info['model']}: {counts}; requests {info['requests']} (cache hits "
            f"{info['cache_hits']}), cost {cost}",
            highlight=False,
        )
    if report["quarantined"]:
        reasons = ", ".join(f"{k} {v}" for k, v in report["quarantine_reasons"].items())
        console.print(f"[yellow]quarantined {report['quarantined']}[/]: {reasons} (see {out / QUARANTINE_NAME})")


def fixtures(out: Path = typer.Argument(..., help="Folder to write the procedural mesh library into.")) -> None:
    """Write a small procedural mesh library (textured OBJ/GLB, STL with a sidecar, and broken meshes)."""
    from dataengine.sim.importer.fixtures import write_mesh_library

    names = write_mesh_library(out)
    console.print(f"wrote {len(names)} meshes under {out}")


def register(app: typer.Typer) -> None:
    from dataengine.cli.groups import sim_app

    assets_app.command("import")(import_meshes)
    assets_app.command("fixtures")(fixtures)
    sim_app.add_typer(assets_app, name="assets")
