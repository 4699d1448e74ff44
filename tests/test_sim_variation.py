"""The recipe's `variation:` axes (light colour and direction, camera field of view, object scale): drawn after
everything else, recorded in the episode, and absent recipes keep their fingerprints and layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("mujoco")

from dataengine.sim.assets import load_catalog
from dataengine.sim.recipe import load_recipe
from dataengine.sim.render import draw_look
from dataengine.sim.rig import load_rig
from dataengine.sim.sampler import AttemptFailed, sample_layout

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes/sim/pick_place_demo.yaml"
VARIATION = {
    "light_color_jitter": 0.3,
    "light_dir_jitter_rad": 0.4,
    "camera_fovy_jitter_deg": 6.0,
    "object_scale": [0.8, 1.2],
}


def _varied_recipe(tmp: Path, **changes):
    data = yaml.safe_load(DEMO.read_text())
    data.update(variation=VARIATION, **changes)
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_recipe(path)


def _layout(recipe, seed: int):
    for attempt in range(20):
        try:
            return sample_layout(recipe, load_catalog(), np.random.default_rng([seed, attempt]))
        except AttemptFailed:
            continue
    raise AssertionError("no layout in 20 attempts")


def test_recipes_without_variation_keep_their_fingerprints_and_layouts():
    # the fingerprints these recipes had before `variation` existed
    assert load_recipe(DEMO).fingerprint() == "81fb162f09e592cc"
    assert load_recipe(REPO / "recipes/sim/pick_place.yaml").fingerprint() == "dfd6131c1ef616f9"
    layout = json.loads(_layout(load_recipe(DEMO), 0).to_json())
    assert all("scale" not in o for o in layout["objects"])


def test_object_scale_is_drawn_after_the_assets_and_recorded(tmp_path):
    plain, varied = load_recipe(DEMO), _varied_recipe(tmp_path)
    a, b = _layout(plain, 3), _layout(varied, 3)
    assert [o.asset_id for o in a.objects] == [o.asset_id for o in b.objects]  # same choices, then the scales
    catalog = load_catalog()
    for obj_a, obj_b in zip(a.objects[1:], b.objects[1:], strict=True):
        assert 0.8 <= obj_b.scale <= 1.2
        assert np.allclose(np.asarray(obj_b.half_extents_m), np.asarray(obj_a.half_extents_m) * obj_b.scale, rtol=1e-5)
        assert obj_b.mass_kg == pytest.approx(catalog.get(obj_b.asset_id).mass_kg * obj_b.scale**3, rel=1e-5)
    assert b.objects[0].scale == 1.0  # containers keep their size
    assert all("scale" in o for o in json.loads(b.to_json())["objects"][1:])


def test_look_axes_change_only_what_they_name(tmp_path):
    plain, varied = load_recipe(DEMO), _varied_recipe(tmp_path)
    layout = _layout(plain, 1)
    for seed in range(5):
        a = draw_look(plain, layout, np.random.default_rng(seed))
        b = draw_look(varied, layout, np.random.default_rng(seed))
        assert (a.table_rgba, a.table_texture, a.floor_rgba) == (b.table_rgba, b.table_texture, b.floor_rgba)
        for cam_a, cam_b in zip(a.cameras, b.cameras, strict=True):
            assert cam_a.pos_m == cam_b.pos_m and cam_a.quat_wxyz == cam_b.quat_wxyz
            limit = 6.0 if cam_a.mount == "world" else 0.0
            assert abs(cam_b.fovy_deg - cam_a.fovy_deg) <= limit + 1e-9
        for light_a, light_b in zip(a.lights, b.lights, strict=True):
            assert light_a.pos_m == light_b.pos_m
            ratio = np.asarray(light_b.diffuse) / np.asarray(light_a.diffuse)
            assert np.all((ratio >= 0.7 - 1e-9) & (ratio <= 1.3 + 1e-9))
            cos = float(np.dot(light_a.dir, light_b.dir) / np.linalg.norm(light_a.dir) / np.linalg.norm(light_b.dir))
            assert np.arccos(np.clip(cos, -1, 1)) <= 0.4 + 1e-6
    assert any(c.fovy_deg != c0.fovy_deg for c, c0 in zip(b.cameras, a.cameras, strict=True))


def test_a_varied_episode_records_its_look_and_scales(tmp_path):
    from dataengine.shards import iter_samples, list_shards
    from dataengine.sim.generate import generate

    recipe = _varied_recipe(tmp_path, episodes=1, render={"preset": "fast", "cameras": ["front"], "width": 64,
                                                          "height": 64})  # fmt: skip
    stats = generate(recipe, tmp_path / "out", workers=0, show_progress=False)
    assert stats["episodes_written"] == 1
    (sample,) = [s for shard in list_shards(tmp_path / "out") for s in iter_samples(shard)]
    episode = json.loads(sample["episode.json"])
    (front,) = episode["look"]["cameras"]
    nominal = next(c["fovy_deg"] for c in load_rig("default")["cameras"] if c["name"] == "front")
    assert 0 < abs(front["fovy_deg"] - nominal) <= 6.0
    assert all(0.8 <= o["scale"] <= 1.2 for o in episode["layout"]["objects"] if o["kind"] == "object")
