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
    data.update({"variation": VARIATION, **changes})
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


SCENE_AXES = {
    "table_height_jitter_m": 0.06,
    "light_count": [1, 4],
    "camera_pos_jitter_m": 0.05,
    "camera_rot_jitter_deg": 4.0,
    "object_scale_by_category": {"fruit": [0.9, 0.95]},
    "walls": {"sides": ["back", "front", "left", "right"], "textures": ["none", "checker"]},
}


def _texture_png(path: Path) -> Path:
    from PIL import Image

    yy, xx = np.mgrid[:64, :64]
    rgb = np.stack([(xx * 4) % 256, (yy * 4) % 256, ((xx + yy) * 2) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _scene_recipe(tmp: Path, **changes):
    _texture_png(tmp / "wood.png")
    return _varied_recipe(tmp, variation={**VARIATION, **SCENE_AXES, "table_texture_files": ["wood.png"]}, **changes)


def test_later_axes_left_at_their_defaults_keep_a_variation_recipes_fingerprint(tmp_path):
    plain = _varied_recipe(tmp_path)
    defaults = {"light_count": None, "walls": None, "table_height_jitter_m": 0.0, "object_scale_by_category": {}}
    assert _varied_recipe(tmp_path, variation={**VARIATION, **defaults}).fingerprint() == plain.fingerprint()
    assert _scene_recipe(tmp_path).fingerprint() != plain.fingerprint()
    layout = json.loads(_layout(load_recipe(DEMO), 0).to_json())
    assert "walls" not in layout and "height_m" not in layout["table"] and "texture_file" not in layout["table"]


def test_bad_scene_axes_are_refused_with_their_names(tmp_path):
    from dataengine.errors import RecipeError

    for bad, words in [
        ({"light_count": [0, 3]}, "light_count"),
        ({"object_scale_by_category": {"fruit": [0.2, 1.0]}}, "object_scale_by_category.fruit"),
        ({"table_texture_files": ["missing.png"]}, "not found"),
        ({"table_texture_files": ["wood.jpg"]}, "not a PNG"),
    ]:
        (tmp_path / "wood.jpg").write_bytes(b"x")
        with pytest.raises(RecipeError, match=words):
            _varied_recipe(tmp_path, variation={**VARIATION, **bad})


def test_scene_axes_are_drawn_after_the_layout_and_keep_its_draws(tmp_path):
    plain, varied = load_recipe(DEMO), _scene_recipe(tmp_path)
    heights, counts, fruit = [], set(), []
    for seed in range(8):
        a, b = _layout(_varied_recipe(tmp_path), seed), _layout(varied, seed)
        dz = b.table.top_center_m[2] - a.table.top_center_m[2]
        heights.append(dz)
        assert abs(dz) <= 0.06 and b.table.height_m == pytest.approx(0.75 + dz)
        assert b.table.floor_z_m == pytest.approx(a.table.floor_z_m)  # the floor stays; the robot stands on the top
        assert b.robot.base_pos_m[2] == pytest.approx(a.robot.base_pos_m[2] + dz)
        for obj_a, obj_b in zip(a.objects, b.objects, strict=True):
            assert obj_b.pose.pos_m[:2] == obj_a.pose.pos_m[:2] and obj_b.pose.quat_wxyz == obj_a.pose.quat_wxyz
            assert obj_b.pose.pos_m[2] == pytest.approx(obj_a.pose.pos_m[2] + dz)
            if obj_b.category == "fruit":
                fruit.append(obj_b.scale)
        assert [c.model_dump() for c in b.cameras] == [c.model_dump() for c in a.cameras]  # world-fixed
        assert 1 <= len(b.lights) <= 4 and [x.name for x in b.lights[:2]] == [x.name for x in a.lights[: len(b.lights)]]
        counts.add(len(b.lights))
        assert b.table.texture_file.endswith("wood.png")
        assert sorted(w.name for w in b.walls) == ["back", "front", "left", "right"]
        for cam in (c for c in b.cameras if c.mount == "world"):  # no wall stands between a camera and the table
            for wall in b.walls:
                axis = 0 if wall.name in ("back", "front") else 1
                sign = 1 if wall.name in ("front", "left") else -1
                inner = wall.center_m[axis] - sign * wall.half_size_m[axis]
                assert sign * inner > sign * cam.pos_m[axis] + 0.1
        assert json.loads(b.to_json())["walls"] and json.loads(b.to_json())["table"]["height_m"]
    assert len(set(heights)) == 8 and len(counts) >= 2
    assert fruit and all(0.9 <= s <= 0.95 for s in fruit)
    assert plain.variation is None


def test_camera_pose_jitter_moves_and_turns_world_cameras_only(tmp_path):
    from dataengine.geometry import quat_angle_between_rad

    base, varied = _varied_recipe(tmp_path), _scene_recipe(tmp_path)
    layout = _layout(varied, 2)
    moved = 0
    for seed in range(6):
        a = draw_look(base, layout, np.random.default_rng(seed))
        b = draw_look(varied, layout, np.random.default_rng(seed))
        for cam_a, cam_b in zip(a.cameras, b.cameras, strict=True):
            assert cam_a.fovy_deg == cam_b.fovy_deg  # the earlier draws are kept
            shift = np.abs(np.subtract(cam_b.pos_m, cam_a.pos_m))
            angle = quat_angle_between_rad(cam_a.quat_wxyz, cam_b.quat_wxyz)
            if cam_a.mount == "wrist":
                assert shift.max() == 0 and angle == 0
            else:
                assert shift.max() <= 0.05 + 1e-9 and np.rad2deg(angle) <= 4.0 + 1e-6
                moved += shift.max() > 0
        assert len(b.lights) == len(layout.lights) and b.table_rgba == (1.0, 1.0, 1.0, 1.0)
    assert moved >= 6


def test_the_expert_succeeds_and_labels_follow_the_jittered_cameras(tmp_path):
    from dataengine.geometry import gl_camera_to_cv, pose_to_matrix
    from dataengine.shards import iter_samples, list_shards
    from dataengine.shards.episode import load_npz
    from dataengine.sim.generate import generate

    recipe = _scene_recipe(tmp_path, episodes=2, render={"preset": "fast", "cameras": ["front", "side"], "width": 96,
                                                         "height": 96})  # fmt: skip
    stats = generate(recipe, tmp_path / "out", workers=0, show_progress=False)
    assert stats["episodes_written"] == 2 and not stats["episodes_lost"]
    visible = 0
    for shard in list_shards(tmp_path / "out"):
        for sample in iter_samples(shard):
            episode = json.loads(sample["episode.json"])
            assert episode["layout"]["walls"] and "height_m" in episode["layout"]["table"]
            assert len(episode["look"]["lights"]) == len(episode["layout"]["lights"])
            arrays = load_npz(sample["arrays.npz"])
            for c, cam in enumerate(episode["look"]["cameras"]):  # recorded extrinsics = the jittered pose
                expected = gl_camera_to_cv(pose_to_matrix(cam["pos_m"], cam["quat_wxyz"]))
                np.testing.assert_allclose(arrays["cam_T_cam_to_world"][0, c], expected, atol=1e-5)
            box, centre, seen = arrays["pick_box_xyxy"], arrays["pick_center_2d"], arrays["pick_visible"]
            inside = (centre[..., 0] >= box[..., 0]) & (centre[..., 0] <= box[..., 2])
            inside &= (centre[..., 1] >= box[..., 1]) & (centre[..., 1] <= box[..., 3])
            assert not np.any(seen & ~inside)
            visible += int(seen.sum())
    assert visible > 20
    scene = json.loads((tmp_path / "out/sim_stats.json").read_text())["scene"]  # what the set drew, per axis
    assert scene == stats["scene"] and scene["episodes"] == 2
    assert scene["objects_distinct"] >= 2 and scene["categories_distinct"] >= 1
    assert sum(scene["objects_by_category"].values()) == sum(scene["axes"]["object_scale"]["counts"])
    axes = scene["axes"]
    for axis in ("table_height_m", "light_count", "walls", "distractors"):
        assert sum(axes[axis]["counts"]) == 2 and len(axes[axis]["edges"]) == len(axes[axis]["counts"]) + 1
    assert 0.69 <= axes["table_height_m"]["min"] <= axes["table_height_m"]["max"] <= 0.81
    assert sum(axes["camera_turn_deg"]["counts"]) == 4  # two world cameras per episode
    assert 0 < axes["camera_turn_deg"]["max"] <= 4.0 + 2.0  # the variation's turn plus the template's look-at jitter
    assert axes["table_texture"]["counts"] == {"wood.png": 2}


def test_the_usd_export_carries_table_height_and_walls(tmp_path):
    pytest.importorskip("pxr", reason="usd-core is not installed (pip install 'dataengine[usd]')")
    from pxr import UsdGeom, UsdPhysics

    from dataengine.sim.usd.stage import build_stage

    layout = _layout(_scene_recipe(tmp_path), 4)
    stage = build_stage(layout, robot_usd="/nonexistent/franka.usd")
    walls = [p for p in stage.Traverse() if p.GetName().startswith("wall_") and p.IsA(UsdGeom.Gprim)]
    assert sorted(p.GetName() for p in walls) == [f"wall_{w.name}" for w in sorted(layout.walls, key=lambda w: w.name)]
    assert not any(p.HasAPI(UsdPhysics.CollisionAPI) for p in walls)  # backdrops collide with nothing
    slab = next(p for p in stage.Traverse() if p.GetName() == "slab")
    bottom = UsdGeom.Imageable(slab).ComputeWorldBound(0, "default").ComputeAlignedRange().GetMax()[2]
    assert bottom == pytest.approx(layout.table.floor_z_m, abs=1e-6)  # the floor stays where the rig expects it
