"""Simulator frames as a corpus source: the `sim-frames` converter and its fixture.

- `SimFramesConverter` (`dataengine convert sim-frames --input EPISODES_DIR --out DIR`, and recipe sources with
  `converter: sim-frames`) reads a `dataengine sim generate` output folder, one partition per episode shard, and
  yields the grounding samples of `dataengine.sim.to_grounding.episode_grounding` (K = 4 frames per episode and
  camera; `dataengine sim to-grounding` takes other K). `--limit N` keeps the first N episodes.
- `build_sim_episodes(out, n=..., seed=...)` (fixture `sim-frames`) generates a few fast-preset episodes with the
  demo simulation recipe (`recipes/sim/pick_place_demo.yaml`) into `out`, inline (no Ray), so `recipes/demo.yaml`
  can hold simulator frames on a fresh checkout: `from: {fixture: sim-frames, fixture_options: {n: 2}}`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataengine.converters.base import Converter, Output, Sample, TaskStats
from dataengine.errors import InputError

if TYPE_CHECKING:  # the fixtures package imports this module through its registry
    from dataengine.fixtures.base import FixtureInfo

DEMO_SIM_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "sim" / "pick_place_demo.yaml"
SKIP_REASONS_AS_COUNTS = ("samples", "items", "episodes")


class SimFramesConverter(Converter):
    name = "sim-frames"
    slug = "simframes"
    license = "Apache-2.0"
    layout = (
        "--input: a `dataengine sim generate` output folder (episode/v1 .tar shards with rendered frames), "
        "or one episode shard."
    )

    def check(self) -> None:
        super().check()
        from dataengine.shards.episode import episode_shards

        episode_shards(self.input_path)

    def fingerprint_files(self) -> list[Path]:
        from dataengine.shards.episode import episode_shards

        return episode_shards(self.input_path)

    def plan(self) -> list[dict[str, Any]]:
        from dataengine.shards import iter_samples
        from dataengine.shards.episode import episode_shards

        partitions, kept = [], 0
        for shard in episode_shards(self.input_path):
            if self.options.limit is not None:
                keys = [s["__key__"] for s in iter_samples(shard)]
                take = max(0, min(len(keys), self.options.limit - kept))
                kept += take
                if take == 0:
                    break
                partitions.append({"shard": str(shard), "keys": keys[:take]})
            else:
                partitions.append({"shard": str(shard), "keys": None})
        return partitions

    def read(self, partition: dict[str, Any], stats: TaskStats) -> Iterator[Output]:
        from dataengine.shards.episode import iter_episodes
        from dataengine.sim.to_grounding import DEFAULT_FRAMES_PER_EPISODE, episode_grounding

        counts: Counter = Counter()
        for ep in iter_episodes(partition["shard"], partition["keys"]):
            stats.read += 1
            for record, jpeg in episode_grounding(ep, DEFAULT_FRAMES_PER_EPISODE, None, counts):
                split = record["split"]
                if not self.wants_split(split):
                    stats.skip("split_not_selected")
                    continue
                yield Sample(record, jpeg, [record["image"]["origin"]])
        for reason, n in counts.items():
            if reason in SKIP_REASONS_AS_COUNTS:
                stats.count(f"sim_{reason}", n)
            else:
                stats.skip(reason, n)


def build_sim_episodes(out: str | Path, n: int = 3, seed: int = 7, width: int = 224, height: int = 224) -> FixtureInfo:
    """Generate `n` validated, rendered pick-and-place episodes (fast preset, demo recipe) into `out`."""
    from dataengine.fixtures.base import FixtureInfo
    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe

    if n < 1:
        raise InputError(f"sim-frames fixture: n (episodes) must be at least 1, got {n}")
    if not DEMO_SIM_RECIPE.is_file():
        raise InputError(f"sim-frames fixture: the demo simulation recipe {DEMO_SIM_RECIPE} is missing")
    base = load_recipe(DEMO_SIM_RECIPE)
    render = {**base.render.model_dump(), "width": width, "height": height}
    recipe = load_recipe(DEMO_SIM_RECIPE, episodes=n, seed=seed, render=render)
    stats = generate(recipe, Path(out), workers=0, show_progress=False)
    info = FixtureInfo(source="sim-frames", input_path=Path(out))
    info.notes.append(f"{stats['episodes_written']} episodes of {recipe.name} (seed {seed}), fast preset")
    return info
