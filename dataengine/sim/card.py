"""The dataset card of a generated episode set: `README.md` with the Hugging Face front matter the Hub reads
(licence, task category, tags, size, a `configs` entry whose data files are the episode shards), then the counts,
the recipe and its fingerprint, and what the scenes drew (`sim_stats.json`'s `scene`: objects, categories and each
randomization axis as a small table or text-bar histogram).

Deterministic bytes: no dates, timings or CPU seconds, only what the recipe and seed decide, so 1 or 20 workers, a
crash and a resume write the same card. It says nothing about the instruction rewriter, because `dataengine
rewrite` changes the instructions of a set after the card is written (`sim_stats.json` says who wrote them).
"""

from __future__ import annotations

import yaml

from dataengine import __version__
from dataengine.corpus.card import markdown_table, size_category
from dataengine.sim.recipe import SimRecipe
from dataengine.sim.scene_stats import STEPS

CARD_NAME = "README.md"
TAGS = ["robotics", "simulation", "mujoco", "pick-and-place", "vla", "webdataset", "dataengine"]
BAR_WIDTH = 24
MAX_VALUES = 12  # rows of a categorical axis's table; the rest are summed in one row


def front_matter(recipe: SimRecipe, episodes: int) -> dict:
    return {
        "license": "other",
        "pretty_name": recipe.name,
        "task_categories": ["robotics"],
        "tags": TAGS if recipe.backend == "mujoco" else [t for t in TAGS if t != "mujoco"],
        "size_categories": [size_category(episodes)],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "episodes-*.tar"}]}],
    }


def _number(value: float) -> str:
    return f"{value:.4g}"


def _bins(hist: dict, whole: bool) -> list[tuple[str, int]]:
    """(label, count) per bin; for a whole-number axis spanning at most as many values as bins, one row per value
    (each lies in its own bin then) instead of fractional bin edges."""
    edges, counts = hist["edges"], hist["counts"]
    low, high = round(hist["min"]), round(hist["max"])
    if whole and high - low < len(counts):

        def bin_of(k: int) -> int:
            return next((i for i in range(len(counts)) if k < edges[i + 1]), len(counts) - 1)

        return [(str(k), counts[bin_of(k)]) for k in range(low, high + 1)]
    rows = []
    for i, count in enumerate(counts):
        closing = "]" if i == len(counts) - 1 else ")"
        rows.append((f"[{_number(edges[i])}, {_number(edges[i + 1])}{closing}", count))
    return rows


def histogram_text(hist: dict, whole: bool = False) -> str:
    """A numeric axis as one text bar per bin (`[low, high)  ████  count`), or per value for a whole-number axis."""
    rows = _bins(hist, whole)
    peak = max(count for _, count in rows) or 1
    width = max(len(label) for label, _ in rows)
    lines = [
        f"{label.ljust(width)}  {('█' * round(BAR_WIDTH * count / peak)).ljust(BAR_WIDTH)}  {count:,}"
        for label, count in rows
    ]
    head = f"min {_number(hist['min'])}, max {_number(hist['max'])}, mean {_number(hist['mean'])}, n {hist['n']:,}"
    return f"{head}\n\n```\n" + "\n".join(lines) + "\n```\n"


def counts_table(name: str, counts: dict[str, int]) -> str:
    items = list(counts.items())  # already by count, then value (scene_stats.summary)
    rows = [[f"`{value}`", n] for value, n in items[:MAX_VALUES]]
    if len(items) > MAX_VALUES:
        rest = items[MAX_VALUES:]
        rows.append([f"{len(rest):,} more values", sum(n for _, n in rest)])
    return markdown_table([name, "count"], rows) + "\n"


def scene_section(scene: dict) -> list[str]:
    parts = [
        "## What the scenes drew\n",
        f"**{scene['objects_distinct']:,} distinct objects** in **{scene['categories_distinct']:,} categories**, "
        f"{scene['containers_distinct']:,} distinct containers (graspable objects by category, distractors included: "
        "objects placed, summed over the episodes).\n",
    ]
    if scene["objects_by_category"]:
        parts.append(counts_table("category", scene["objects_by_category"]))
    for axis, values in scene["axes"].items():
        parts.append(f"### `{axis}`\n")
        if "edges" in values:
            parts.append(histogram_text(values, whole=STEPS.get(axis) == 1))
        else:
            parts.append(counts_table("value", values["counts"]))
    return parts


def render_sim_card(recipe: SimRecipe, stats: dict, render: bool) -> str:
    """The full README.md text for a generated set (deterministic: no dates, no timings)."""
    written = stats["episodes_written"]
    head = yaml.safe_dump(front_matter(recipe, written), sort_keys=False, allow_unicode=True, width=120)
    lost = stats["episodes_lost"]
    attempts = stats["attempts"]
    summary_rows = [
        ["episodes requested", recipe.episodes],
        ["episodes written", written],
        ["episodes lost (no valid attempt)", len(lost)],
        ["shards", len(stats["shards"])],
        ["physics attempts", attempts],
        ["episodes per attempt", f"{written / attempts:.3f}" if attempts else "-"],
    ]
    if "episodes_perturbed" in stats:
        summary_rows.append(["episodes with recovery perturbations", stats["episodes_perturbed"]])
    cameras = ", ".join(recipe.render.cameras)
    frames = (
        f"rendered: cameras {cameras} at {recipe.render.width} x {recipe.render.height} px"
        if render
        else "physics only (no frames: `sim generate --no-render`)"
    )
    failures = stats["failures"]
    parts = [
        f"---\n{head}---\n",
        f"# {recipe.name}\n",
        f"Simulated robot demonstrations: **{written:,} episodes** of the `{recipe.task.family}` task family "
        f"(task `{recipe.task.name}`) in {recipe.backend}, generated by dataengine {__version__} from recipe "
        f"`{recipe.name}`, seed {recipe.seed}, split `{recipe.split}`, {frames}.\n",
        f"Recipe fingerprint `{recipe.fingerprint()}` (sha256 of the resolved recipe without the episode count: "
        "the same fingerprint and seed give the same episodes, byte for byte). The resolved recipe is "
        "`recipe.resolved.json`.\n",
        markdown_table(["", "count"], summary_rows) + "\n",
    ]
    if failures:
        parts += ["Rejected attempts by reason:\n", markdown_table(["reason", "attempts"], list(failures.items()))]
    parts += scene_section(stats["scene"])
    parts += [
        "## Files and loading\n",
        "`episodes-<k>-000000.tar` (WebDataset shards, one sample per episode: `episode.json`, `arrays.npz`, "
        "`frames.npz`) with `.idx.json` random-access indexes, `manifest.parquet` (one row per episode), "
        "`sim_stats.json` (these counts, CPU time, the instruction rewriter), `recipe.resolved.json`.\n",
        '```python\nfrom dataengine.shards.episode import iter_episodes\n\nfor episode in iter_episodes("."):\n'
        "    print(episode.key, episode.num_steps)\n```\n",
        "`dataengine export lerobot` writes a LeRobot dataset, `dataengine sim to-grounding` grounding QA from the "
        "frames. Licence `other`: the robot and object models keep their own licences (the primitive catalog and "
        "procedural textures are the engine's; imported meshes are the user's).\n",
    ]
    return "\n".join(parts)
