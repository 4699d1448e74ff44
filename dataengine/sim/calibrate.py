"""Measured per-episode costs of a simulation recipe: a short inline `sim generate` run, saved as a calibration file.

The run generates `episodes` episodes of the recipe one per chunk (so each chunk's CPU time is one episode's) in
this process, after one warm-up episode; a worker's start-up is the CPU time of a fresh process importing what a
task needs, plus the warm-up episode's extra CPU (renderers, mesh caches).
It records CPU and wall seconds per episode (mean, spread, longest), attempts and failed attempts by reason, lost
episodes, bytes written per episode (tar samples and index entries) and per shard, completion-marker and manifest
bytes, peak memory and the machine. `cost_fingerprint` ties a calibration to what changes the cost of an episode
(render settings, task, backend), not to the seed, name or episode count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dataengine import __version__
from dataengine.errors import RecipeError
from dataengine.shards.writer import index_path
from dataengine.sim.recipe import SimRecipe

KIND = "dataengine/sim-calibration"
VERSION = 1
_NOT_COST = {"name", "seed", "episodes", "episodes_per_shard", "rewriter"}


def cost_fingerprint(recipe: SimRecipe, render: bool, rewriter: str) -> str:
    """Hash of the recipe fields that change what an episode costs (not name, seed or counts). Fields left at their
    defaults are left out, so a calibration stays valid when a newer engine adds an option the recipe does not use."""
    data = recipe.model_dump(mode="json", exclude=_NOT_COST, exclude_defaults=True)
    data.update(rendered=render, rewriter=rewriter)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class SimCalibration:
    """What one episode of a recipe costs on the machine that measured it."""

    recipe: str
    cost_fingerprint: str
    backend: str
    render: bool
    rewriter: str
    episodes: int
    cpu_s_per_episode: float  # mean CPU seconds of one core per episode (all attempts, render, labels, writing)
    cpu_s_stdev: float
    cpu_s_max: float
    wall_s_per_episode: float  # mean wall seconds per episode (what a GPU-bound backend costs per GPU)
    worker_start_s: float  # CPU s of a fresh worker's imports and backend, plus its first episode's extra CPU
    attempts_per_episode: float
    failed_attempts: dict[str, int]
    lost_episodes: int
    sample_bytes_per_episode: float  # tar bytes of one episode sample (members and headers) + its index entry
    shard_overhead_bytes: float  # per shard: end-of-archive blocks, index framing
    marker_bytes_per_episode: float
    manifest_bytes_per_episode: float
    peak_rss_bytes: int
    machine: dict = field(default_factory=dict)
    engine_version: str = __version__
    date: str = ""
    kind: str = KIND
    version: int = VERSION

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> SimCalibration:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RecipeError(f"calibration file {path}: cannot read it ({exc})") from None
        if not isinstance(data, dict) or data.get("kind") != KIND or data.get("version") != VERSION:
            raise RecipeError(f"calibration file {path}: not a {KIND} v{VERSION} file")
        try:
            return cls(**data)
        except TypeError as exc:
            raise RecipeError(f"calibration file {path}: {exc}") from None


def machine_info() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


_IMPORT_PROBE = """
import resource, sys
import ray  # a Ray worker process imports it before its first task
from dataengine.sim.generate import run_chunk
from dataengine.shards import ShardWriter
from dataengine.sim import assets, episode_members, families, labels, language, render, search
from dataengine.sim.backends import get_backend
get_backend(sys.argv[1])
use = resource.getrusage(resource.RUSAGE_SELF)
print(use.ru_utime + use.ru_stime)
"""


def worker_import_cpu_s(backend: str) -> float:
    """CPU seconds a fresh worker process spends importing what a chunk task needs and creating the backend."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, backend], capture_output=True, text=True, check=True, env=os.environ
    )
    return float(done.stdout.strip().splitlines()[-1])


def calibrate(
    recipe: SimRecipe, episodes: int = 6, *, render: bool = True, rewriter: str | None = None
) -> SimCalibration:
    """Generate `episodes` episodes inline (one per chunk) in a temporary folder and measure them."""
    from dataengine.sim.generate import MANIFEST_NAME, generate

    if episodes < 2:
        raise RecipeError("a calibration needs at least 2 episodes (it measures their spread)")
    rewriter = rewriter or recipe.rewriter
    if rewriter == "openai":
        raise RecipeError(
            "the openai rewriter costs API calls, not CPU: plan with --rewriter offline (everything else costs the "
            "same) and budget the API calls apart (docs/rewrite.md)"
        )
    with tempfile.TemporaryDirectory(prefix="dataengine-calibrate-") as tmp:
        warm = recipe.model_copy(update={"episodes": 1, "episodes_per_shard": 1})
        c0 = time.process_time()
        generate(warm, Path(tmp) / "warm", workers=0, render=render, rewriter=rewriter, show_progress=False)
        warm_cpu = time.process_time() - c0  # CPU, not wall: other jobs on this machine must not inflate it

        timed = recipe.model_copy(update={"episodes": episodes, "episodes_per_shard": 1})
        marks: list[tuple[float, float]] = []
        out = Path(tmp) / "run"
        t0, c0 = time.perf_counter(), time.process_time()
        stats = generate(
            timed, out, workers=0, render=render, rewriter=rewriter, show_progress=False,
            on_progress=lambda _results: marks.append((time.perf_counter(), time.process_time())),
        )  # fmt: skip
        walls = [b[0] - a[0] for a, b in zip([(t0, c0), *marks[:-1]], marks, strict=True)]
        cpus = [b[1] - a[1] for a, b in zip([(t0, c0), *marks[:-1]], marks, strict=True)]
        tars = sorted(out.glob("*.tar"))
        indexes = [json.loads(index_path(t).read_text(encoding="utf-8")) for t in tars]
        sample_bytes = sum(length for idx in indexes for _key, _offset, length in idx["index"])
        entry_bytes = sum(len(json.dumps(e, separators=(",", ":"))) + 1 for idx in indexes for e in idx["index"])
        total = sum(t.stat().st_size + index_path(t).stat().st_size for t in tars)
        written = max(1, stats["episodes_written"])
        markers = sum(p.stat().st_size for p in (out / "_state" / "done").glob("*.json"))
        mean_cpu = statistics.fmean(cpus)
        return SimCalibration(
            recipe=recipe.name,
            cost_fingerprint=cost_fingerprint(recipe, render, rewriter),
            backend=recipe.backend,
            render=render,
            rewriter=rewriter,
            episodes=episodes,
            cpu_s_per_episode=round(mean_cpu, 4),
            cpu_s_stdev=round(statistics.stdev(cpus), 4),
            cpu_s_max=round(max(cpus), 4),
            wall_s_per_episode=round(statistics.fmean(walls), 4),
            worker_start_s=round(worker_import_cpu_s(recipe.backend) + max(0.0, warm_cpu - mean_cpu), 3),
            attempts_per_episode=round(stats["attempts"] / written, 4),
            failed_attempts=stats["failures"],
            lost_episodes=len(stats["episodes_lost"]),
            sample_bytes_per_episode=round((sample_bytes + entry_bytes) / written, 1),
            shard_overhead_bytes=round((total - sample_bytes - entry_bytes) / max(1, len(tars)), 1),
            marker_bytes_per_episode=round(markers / written, 1),
            manifest_bytes_per_episode=round((out / MANIFEST_NAME).stat().st_size / written, 1),
            peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            machine=machine_info(),
            date=dt.date.today().isoformat(),
        )
