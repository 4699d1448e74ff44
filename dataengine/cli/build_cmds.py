"""`dataengine build RECIPE --out DIR`: build a corpus from a recipe (see docs/corpus.md)."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from dataengine.cli import cluster_opts as opts
from dataengine.cli.groups import reads_job_folders
from dataengine.runtime.logs import console


def _command_line(recipe: Path, out: Path, ray_address: str | None, workers: int | None, cache: Path | None) -> str:
    """The command as given, in canonical form and without --resume/--dry-run: what the dataset card records (a
    resumed build keeps the command that started it)."""
    args = ["dataengine", "build", str(recipe), "--out", str(out)]
    if ray_address:
        args += ["--ray-address", ray_address]
    if workers is not None:
        args += ["--workers", str(workers)]
    if cache is not None:
        args += ["--cache", str(cache)]
    return shlex.join(args)


def build(
    recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/ and docs/corpus.md)."),
    out: Path = typer.Option(..., "--out", help="Output folder (empty, or a build to --resume)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address (default: local Ray)."),
    workers: int | None = typer.Option(None, "--workers", help="Parallel tasks (0: inline, no Ray; default: CPUs)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted build in OUT."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan (pairs per source, shards, bytes) and its time and disk on a cluster."
    ),
    cache: Path | None = typer.Option(
        None, "--cache", help="Conversion cache (default OUT/_state/cache); share it across a size ladder."
    ),
    nodes: int | None = opts.NODES,
    cpus_per_node: int | None = opts.CPUS_PER_NODE,
    core_speed: float = opts.CORE_SPEED,
    preemptions: float = opts.PREEMPTIONS,
) -> None:
    """Convert or reuse each source, mix to the recipe's quotas, dedup, enforce holdouts, write shards and a card."""
    from dataengine.corpus.build import build_corpus
    from dataengine.runtime.logs import setup_logging

    setup_logging()
    result = build_corpus(
        recipe,
        out,
        workers=workers,
        ray_address=ray_address,
        resume=resume,
        dry_run=dry_run,
        cache_dir=cache,
        command=_command_line(recipe, out, ray_address, workers, cache),
        cluster=opts.make_cluster(nodes, cpus_per_node, 0, core_speed, preemptions) if dry_run else None,
    )
    if dry_run:
        _print_plan(result)
        return
    timing = result["timing"]
    console.print(
        f"[green]built[/] {result['recipe']}: {result['pairs']:,} pairs, {result['items']:,} items, "
        f"{result['samples']:,} samples in {result['shards']} shards ({result['bytes'] / 1e6:,.1f} MB) "
        f"in {timing['seconds']:.1f}s ({timing['pairs_per_second']:,.0f} pairs/s)"
    )
    for name, counts in result["by_source"].items():
        console.print(f"  {name}: {counts['pairs']:,} pairs")
    if result["shortfall_pairs"]:
        console.print(f"[yellow]short of the target by {result['shortfall_pairs']:,} pairs[/] (sources ran out)")
    console.print(
        f"card: {out / 'README.md'}  stats: {out / 'stats.json'}  look: dataengine show {out} --out sheet.png"
    )


def _print_plan(plan: dict) -> None:
    from rich.table import Table

    if not plan["exact"]:
        console.print(
            f"[yellow]estimate[/]: not converted yet: {', '.join(plan['unconverted'])} (a build converts them first; "
            "the dry run then shows exact counts)"
        )
        for name, quota in plan["quotas"].items():
            console.print(f"  {name}: quota up to {quota:,} pairs")
        console.print("time and disk on a cluster: measured once the inputs are converted (run the build, or convert)")
        return
    table = Table(title=f"plan for {plan['recipe']} (target {plan['target_pairs'] or 'all'} pairs)")
    for col in ("source", "scanned items", "removed", "available pairs", "quota", "pairs", "items"):
        table.add_column(col, justify="right" if col != "source" else "left")
    for name, c in plan["sources"].items():
        removed = sum(v for k, v in c.items() if k.startswith("removed_"))
        table.add_row(
            name,
            f"{c['scanned_items']:,}",
            f"{removed:,}",
            f"{c['available_pairs']:,}",
            f"{plan['quotas'][name]:,}",
            f"{c['selected_pairs']:,}",
            f"{c['selected_items']:,}",
        )
    console.print(table)
    console.print(
        f"expected: {plan['pairs']:,} pairs, {plan['samples']:,} samples, {plan['expected_shards']} shards, "
        f"about {plan['est_bytes'] / 1e6:,.1f} MB"
    )
    if plan["shortfall_pairs"]:
        console.print(f"[yellow]short of the target by {plan['shortfall_pairs']:,} pairs[/]")
    if "budget" in plan:
        from dataengine.corpus.cluster_plan import budget_text

        for line in budget_text(plan["budget"]):
            console.print(line, markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("build")(reads_job_folders(build))
