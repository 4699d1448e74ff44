"""`sim assets import` on the procedural mesh library: normalization, quarantine, cache, and episodes with the
imported textured objects (real trimesh, CoACD and MuJoCo; the library is written by a script in the repo)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("mujoco")
pytest.importorskip("trimesh")
pytest.importorskip("coacd")

from dataengine.errors import JobStateError
from dataengine.records.layout import MeshSpec, Part, Pose
from dataengine.sim.assets import DEFAULT_CATALOG, load_catalog, make_object
from dataengine.sim.importer.fixtures import BAD, GOOD, MJCF_GOOD, write_mesh_library
from dataengine.sim.importer.job import CATALOG_NAME, QUARANTINE_NAME, ImportOptions, import_assets
from dataengine.sim.meshes import resolve_path

REPO = Path(__file__).resolve().parents[1]
KEPT = len(GOOD) + len(MJCF_GOOD)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The library imported inline with CoACD, into a fresh mesh cache."""
    root = tmp_path_factory.mktemp("assets")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAENGINE_CACHE_DIR", str(root / "cache"))
        write_mesh_library(root / "lib")
        opts = ImportOptions(grasp_trials=0)  # the graspability check has its own test
        report = import_assets(root / "lib", root / "catalog", opts, workers=0, show_progress=False)
    return root, report


def _entries(catalog_dir: Path) -> dict[str, dict]:
    data = yaml.safe_load((catalog_dir / CATALOG_NAME).read_text())
    return {e["source"]["path"]: e for e in data["objects"]}


def test_bad_meshes_are_quarantined_with_their_reasons(imported):
    root, report = imported
    lines = [json.loads(line) for line in (root / "catalog" / QUARANTINE_NAME).read_text().splitlines()]
    reasons = {line["rel"]: line["reason"] for line in lines}
    assert reasons == {
        "broken/empty.obj": "empty",
        "broken/nan_vertex.obj": "nan_vertices",
        "broken/fin.obj": "non_manifold",
        "broken/garbage.glb": "unreadable",
        "broken/tower.stl": "too_large",
    }
    assert set(reasons) == set(BAD)
    assert report["imported"] == KEPT and report["quarantined"] == len(BAD)


def test_units_axes_and_mass_are_normalized(imported):
    root, _ = imported
    entries = _entries(root / "catalog")
    block = entries["toy/block.stl"]  # 40 x 40 x 50 mm, the sidecar says mm, 700 kg/m3, orange
    assert block["source"]["scale_source"] == "unit_mm"
    assert block["source"]["extent_m"] == pytest.approx([0.04, 0.04, 0.05])
    assert block["mass_kg"] == pytest.approx(0.04 * 0.04 * 0.05 * 700, rel=1e-4)
    assert (block["name"], block["color"], block["attributes"]) == ("toy block", "orange", ["wooden"])
    bottle = entries["bottle/bottle.glb"]  # glTF: y up in the file, 0.26 m tall once z is up
    assert bottle["source"]["up_axis"] == "y" and bottle["source"]["extent_m"][2] == pytest.approx(0.26, abs=1e-3)
    cereal = entries["cereal/cereal_box.obj"]  # numbers in cm, no sidecar: the category's typical size
    assert cereal["source"]["scale_source"] == "category_prior" and max(cereal["source"]["extent_m"]) == 0.2
    assert cereal["category"] == "cereal" and cereal["name"] == "cereal box"
    # every visual mesh rests with its bottom centre at the origin
    for entry in entries.values():
        vertices = np.array(
            [line.split()[1:] for line in (root / "catalog" / entry["shape"]["mesh"]["file"]).read_text().splitlines()
             if line.startswith("v ")], dtype=float,
        )  # fmt: skip
        assert vertices[:, 2].min() == pytest.approx(0, abs=1e-6)
        centre = (vertices[:, :2].min(axis=0) + vertices[:, :2].max(axis=0)) / 2
        assert np.abs(centre).max() < 1e-6


