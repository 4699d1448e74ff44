"""The shipped ST4VLA family on data in the upstream layouts (the converter fixtures at the paths the base recipe
expects under DATA_ROOT): every converter runs through the build, conversions are cached and shared across rungs,
the rungs are nested and the eval holdouts hold."""

import os
from pathlib import Path

import polars as pl
import pytest

from dataengine.corpus import build_corpus
from dataengine.fixtures import FIXTURES
from dataengine.inspect.validate import validate_path
from dataengine.shards import iter_grounding

REPO = Path(__file__).resolve().parents[1]
# recipe path under DATA_ROOT -> (fixture, which FixtureInfo path)
LAYOUT = {
    "refer": ("refcoco", "input_path"),
    "coco/train2014": ("refcoco", "images_dir"),
    "roborefit": ("roborefit", "input_path"),
    "robopoint/robopoint_1432k.json": ("robopoint", "input_path"),
    "robopoint/images": ("robopoint", "images_dir"),
    "pixmo-points/data": ("pixmo-points", "input_path"),
    "pixmo-points/images": ("pixmo-points", "images_dir"),
    "sharerobot": ("sharerobot", "input_path"),
    "LLaVA-OneVision-Data": ("llava-onevision", "input_path"),
    "where2place": ("where2place", "input_path"),
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("family")
    infos = {name: FIXTURES[name](work / "fixtures" / name) for name in {f for f, _ in LAYOUT.values()}}
    root = work / "DATA_ROOT"
    for rel, (fixture, attr) in LAYOUT.items():
        link = root / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(getattr(infos[fixture], attr), link)
    return root


def _rung(tmp_path: Path, name: str, target: int) -> Path:
    """A rung of the shipped family at a size the fixtures can fill (it extends the shipped base recipe)."""
    path = tmp_path / f"{name}.yaml"
    base = REPO / "recipes" / "st4vla_spatial_base.yaml"
    path.write_text(f"extends: {base}\nname: {name}\ntarget_pairs: {target}\n")
    return path


def test_st4vla_family_on_upstream_layouts(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_ROOT", str(data_root))
    cache = tmp_path / "cache"
    built = {}
    for target in (40, 80):
        recipe = _rung(tmp_path, f"st4vla_test_{target}", target)
        out = tmp_path / f"out{target}"
        built[target] = build_corpus(recipe, out, workers=0, cache_dir=cache, show_progress=False)
        assert validate_path(out).ok
    small, big = built[40], built[80]
    assert 30 <= small["pairs"] <= 40 and 70 <= big["pairs"] <= 80
    converted = sorted(p.name for p in (cache / "convert").glob("*.done.json"))
    assert len(converted) == 9  # 8 training sources + the where2place holdout, converted once for both rungs
    ids = {}
    for target in (40, 80):
        manifest = pl.read_parquet(tmp_path / f"out{target}" / "manifest.parquet")
        ids[target] = set(manifest.select("source", "source_key", "source_item").iter_rows())
    assert ids[40] < ids[80]
    # No training image is a RefCOCO/+/g val or test image (by hash or COCO id) or a Where2Place image.
    holdout = big["holdouts"]["refcoco_family_eval"]
    assert holdout["images"] > 0 and holdout["coco_image_ids"] > 0
    assert big["holdouts"]["where2place"]["images"] > 0
    splits = {s.record.sources[0]: set() for s in iter_grounding(tmp_path / "out80")}
    for s in iter_grounding(tmp_path / "out80"):
        for item in s.record.items:
            splits.setdefault(item.source, set()).add(item.source_split)
    assert all(v <= {"train"} for k, v in splits.items() if k.startswith("refcoco") or k == "roborefit"), splits
