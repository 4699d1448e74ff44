"""`dataengine sim generate | replay | probe`: simulated pick-and-place demonstrations on MuJoCo (CPU) by default."""

from __future__ import annotations

from pathlib import Path

import typer

from dataengine.runtime.logs import console


def generate(
    recipe: Path = typer.Argument(..., help="Simulation recipe YAML, e.g. recipes/sim/pick_place_demo.yaml."),
    out: Path = typer.Option(..., "--out", help="Output directory (episode shards, manifest, stats)."),
    episodes: int | None = typer.Option(None, "--episodes", min=1, help="Override the recipe's episode count."),
    workers: int | None = typer.Option(
        None, "--workers", min=0, help="Parallel workers (0 = inline, no Ray; default: all CPUs)."
    ),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Join a running Ray cluster."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    no_render: bool = typer.Option(False, "--no-render", help="Physics only: validated states and actions, no frames."),
    rewriter: str | None = typer.Option(
        None, "--rewriter", help="Instruction rewriter: offline (default), openai or none (template only)."
    ),
    backend: str | None = typer.Option(None, "--backend", help="Simulator backend (default: the recipe's, mujoco)."),
    seed: int | None = typer.Option(None, "--seed", help="Override the recipe's seed."),
    task_timeout: float | None = typer.Option(
        None,
        "--task-timeout",
        min=1,
        help="Seconds after which a chunk is taken as hung: its worker is killed and it runs again (`sim plan` "
        "suggests a value; default: none).",
    ),
) -> None:
    """Generate validated, rendered pick-and-place episodes as episode/v1 WebDataset shards."""
    from dataengine.runtime.logs import setup_logging
    from dataengine.sim.generate import generate as run_generate
    from dataengine.sim.recipe import load_recipe

    setup_logging()
    spec = load_recipe(recipe, episodes=episodes, backend=backend, seed=seed)
    stats = run_generate(
        spec, out, workers=workers, ray_address=ray_address, resume=resume, render=not no_render, rewriter=rewriter,
        task_timeout_s=task_timeout,
    )  # fmt: skip
    failures = ", ".join(f"{k} {v}" for k, v in stats["failures"].items()) or "none"
    console.print(
        f"episodes {stats['episodes_written']}/{stats['episodes_requested']}  attempts {stats['attempts']}  "
        f"failed attempts: {failures}"
    )
    console.print(
        f"cpu physics {stats['cpu_physics_s']:.1f} s  cpu render {stats['cpu_render_s']:.1f} s  "
        f"wall {stats['wall_s']:.1f} s  -> {out}"
    )
    if set(stats["rewrites_by_rewriter"]) - {stats["rewriter"]}:
        written = ", ".join(f"{k} {v}" for k, v in stats["rewrites_by_rewriter"].items())
        console.print(f"instructions: asked {stats['rewriter']}, rewrites written by {written}", highlight=False)
    if stats["fallbacks_by_reason"]:
        reasons = ", ".join(f"{k} {v}" for k, v in stats["fallbacks_by_reason"].items())
        console.print(f"[yellow]rewrites that fell back to offline[/]: {reasons}", highlight=False)
    if stats["episodes_lost"]:
        console.print(f"[yellow]{len(stats['episodes_lost'])} episodes found no success (see sim_stats.json)[/]")


def replay(
    path: Path = typer.Argument(..., help="Directory of episode/v1 shards (or one .tar)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Replay at most this many episodes."),
    backend: str = typer.Option("mujoco", "--backend", help="Simulator backend."),
    min_agreement: float = typer.Option(0.0, "--min-agreement", help="Exit 1 when the agreement rate is lower."),
) -> None:
    """Re-simulate each episode from its initial state and actions; print the success agreement rate."""
    from dataengine.runtime.logs import setup_logging
    from dataengine.sim.replay import replay as run_replay

    setup_logging()
    result = run_replay(path, backend, limit)
    console.print(
        f"replayed {result['episodes']}  succeeded again {result['agreed']}  "
        f"agreement {result['agreement']:.1%}  max final position error {result['max_final_pos_error_m'] * 1000:.2f} mm"
    )
    for item in result["disagreements"][:20]:
        console.print(f"  {item['key']}: {item['reason']}", markup=False, highlight=False)
    if result["agreement"] < min_agreement:
        raise typer.Exit(1)


def probe(
    path: Path = typer.Argument(..., help="Directory of episode/v1 shards (from `dataengine sim generate`)."),
    episodes: int = typer.Option(200, "--episodes", min=1, help="Train on the first N successful episodes."),
    eval_episodes: int = typer.Option(100, "--eval-episodes", min=1, help="Held-out layouts run closed loop."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Training steps (default: the recipe's, 3000)."),
    sim: Path | None = typer.Option(None, "--sim", help="Sim recipe of the episodes (default: recipe.resolved.json)."),
    recipe: Path | None = typer.Option(None, "--recipe", help="State-policy recipe (default: the checkout's)."),
    out: Path | None = typer.Option(None, "--out", help="Keep the run folder here (default: a temporary one)."),
    min_success: float = typer.Option(0.0, "--min-success", min=0, max=1, help="Exit 1 below this success rate."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON."),
) -> None:
    """Learnability probe: train the state policy on some episodes, run it closed loop on held-out layouts."""
    import json

    from dataengine.runtime.logs import setup_logging
    from dataengine.train.probe import interpret
    from dataengine.train.probe import probe as run_probe

    setup_logging()
    report = run_probe(
        path, episodes=episodes, eval_episodes=eval_episodes, steps=steps, sim_recipe=sim, train_recipe=recipe, out=out
    )
    low, high = report["success_ci95"]
    console.print(
        f"state policy on {report['train_episodes']} episodes ({report['train_steps']} steps, "
        f"{report['train_wall_s']:.0f} s): success {report['successes']}/{report['episodes']} "
        f"= {report['success_rate']:.0%} (95% CI {low:.0%}-{high:.0%}) on held-out layouts",
        highlight=False,
    )
    if report["failure_modes"]:
        modes = ", ".join(f"{k} {v}" for k, v in report["failure_modes"].items())
        console.print(f"failures: {modes}", highlight=False)
    console.print(interpret(report), highlight=False)
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")
    if report["success_rate"] < min_success:
        console.print(f"[red]success {report['success_rate']:.2f} is below --min-success {min_success:.2f}[/]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from dataengine.cli.groups import reads_job_folders, sim_app

    sim_app.command("generate")(generate)
    sim_app.command("replay")(reads_job_folders(replay))
    sim_app.command("probe")(reads_job_folders(probe))