def test_concave_meshes_get_several_convex_pieces_and_textures_are_kept(imported):
    root, report = imported
    entries = _entries(root / "catalog")
    pear = entries["fruit/pear.obj"]  # two bulbs and a neck
    assert pear["source"]["collision"] == "coacd" and len(pear["shape"]["mesh"]["collision"]) > 1
    assert entries["food_can/soup_can.obj"]["source"]["collision"] == "convex_already"
    textured = [e for e in entries.values() if "texture" in e["shape"]["mesh"]]
    assert len(textured) == report["textured"] == 6
    for entry in textured:
        assert (root / "catalog" / entry["shape"]["mesh"]["texture"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert entries["food_can/soup_can.obj"]["color"] == "red"


def test_mujoco_object_xmls_are_imported_with_their_meshes_and_textures(imported):
    """robosuite-style MJCF: the XML is the object (its mesh files are not imported again), MuJoCo's reading of it
    (mesh `scale`, geom pose) sets the geometry, its material's texture is kept (with the mesh's UVs, or projected
    for an STL without them)."""
    root, _ = imported
    entries = _entries(root / "catalog")
    assert not [rel for rel in entries if rel.startswith("kitchen/meshes/")]
    jar, loaf = entries["kitchen/jam_jar.xml"], entries["kitchen/loaf.xml"]
    assert jar["source"]["scale_source"] == loaf["source"]["scale_source"] == "mjcf_metres"
    assert jar["source"]["extent_m"] == pytest.approx([0.064, 0.064, 0.085], abs=2e-3)  # cm file, scale 0.01
    assert loaf["source"]["extent_m"][:2] == pytest.approx([0.06, 0.11], abs=1e-3)
    assert (jar["name"], jar["category"]) == ("jam jar", "kitchen")
    for entry in (jar, loaf):
        assert entry["source"]["textured"] and entry["shape"]["mesh"]["texture"].endswith("texture.png")
        visual = (root / "catalog" / entry["shape"]["mesh"]["file"]).read_text()
        assert "\nvt " in visual
    assert jar["color"] == "yellow" and loaf["color"] == "brown"


def test_primitive_only_and_broken_mjcf_files_are_quarantined(tmp_path):
    from dataengine.sim.importer.load import MeshRejected, load_mesh

    prims = tmp_path / "door.xml"
    prims.write_text('<mujoco><worldbody><body><geom type="box" size="0.1 0.1 0.1"/></body></worldbody></mujoco>')
    with pytest.raises(MeshRejected) as err:
        load_mesh(prims, 1000)
    assert err.value.reason == "no_mesh_geoms"
    missing = tmp_path / "ghost.xml"
    missing.write_text('<mujoco><asset><mesh name="m" file="nowhere.stl"/></asset>'
                       '<worldbody><geom type="mesh" mesh="m"/></worldbody></mujoco>')  # fmt: skip
    with pytest.raises(MeshRejected) as err:
        load_mesh(missing, 1000)
    assert err.value.reason == "unreadable" and "MuJoCo cannot compile" in err.value.detail


def test_every_imported_object_has_a_thumbnail_of_itself(imported):
    from PIL import Image

    root, report = imported
    entries = _entries(root / "catalog")
    assert report["thumbnails"] == len(entries) == KEPT
    for entry in entries.values():
        path = root / "catalog" / entry["thumbnail"]
        assert path.parent == (root / "catalog" / entry["shape"]["mesh"]["file"]).parent
        image = np.asarray(Image.open(path).convert("RGB"), dtype=float)
        assert image.shape == (128, 128, 3) and image.std() > 10  # the object on the floor, not a blank frame
    # the jam jar's label is red and yellow: its thumbnail shows both, the untextured orange block shows orange
    jar = np.asarray(Image.open(root / "catalog" / entries["kitchen/jam_jar.xml"]["thumbnail"]).convert("RGB"))
    reds = (jar[..., 0] > 120) & (jar[..., 1] < 80) & (jar[..., 2] < 80)
    yellows = (jar[..., 0] > 150) & (jar[..., 1] > 120) & (jar[..., 2] < 90)
    assert reds.sum() > 50 and yellows.sum() > 50
    block = np.asarray(Image.open(root / "catalog" / entries["toy/block.stl"]["thumbnail"]).convert("RGB"))
    oranges = (block[..., 0] > 150) & (block[..., 1] > 60) & (block[..., 1] < 160) & (block[..., 2] < 80)
    assert oranges.sum() > 200
    # a catalog listed after another keeps its thumbnail paths valid (rebased like its mesh files)
    catalog = load_catalog([DEFAULT_CATALOG, root / "catalog" / CATALOG_NAME])
    assert resolve_path(catalog.get("toy_block").thumbnail, catalog.base_dir).is_file()


def test_a_second_import_comes_from_the_cache_with_the_same_files(imported, tmp_path, monkeypatch):
    root, _ = imported
    monkeypatch.setenv("DATAENGINE_CACHE_DIR", str(root / "cache"))
    again = import_assets(
        root / "lib", tmp_path / "again", ImportOptions(grasp_trials=0), workers=0, show_progress=False
    )
    assert again["from_cache"] == again["imported"] == KEPT
    assert (tmp_path / "again" / CATALOG_NAME).read_bytes() == (root / "catalog" / CATALOG_NAME).read_bytes()
    for path in sorted((root / "catalog" / "meshes").rglob("*.obj")):
        assert (tmp_path / "again" / path.relative_to(root / "catalog")).read_bytes() == path.read_bytes()
    with pytest.raises(JobStateError):  # a finished folder is not silently rewritten
        import_assets(root / "lib", tmp_path / "again", ImportOptions(grasp_trials=0), workers=0, show_progress=False)
    resumed = import_assets(
        root / "lib", tmp_path / "again", ImportOptions(grasp_trials=0), workers=0, resume=True, show_progress=False
    )
    assert resumed["imported"] == KEPT


def test_held_out_categories_are_unseen(imported, tmp_path, monkeypatch):
    root, _ = imported
    monkeypatch.setenv("DATAENGINE_CACHE_DIR", str(root / "cache"))
    opts = ImportOptions(unseen_categories=["fruit"], grasp_trials=0)
    import_assets(root / "lib", tmp_path / "held_out", opts, workers=0, show_progress=False)
    splits = {e["category"]: e["split"] for e in _entries(tmp_path / "held_out").values()}
    assert splits["fruit"] == "unseen" and {s for c, s in splits.items() if c != "fruit"} == {"seen"}


def test_layouts_without_imported_meshes_serialize_as_before():
    spec = MeshSpec(generator="cone", params={"radius": 0.03, "height": 0.07})
    assert set(spec.model_dump(mode="json")) == {"generator", "params", "file", "scale"}
    part = Part(shape="mesh", mesh=MeshSpec(file="a.obj", texture="a.png", collision=["c.obj"]))
    assert part.model_dump(mode="json")["mesh"]["collision"] == ["c.obj"]


def _recipe_with_imported_objects(root: Path, tmp: Path, episodes: int) -> Path:
    containers = yaml.safe_load(DEFAULT_CATALOG.read_text())["containers"][:2]
    (tmp / "containers.yaml").write_text(yaml.safe_dump({"objects": [], "containers": containers}))
    recipe = yaml.safe_load((REPO / "recipes/sim/pick_place_demo.yaml").read_text())
    recipe.update(
        episodes=episodes,
        episodes_per_shard=episodes,
        catalogs=["containers.yaml", str(root / "catalog" / CATALOG_NAME)],
        render={**recipe["render"], "width": 96, "height": 96},
    )
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_episodes_are_generated_with_imported_textured_objects(imported, tmp_path):
    from dataengine.shards import iter_samples, list_shards
    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe

    root, _ = imported
    recipe = load_recipe(_recipe_with_imported_objects(root, tmp_path, episodes=2))
    stats = generate(recipe, tmp_path / "out", workers=0, show_progress=False)
    assert stats["episodes_written"] == 2
    imported_ids = {e["id"] for e in _entries(root / "catalog").values()}
    for shard in list_shards(tmp_path / "out"):
        for sample in iter_samples(shard):
            layout = json.loads(sample["episode.json"])["layout"]
            pick = next(o for o in layout["objects"] if o["role"] == "pick")
            assert pick["asset_id"] in imported_ids


def test_replay_resolves_imported_meshes_from_any_working_folder(imported, tmp_path, monkeypatch):
    from dataengine.sim.generate import generate
    from dataengine.sim.recipe import load_recipe
    from dataengine.sim.replay import replay

    root, _ = imported
    recipe = load_recipe(_recipe_with_imported_objects(root, tmp_path, episodes=1))
    generate(recipe, tmp_path / "out", workers=0, show_progress=False)
    elsewhere = tmp_path.joinpath(*"abcdefgh")  # relative mesh files resolve against the recipe's catalogs,
    elsewhere.mkdir(parents=True)  # not the working folder
    monkeypatch.chdir(elsewhere)
    assert replay(tmp_path / "out")["agreement"] == 1.0


def test_the_mujoco_scene_uses_the_textures_and_the_convex_pieces(imported):
    from dataengine.sim.backends.mujoco import MujocoBackend
    from dataengine.sim.recipe import load_recipe
    from dataengine.sim.sampler import sample_layout

    root, _ = imported
    catalog = load_catalog([DEFAULT_CATALOG, root / "catalog" / CATALOG_NAME])
    pear = catalog.get("fruit_pear")
    obj = make_object(pear, "obj_0", "pick", Pose(pos_m=(0.5, 0.0, 0.0)), catalog.base_dir)
    recipe = load_recipe(REPO / "recipes/sim/pick_place_demo.yaml")
    layout = sample_layout(recipe, load_catalog(), np.random.default_rng(0))
    layout.objects = [layout.objects[0], obj]  # the container and the imported pear
    backend = MujocoBackend(catalog_dir=catalog.base_dir)
    backend.load(layout, control_hz=10)
    m, mj = backend.model, backend.mujoco
    geoms = [mj.mj_id2name(m, mj.mjtObj.mjOBJ_GEOM, g) for g in range(m.ngeom)]
    pieces = [g for g in geoms if g and g.startswith("obj_0_g0_c")]
    assert len(pieces) == len(pear.shape["mesh"]["collision"])
    visual = geoms.index("obj_0_g0")
    assert m.geom_contype[visual] == 0 and m.mat_texid[m.geom_matid[visual]].max() >= 0
    body = mj.mj_name2id(m, mj.mjtObj.mjOBJ_BODY, "obj_0")
    assert m.body_mass[body] == pytest.approx(pear.mass_kg, rel=1e-3)
    backend.step(10)  # it rests on the table on its convex pieces, neither sinking nor flying off
    pos, _ = backend.object_pose("obj_0")
    assert abs(pos[2]) < 0.01
    backend.close()


def test_usd_export_carries_the_texture_uvs_and_convex_pieces(imported, tmp_path):
    pytest.importorskip("pxr")
    from pxr import Usd, UsdGeom, UsdPhysics, UsdShade, UsdValidation

    from dataengine.sim.recipe import load_recipe
    from dataengine.sim.sampler import sample_layout
    from dataengine.sim.usd.export import stage_text
    from dataengine.sim.usd.stage import build_stage, object_path
    from tests.fixtures.usd_scenes import write_stub_franka

    root, _ = imported
    catalog = load_catalog([DEFAULT_CATALOG, root / "catalog" / CATALOG_NAME])
    pear = catalog.get("fruit_pear")
    recipe = load_recipe(REPO / "recipes/sim/pick_place_demo.yaml")
    layout = sample_layout(recipe, load_catalog(), np.random.default_rng(0))
    layout.objects = [layout.objects[0], make_object(pear, "obj_0", "pick", Pose(pos_m=(0.5, 0, 0)), catalog.base_dir)]
    robot_usd = write_stub_franka(tmp_path / "franka_stub.usda", layout, catalog.base_dir)
    path = tmp_path / "scene.usda"
    path.write_text(stage_text(build_stage(layout, robot_usd=robot_usd, catalog_dir=catalog.base_dir)))
    stage = Usd.Stage.Open(str(path))
    visual = UsdGeom.Mesh(stage.GetPrimAtPath(f"{object_path('obj_0')}/part_00"))
    st = UsdGeom.PrimvarsAPI(visual).GetPrimvar("st")
    assert len(st.Get()) == len(visual.GetPointsAttr().Get()) and not visual.GetPrim().HasAPI(UsdPhysics.CollisionAPI)
    material, _ = UsdShade.MaterialBindingAPI(visual.GetPrim()).ComputeBoundMaterial()
    texture = stage.GetPrimAtPath(f"{material.GetPath()}/DiffuseTexture").GetAttribute("inputs:file").Get()
    assert Path(texture.path) == resolve_path(pear.shape["mesh"]["texture"], catalog.base_dir)
    assert Path(texture.path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    hulls = [p for p in stage.GetPrimAtPath(object_path("obj_0")).GetChildren() if "_hull_" in p.GetName()]
    assert len(hulls) == len(pear.shape["mesh"]["collision"])
    assert all(p.HasAPI(UsdPhysics.CollisionAPI) for p in hulls)
    registry = UsdValidation.ValidationRegistry()
    context = UsdValidation.ValidationContext(registry.GetOrLoadAllValidators())
    assert [f"{e.GetName()}: {e.GetMessage()}" for e in context.Validate(stage)] == []


def test_only_objects_the_scripted_expert_can_pick_and_place_are_kept(imported, tmp_path, monkeypatch):
    import shutil

    import trimesh

    root, _ = imported
    monkeypatch.setenv("DATAENGINE_CACHE_DIR", str(root / "cache"))
    src = tmp_path / "src"
    (src / "toy").mkdir(parents=True)
    for name in ("block.stl", "block.yaml"):
        shutil.copy(root / "lib" / "toy" / name, src / "toy" / name)
    slab = trimesh.creation.box(extents=[0.12, 0.12, 0.02])  # wider than the open gripper
    (src / "toy" / "slab.stl").write_bytes(slab.export(file_type="stl"))
    (src / "toy" / "slab.yaml").write_text("unit: m\n")
    report = import_assets(src, tmp_path / "catalog", ImportOptions(grasp_trials=2, grasp_min=1), workers=0,
                           show_progress=False)  # fmt: skip
    assert report["imported"] == 1 and report["quarantine_reasons"] == {"not_graspable": 1}
    (block,) = _entries(tmp_path / "catalog").values()
    assert block["source"]["grasp_trials"] in ("1/2", "2/2")
    (line,) = [json.loads(x) for x in (tmp_path / "catalog" / QUARANTINE_NAME).read_text().splitlines()]
    assert line["rel"] == "toy/slab.stl" and "too_wide_or_flat" in line["detail"]


def test_include_globs_select_the_files_to_import(tmp_path):
    """`--include`: only the files under SRC matching a glob become tasks; the choice is part of the import's
    fingerprint (a resumed job must make the same one) but not of the mesh cache's key."""
    from dataengine.sim.importer.job import import_tasks

    src = tmp_path / "library"
    write_mesh_library(src)
    every = {t.payload["source"]["rel"] for t in import_tasks(src, ImportOptions())[0]}
    opts = ImportOptions(include=["fruit/*", "kitchen/loaf.xml"])
    chosen = {t.payload["source"]["rel"] for t in import_tasks(src, opts)[0]}
    assert chosen == {"fruit/pear.obj", "kitchen/loaf.xml"} and chosen < every
    assert opts.key() != ImportOptions().key() and opts.geometry_key() == ImportOptions().geometry_key()
