"""The held-out benchmark (recipes/sim/bench/): 200 fixed configurations in four tracks, disjoint from training."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from dataengine.sim.assets import load_catalog
from dataengine.sim.bench import (
    BENCH_DIR,
    CATALOG_VIEWS,
    held_out_violations,
    load_bench,
    read_configurations,
    recipe_catalog,
    track_recipe,
    training_recipes,
)

MAIN = load_catalog()
SPLIT_OF = {a.id: a.split for a in MAIN.objects + MAIN.containers}


@pytest.fixture(scope="module")
def bench():
    spec, bench_dir = load_bench()
    return spec, bench_dir, {t.name: track_recipe(bench_dir, t) for t in spec.tracks}


def test_tracks_are_disjoint_from_every_training_recipe():
    assert training_recipes(), "expected simulation training recipes under recipes/sim/"
    assert held_out_violations() == []


def test_the_check_catches_leaks(tmp_path):
    leaky = tmp_path / "leaky.yaml"
    catalog = BENCH_DIR / "catalogs" / "unseen_objects.yaml"
    leaky.write_text(
        yaml.safe_dump(
            {
                "name": "leaky",
                "split": "seen",
                "catalogs": [str(catalog)],
                "task": {"layout": {"distractors": [2, 4], "container_region_x_m": [0.5, 0.65]}},
            }
        )
    )
    problems = held_out_violations(training=[leaky])
    assert any("unseen_objects" in p and "object" in p for p in problems)
    assert any("distractor counts" in p for p in problems) and any("container x regions" in p for p in problems)


def test_frozen_catalogs_relabel_only_the_held_out_kind():
    for name, (seen_obj, unseen_obj, seen_cont, unseen_cont) in CATALOG_VIEWS.items():
        view = load_catalog([BENCH_DIR / "catalogs" / name])
        for assets, labels in ((view.objects, (seen_obj, unseen_obj)), (view.containers, (seen_cont, unseen_cont))):
            for asset in assets:
                original = SPLIT_OF[asset.id]  # every entry is a copy of a main-catalog asset
                assert asset.split == (labels[0] if original == "seen" else labels[1]), (name, asset.id)


def test_200_fixed_configurations_hold_out_what_their_track_says(bench):
    spec, _, recipes = bench
    rows = read_configurations()
    assert len(rows) == 200 and len({r["key"] for r in rows}) == 200
    assert Counter(r["track"] for r in rows) == {t.name: 50 for t in spec.tracks}
    for row in rows:
        objects = [row["pick_asset"], *row["distractor_assets"]]
        track = row["track"]
        assert SPLIT_OF[row["place_asset"]] == ("unseen" if track == "unseen_containers_backgrounds" else "seen")
        assert {SPLIT_OF[a] for a in objects} == ({"unseen"} if track == "unseen_objects" else {"seen"})
        if track == "unseen_layouts":
            assert len(row["distractor_assets"]) in (4, 5)
        assert row["seed"] == recipes[track].seed and 0 <= row["index"] < 50


def test_configurations_are_fixed_by_seed_index_and_attempt(bench):
    """The listed assets follow from (recipe, seed, index, attempt) alone: sampling reproduces them (no physics)."""
    from dataengine.sim.sampler import sample_layout
    from dataengine.sim.search import attempt_rng

    _, _, recipes = bench
    for row in read_configurations()[::5]:
        recipe = recipes[row["track"]]
        layout = sample_layout(recipe, recipe_catalog(recipe), attempt_rng(row["seed"], row["index"], row["attempt"]))
        assert layout.pick.asset_id == row["pick_asset"] and layout.place.asset_id == row["place_asset"]
        assert [o.asset_id for o in layout.by_role("distractor")] == row["distractor_assets"]


def test_sim_generate_runs_a_track(bench, tmp_path):
    """`dataengine sim generate` takes a track recipe as it is; its first episode is the listed configuration."""
    pytest.importorskip("mujoco")
    from typer.testing import CliRunner

    from dataengine.cli.app import app
    from dataengine.shards.episode import iter_episodes

    out = tmp_path / "track"
    recipe = Path("recipes/sim/bench/unseen_containers_backgrounds.yaml")
    result = CliRunner().invoke(
        app,
        ["sim", "generate", str(BENCH_DIR.parents[2] / recipe), "--out", str(out), "--episodes", "1", "--workers", "0"],
    )
    assert result.exit_code == 0, result.output
    (ep,) = list(iter_episodes(out))
    row = next(r for r in read_configurations() if r["track"] == "unseen_containers_backgrounds" and r["index"] == 0)
    assert (ep.record.task.pick_asset, ep.record.task.place_asset) == (row["pick_asset"], row["place_asset"])
    assert ep.rendered and ep.record.look is not None
    table = tuple(round(v, 4) for v in ep.record.look.table_rgba)
    held_out = {
        tuple(round(v, 4) for v in c) for c in bench[2]["unseen_containers_backgrounds"].task.randomization.table_rgbas
    }
    assert table in held_out
