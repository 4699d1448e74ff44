"""Corpus builds (inline, no Ray): dedup across sources, holdouts, nesting, stats, card, lock, resize, dry run."""

import io
import itertools
import json
import tarfile
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from dataengine.cli.app import app
from dataengine.corpus import build_corpus
from dataengine.corpus.card import features_yaml_from_datasets
from dataengine.corpus.hf_features_snapshot import HF_FEATURES_YAML
from dataengine.errors import JobStateError
from dataengine.images import sha1_hex
from dataengine.inspect.validate import validate_path
from dataengine.shards import iter_grounding
from tests.fixtures.corpus_sources import (
    build_corpus_sources,
    coco_image,
    refcoco_split,
    refcocog_split,
    write_recipe,
)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus_sources")
    build_corpus_sources(root)
    return root


@pytest.fixture(scope="module")
def built(sources, tmp_path_factory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("corpus_build")
    recipe = write_recipe(work / "recipe.yaml", sources)
    out = work / "out"
    return out, build_corpus(recipe, out, workers=0, show_progress=False)


def _samples(out: Path) -> list:
    return list(iter_grounding(out))


def _item_ids(out: Path) -> set[tuple]:
    manifest = pl.read_parquet(out / "manifest.parquet")
    return set(manifest.select("source", "source_key", "source_item").iter_rows())


def test_output_is_valid_and_self_consistent(built):
    out, stats = built
    report = validate_path(out)
    assert report.ok, report.problems[:5]
    assert (report.samples, report.pairs) == (stats["samples"], stats["pairs"])
    manifest = pl.read_parquet(out / "manifest.parquet")
    assert manifest.height == stats["items"] and manifest["n_pairs"].sum() == stats["pairs"]
    assert stats["shards"] >= 3 and all(s[1] <= 16 for s in stats["shard_files"])  # min_shards, max_samples
    assert sorted(p.name for p in out.glob("*.tar")) == [s[0] for s in stats["shard_files"]]
    for name in ("stats.json", "README.md", "recipe.lock.yaml", "manifest.parquet"):
        assert (out / name).is_file()
    assert json.loads((out / "stats.json").read_text()) == {k: v for k, v in stats.items() if k != "timing"}
    assert not (out / "quarantine.jsonl").exists()


def test_identical_images_become_one_sample_with_the_union_of_items(built):
    out, stats = built
    samples = _samples(out)
    sha1s = [s.record.image.sha1 for s in samples if s.record.image]
    assert len(sha1s) == len(set(sha1s))
    assert all(s.record.key == s.record.image.sha1 for s in samples if s.record.image)
    by_sha1 = {s.record.image.sha1: s for s in samples if s.record.image}
    shared = by_sha1[sha1_hex(coco_image(20))]  # in refcoco, refcocog and llava
    assert shared.record.sources == ["refcoco", "refcocog", "llava"]
    assert shared.record.license == "CC-BY-4.0 AND apache-2.0"
    assert [it.source for it in shared.record.items] == ["refcoco"] * 4 + ["refcocog", "llava"]
    assert shared.image_bytes == coco_image(20)  # bytes pass through untouched
    # refcocog's first box on images 10..24 repeats refcoco's: kept once, in refcoco (the earlier source).
    queries = [it.query for s in samples for it in s.record.items if it.task == "box"]
    assert queries.count("object 0 in picture 15") == 1
    assert stats["dedup"] == {"duplicate_items_removed": 15, "merged_samples": 19, "multi_source_samples": 19}
    assert stats["selection"]["refcocog"]["removed_duplicate_item"] == 15
    assert stats["samples"] == 35  # 24 refcoco + 4 refcocog-only + 4 llava-only images + 3 text-only


def test_holdouts_remove_eval_images_by_hash_and_by_coco_id(built):
    out, stats = built
    held = {sha1_hex(coco_image(i)) for i in range(25, 31)} | {sha1_hex(coco_image(i)) for i in range(35, 41)}
    assert refcoco_split(26) == "val" and refcocog_split(36) == "val"
    samples = _samples(out)
    assert not held & {s.record.image.sha1 for s in samples if s.record.image}
    # llava's copy of COCO image 26 has other bytes; only the COCO-id rule catches it.
    assert sha1_hex(coco_image(26, quality=70)) not in {s.record.image.sha1 for s in samples if s.record.image}
    assert not any("picture 26" in t.value for s in samples for it in s.record.items if it.task == "vqa"
                   for t in it.conversation)  # fmt: skip
    assert stats["holdouts"]["refcoco_eval"] == {
        "images": 12,
        "coco_image_ids": 12,
        "items_by_image_sha1": 23,  # refcocog train 25..30 (12) + llava 25,27..30,35..40 (11)
        "items_by_coco_image_id": 1,  # llava's re-encoded 26
    }
    assert stats["selection"]["llava"]["removed_holdout_coco_image_id"] == 1
    assert stats["selection"]["refcoco"]["removed_split_filter"] == 24


def test_dataset_card_front_matter_matches_hf_features(built):
    out, stats = built
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["dataset_info"]["features"] == features_yaml_from_datasets() == HF_FEATURES_YAML
    assert front["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "train-*.tar"}]}]
    assert front["license"] == ["apache-2.0", "cc-by-4.0"]
    assert front["dataset_info"]["splits"][0]["num_examples"] == stats["samples"]
    assert "task_categories" in front and "webdataset" in front["tags"]
    for needle in ("refcoco", "CC-BY-4.0", stats["recipe_sha256"], "dataengine build", "| refcoco_eval | 12 | 12 |"):
        assert needle in text


def test_corpus_loads_with_datasets_using_the_card(built):
    import datasets

    from dataengine.records.grounding import hf_features

    out, stats = built
    front = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    pattern = front["configs"][0]["data_files"][0]["path"]
    features = datasets.Features._from_yaml_list(front["dataset_info"]["features"])
    assert features == hf_features()
    ds = datasets.load_dataset("webdataset", data_files={"train": str(out / pattern)}, split="train", features=features)
    assert ds.num_rows == stats["samples"]
    assert {row["json"]["key"] for row in ds} == {s.record.key for s in _samples(out)}


def test_lock_records_the_resolved_recipe_and_input_hashes(built, sources):
    out, stats = built
    lock = yaml.safe_load((out / "recipe.lock.yaml").read_text())
    assert lock["recipe_sha256"] == stats["recipe_sha256"]
    assert lock["recipe"]["sources"][0]["from"]["shards"] == str(sources / "refcoco")
    assert set(lock["inputs"]) == {"refcoco", "refcocog", "llava"}
    assert all(len(v["shards"]["sha1"]) == 40 for v in lock["inputs"].values())


def test_size_ladder_is_nested(sources, tmp_path):
    ids, pairs = [], []
    for target in (40, 80, 120, 10_000):
        recipe = write_recipe(tmp_path / f"r{target}.yaml", sources, name=f"ladder_{target}", target=target)
        stats = build_corpus(recipe, tmp_path / f"out{target}", workers=0, show_progress=False)
        ids.append(_item_ids(tmp_path / f"out{target}"))
        pairs.append(stats["by_source"])
        assert stats["pairs"] <= target
        assert stats["pairs"] >= min(target, 148) - 3  # floor per source; vqa items hold 2 pairs
    for small, big in itertools.pairwise(ids):
        assert small < big  # strictly growing, every item of the smaller corpus is in the bigger one
    for small, big in itertools.pairwise(pairs):
        assert all(small[s]["pairs"] <= big[s]["pairs"] for s in small)
    assert pairs[-1]["refcoco"]["pairs"] == 96  # the last rung takes everything: a shortfall, not an error


def test_fixed_quota_and_task_filter(sources, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", sources, target=60)
    text = recipe.read_text().replace("    weight: 2\n    splits: [train]", "    pairs: 10\n    splits: [train]\n"
                                      "    tasks: [point]")  # fmt: skip
    recipe.write_text(text)
    stats = build_corpus(recipe, tmp_path / "out", workers=0, show_progress=False)
    assert stats["by_source"]["refcoco"]["pairs"] == 10
    assert stats["by_source_task"]["refcoco"] == {"point": {"items": 10, "pairs": 10}}
    assert stats["selection"]["refcoco"]["removed_task_filter"] == 72
    assert stats["pairs"] <= 60 and stats["quotas"]["refcoco"] == 10


def test_max_image_side_downscales_and_maps_coordinates(sources, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", sources, extra="max_image_side: 48")
    stats = build_corpus(recipe, tmp_path / "out", workers=0, show_progress=False)
    assert validate_path(tmp_path / "out").ok
    assert stats["resize"]["resized_images"] == stats["samples"] - 3  # all but the text-only samples
    samples = {s.record.key: s for s in _samples(tmp_path / "out")}
    one = samples[sha1_hex(coco_image(3))]
    assert (one.record.image.width, one.record.image.height) == (48, 32)
    assert one.record.image.source_sha1 == one.record.key and one.record.image.sha1 == sha1_hex(one.image_bytes)
    box = next(it for it in one.record.items if it.task == "box" and it.query == "object 0 in picture 3")
    assert box.boxes == [[1.0, 1.5, 20.0, 15.25]]  # [2, 3, 40, 30.5] scaled by 0.5
    point = next(it for it in one.record.items if it.task == "point")
    assert point.points == [[10.12, 7.75]]  # [20.25, 15.5] * 0.5, rounded to 2 decimals


def test_bad_input_records_are_quarantined_not_fatal(sources, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    # x1 parses but breaks the schema: a box item needs an image.
    item = {"task": "box", "query": "q", "boxes": [[0, 0, 1, 1]]}
    record = {"schema": "grounding/v1", "key": "x1", "source": "s", "split": "train", "license": "MIT"}
    good_json = json.dumps({**record, "image": None, "items": [item]})
    with tarfile.open(bad / "bad-000000.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in [("x0.json", b"{not json"), ("x1.json", good_json.encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    recipe = write_recipe(tmp_path / "r.yaml", sources)
    recipe.write_text(recipe.read_text().replace("holdouts:", f"  - name: bad\n    from: {{shards: {bad}}}\nholdouts:"))
    stats = build_corpus(recipe, tmp_path / "out", workers=0, show_progress=False)
    assert stats["quarantined"]["scan"] == {"bad_json": 1, "schema_violation": 1}
    lines = [json.loads(ln) for ln in (tmp_path / "out" / "quarantine.jsonl").read_text().splitlines()]
    assert [(q["key"], q["reason"]) for q in lines] == [("x0", "bad_json"), ("x1", "schema_violation")]
    assert stats["samples"] == 35


def test_dry_run_plans_exactly_and_writes_nothing(built, sources, tmp_path):
    _, stats = built
    recipe = write_recipe(tmp_path / "r.yaml", sources)
    plan = build_corpus(recipe, tmp_path / "dry", dry_run=True, workers=0)
    assert not (tmp_path / "dry").exists()
    assert plan["exact"] and (plan["pairs"], plan["samples"], plan["items"]) == (148, 35, 135)
    assert plan["expected_shards"] == stats["shards"]
    assert 0.5 < plan["est_bytes"] / stats["bytes"] < 1.5
    result = CliRunner().invoke(
        app, ["build", str(recipe), "--out", str(tmp_path / "dry"), "--dry-run", "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "expected: 148 pairs, 35 samples, 3 shards" in result.output
    assert not (tmp_path / "dry").exists()


def test_refuses_a_used_output_and_a_resume_of_another_recipe(built, sources, tmp_path):
    out, _ = built
    recipe = write_recipe(tmp_path / "r.yaml", sources)
    with pytest.raises(JobStateError, match="--resume"):
        build_corpus(recipe, out, workers=0, show_progress=False)
    other = write_recipe(tmp_path / "other.yaml", sources, name="other")
    with pytest.raises(JobStateError, match="another recipe"):
        build_corpus(other, out, workers=0, show_progress=False, resume=True)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file.txt").write_text("x")
    with pytest.raises(JobStateError, match="not empty"):
        build_corpus(recipe, tmp_path / "used", workers=0, show_progress=False)


def test_cli_build_prints_a_summary(sources, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", sources, target=50)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", str(recipe), "--out", str(out), "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "built test_corpus" in result.output and "pairs/s" in result.output
    card = (out / "README.md").read_text()
    assert f"dataengine build {recipe} --out {out} --workers 0" in card


def test_demo_recipe_builds_from_nothing(tmp_path):
    """`recipes/demo.yaml` needs no data: its fixtures are built and converted into the build's cache."""
    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "demo"
    stats = build_corpus(repo / "recipes" / "demo.yaml", out, workers=0, show_progress=False)
    assert validate_path(out).ok
    assert stats["pairs"] > 50 and set(stats["by_source"]) >= {"refcoco", "refcoco+", "refcocog"}
    assert stats["holdouts"]["refcoco_family_eval"]["images"] > 0
    assert stats["dedup"]["duplicate_items_removed"] > 0
    assert (out / "_state" / "cache" / "fixtures").is_dir()
    # A rerun with --resume reuses the cached fixture and conversions and rewrites identical outputs.
    before = (out / "README.md").read_bytes()
    build_corpus(repo / "recipes" / "demo.yaml", out, workers=0, show_progress=False, resume=True)
    assert (out / "README.md").read_bytes() == before


def _reformat_sources(src_root: Path, dst_root: Path) -> None:
    """Copies of the sources as another tool might write them: indented JSON with coordinates off by 1e-9 (not
    canonical), in PAX-format tars with float mtimes (not what the fast tar reader takes: tarfile reads them)."""
    for name in ("refcoco", "refcocog", "llava"):
        (dst_root / name).mkdir(parents=True)
        for shard in sorted((src_root / name).glob("*.tar")):
            with (
                tarfile.open(shard) as tin,
                tarfile.open(dst_root / name / shard.name, "w", format=tarfile.PAX_FORMAT) as tout,
            ):
                for member in tin:
                    data = tin.extractfile(member).read()
                    if member.name.endswith(".json"):
                        record = json.loads(data)
                        for item in record["items"]:
                            for box in item.get("boxes", []):
                                box[0] += 1e-9
                        data = json.dumps(record, indent=2).encode()
                    info = tarfile.TarInfo(member.name)
                    info.size, info.mtime = len(data), 1.5
                    tout.addfile(info, io.BytesIO(data))


def test_input_formatting_does_not_change_the_output(built, tmp_path, sources):
    out, _ = built
    _reformat_sources(sources, tmp_path / "src")
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "src")
    build_corpus(recipe, tmp_path / "out", workers=0, show_progress=False)
    names = sorted(p.name for p in out.glob("*.tar"))
    assert names == sorted(p.name for p in (tmp_path / "out").glob("*.tar"))
    for name in [*names, "manifest.parquet"]:
        assert (tmp_path / "out" / name).read_bytes() == (out / name).read_bytes(), name


def test_partitioned_plan_gives_the_same_corpus(sources, tmp_path, monkeypatch):
    """The plan holds one hash-range partition in memory at a time; how many there are changes nothing."""
    import dataengine.corpus.plan as plan

    recipe = write_recipe(tmp_path / "r.yaml", sources, target=80)
    build_corpus(recipe, tmp_path / "one" / "out", workers=0, show_progress=False)
    monkeypatch.setattr(plan, "ROWS_PER_PARTITION", 15)  # about 15 partitions for ~210 item rows
    build_corpus(recipe, tmp_path / "many" / "out", workers=0, show_progress=False)
    summary = json.loads((tmp_path / "many" / "out" / "_state" / "plan" / "summary.json").read_text())
    assert summary["n_partitions"] >= 10
    one, many = tmp_path / "one" / "out", tmp_path / "many" / "out"
    names = sorted(p.name for p in one.iterdir() if p.is_file())
    assert names == sorted(p.name for p in many.iterdir() if p.is_file())
    for name in names:
        assert (one / name).read_bytes() == (many / name).read_bytes(), name


def test_dry_run_before_conversion_estimates_from_weights(sources, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", sources, target=100)
    text = recipe.read_text().replace(
        "holdouts:", "  - name: fx\n    from: {fixture: refcoco, converter: refcocog, split_by: umd}\nholdouts:"
    )
    recipe.write_text(text)
    plan = build_corpus(recipe, tmp_path / "out", dry_run=True, workers=0)
    assert not plan["exact"] and plan["unconverted"] == ["fx"]
    assert plan["quotas"] == {"refcoco": 40, "refcocog": 20, "llava": 20, "fx": 20}
    assert not (tmp_path / "out").exists()


def test_every_output_record_is_in_canonical_form(built):
    from dataengine.records.grounding import GroundingRecord
    from dataengine.shards import iter_shard_set

    out, _ = built
    for sample in iter_shard_set(out):
        assert GroundingRecord.from_json_bytes(sample["json"]).to_json_bytes() == sample["json"], sample["__key__"]


def test_fast_path_encoder_agrees_with_the_model():
    """Records the scan marks canonical are merged without the model; their JSON must match the model's."""
    import orjson

    from dataengine.corpus.scan import _is_canonical
    from dataengine.corpus.write import canonical_json
    from tests.helpers import make_image, make_record

    item = {"task": "box", "query": "q\u2028é", "boxes": [[1, 2, 3, 4]], "meta": {"eps": 1e-05, "big": 1e17}}
    record = make_record("k", make_image(), [item])
    data = record.to_json_bytes()
    assert canonical_json(orjson.loads(data)) == data
    assert _is_canonical(record, data)
    assert not _is_canonical(record, data.replace(b",", b", ", 1))  # same content, not the canonical bytes
