"""`dataengine rewrite DIR`: rewrite the instructions of an episode shard set (offline or through an LLM)."""

from __future__ import annotations

from pathlib import Path

import typer

from dataengine.cli.groups import reads_job_folders
from dataengine.errors import RecipeError
from dataengine.runtime.logs import console


def rewrite(
    path: Path = typer.Argument(..., help="Episode shard set (output of `dataengine sim generate`)."),
    rewriter: str = typer.Option("offline", "--rewriter", help="offline | openai | none."),
    mode: str = typer.Option(
        "templates", "--mode", help="openai: templates (pools per task family and asset) or per-episode."
    ),
    batch: bool = typer.Option(False, "--batch", help="openai per-episode: use the Batch API (half price, async)."),
    max_cost: float | None = typer.Option(
        None, "--max-cost", help="openai: refuse to start if the estimated cost (USD) would pass this."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write the rewritten shard set here (default: in place)."),
    model: str | None = typer.Option(None, "--model", help="openai: model name (default gpt-4o-mini)."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="openai: requests in flight."),
    seed: int | None = typer.Option(None, "--seed", help="Rewrite seed (default: the recipe's seed)."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="openai reply cache (default $DATAENGINE_CACHE_DIR/rewrite or ~/.cache/...)."
    ),
    price_table: Path | None = typer.Option(
        None, "--price-table", help="JSON/YAML {model: {input, output, cached_input}} in USD per 1M tokens."
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="openai: seconds per request before a retry."),
    max_retries: int = typer.Option(4, "--max-retries", help="openai: client retries on 429/5xx/timeouts."),
    batch_wait: float | None = typer.Option(
        None, "--batch-wait", help="Seconds to wait for a batch; then exit 75 and resume on rerun (default: wait)."
    ),
    poll: float = typer.Option(30.0, "--poll", help="Seconds between batch status checks."),
) -> None:
    """Replace the attr / semantic / spatial instructions of every episode; print counts, tokens and cost."""
    from dataengine.rewrite import REWRITER_NAMES, get_rewriter
    from dataengine.rewrite.episodes import BATCH_STATE_FILE, rewrite_episode_shards, run_defaults
    from dataengine.runtime.logs import setup_logging

    setup_logging()
    if rewriter not in REWRITER_NAMES:
        raise RecipeError(f"unknown rewriter {rewriter!r}; valid: {', '.join(REWRITER_NAMES)}")
    target = out or path
    options = run_defaults(path) if rewriter != "none" else {}
    if seed is not None and rewriter != "none":
        options["seed"] = seed
    if rewriter == "openai":
        options.update(
            model=model, mode=mode, batch=batch, max_cost_usd=max_cost, concurrency=concurrency,
            cache_dir=cache_dir, price_table=price_table, timeout_s=timeout, max_retries=max_retries,
            batch_state_path=target / BATCH_STATE_FILE, batch_poll_s=poll, batch_max_wait_s=batch_wait,
        )  # fmt: skip
    elif batch or max_cost is not None or model is not None:
        raise RecipeError("--batch, --max-cost and --model apply to --rewriter openai")
    report = rewrite_episode_shards(path, out, get_rewriter(rewriter, **options))
    print_report(report)


def print_report(report: dict) -> None:
    """Counts, rejections by reason, requests, tokens and cost."""
    info = report["rewriter"]
    asked = info["rewriter"] + (f" ({info['model']}, {info['mode']})" if "model" in info else "")
    by_rewriter = report.get("rewrites_by_rewriter", {})
    done = f"rewrote {report['counts'].get('episodes_rewritten', 0)} episodes in {report['shards']} shards"
    if set(by_rewriter) <= {info["rewriter"]}:
        console.print(f"{done} with {asked}", highlight=False)
    else:  # say who really wrote them: never "with openai" when the offline rewriter stood in
        written = ", ".join(f"{name} {n}" for name, n in by_rewriter.items())
        console.print(f"{done}; asked {asked}, rewrites written by {written}", highlight=False)
    fallbacks = report.get("fallbacks_by_reason", {})
    if fallbacks:
        reasons = ", ".join(f"{reason} {n}" for reason, n in fallbacks.items())
        console.print(
            f"[yellow]fell back to offline[/]: {sum(fallbacks.values())} rewrites ({reasons})", highlight=False
        )
    for reason, count in {**report["counts"], **info.get("counts", {})}.items():
        if reason != "episodes_rewritten":
            console.print(f"  {reason}: {count}", highlight=False)
    if "requests" in info:
        cost = "unknown (no price for this model)" if info["cost_usd"] is None else f"${info['cost_usd']:.4f}"
        console.print(
            f"requests {info['requests']} (cache hits {info['cache_hits']}), tokens in {info['prompt_tokens']} "
            f"out {info['completion_tokens']}, cost {cost}",
            highlight=False,
        )
    console.print(f"-> {report['out']}/rewrite_report.json", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("rewrite")(reads_job_folders(rewrite))
