"""`dataengine stats`: exact counts with and without a manifest, foreign tars, bad samples, JSON and plots."""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import webdataset as wds
from PIL import Image
from typer.testing import CliRunner

from dataengine.cli.app import app
from dataengine.inspect.plots import CHART_SIZES_PX, write_plots
from dataengine.inspect.stats import compute_stats
from dataengine.records.grounding import BoxItem, PointItem, TraceItem
from dataengine.shards import ShardWriter
from tests.fixtures.inspect_shards import build_samples, write_foreign_tar, write_shard_set

N_IMAGE_SAMPLES = 10


@pytest.fixture(scope="module")
def samples():
    return build_samples(N_IMAGE_SAMPLES, seed=0)


@pytest.fixture(scope="module")
def shard_dir(samples, tmp_path_factory) -> Path:
    return write_shard_set(tmp_path_factory.mktemp("stats") / "shards", samples, max_samples=4)


def expected_counts(samples) -> dict:
    """What the stats must say, computed directly from the records."""
    records = [r for r, _ in samples]
    items = Counter((r.source, r.split, it.task) for r in records for it in r.items)
    return {
        "samples": len(records),
        "text_only_samples": sum(r.image is None for r in records),
        "unique_images": len({r.image.sha1 for r in records if r.image}),
        "items": sum(items.values()),
        "pairs": sum(r.num_pairs() for r in records),
        "by_task": {t: sum(v for k, v in items.items() if k[2] == t) for t in ("box", "point", "trace", "vqa")},
        "by_source": Counter(r.source for r in records),
        "boxes": sum(len(it.boxes) for r in records for it in r.items if isinstance(it, BoxItem)),
        "points": sum(len(it.points) for r in records for it in r.items if isinstance(it, PointItem)),
        "traces": sum(isinstance(it, TraceItem) for r in records for it in r.items),
        "labels": Counter(it.label for r in records for it in r.items if getattr(it, "label", None)),
    }


def check_counts(data: dict, samples) -> None:
    want = expected_counts(samples)
    for name in ("samples", "text_only_samples", "unique_images", "items", "pairs"):
        assert data[name] == want[name], name
    assert {t: v["items"] for t, v in data["by_task"].items()} == want["by_task"]
    assert {s: v["samples"] for s, v in data["by_source"].items()} == dict(want["by_source"])


def check_distributions(data: dict, samples) -> None:
    want = expected_counts(samples)
    dists = data["distributions"]
    assert dists["box_area_rel"]["n"] == want["boxes"]
    assert dists["point_x_norm"]["n"] == want["points"]
    assert dists["points_per_trace"]["n"] == want["traces"]
    assert 0 < dists["box_area_rel"]["p50"] < 1
    assert 0 <= dists["point_y_norm"]["min"] <= dists["point_y_norm"]["max"] <= 1
    assert dict(data["top_labels"]) == dict(want["labels"].most_common(20))


def test_fixture_shape(samples, shard_dir):
    want = expected_counts(samples)
    assert want["samples"] == 11 and want["text_only_samples"] == 1 and want["unique_images"] == 9
    assert all(want["by_task"][t] > 0 for t in ("box", "point", "trace", "vqa"))
    assert len(list(shard_dir.glob("*.tar"))) == 3


def test_counts_from_manifest_and_from_shards_agree(samples, shard_dir):
    with_manifest = compute_stats(shard_dir, progress=False)
    without = compute_stats(shard_dir, use_manifest=False, progress=False)
    assert with_manifest.counts_from == "manifest" and without.counts_from == "shards"
    assert not with_manifest.warnings and not with_manifest.problems
    a, b = with_manifest.to_dict(), without.to_dict()
    check_counts(a, samples)
    check_distributions(a, samples)
    a.pop("counts_from"), b.pop("counts_from")
    assert a == b
    assert a["images_by_format"] == {"jpeg": 6, "png": 4}
    assert a["distributions"]["pairs_per_image"]["n"] == 9


def test_no_manifest_folder(samples, shard_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(shard_dir, bare, ignore=shutil.ignore_patterns("manifest.parquet", "*.idx.json"))
    stats = compute_stats(bare, progress=False)
    assert stats.counts_from == "shards"
    check_counts(stats.to_dict(), samples)


def test_counts_only_reads_the_manifest_not_the_tars(samples, shard_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(shard_dir, copy)
    for tar in copy.glob("*.tar"):
        tar.write_bytes(b"garbage, not a tar")  # proves no tar is opened
    stats = compute_stats(copy, distributions=False, progress=False)
    assert stats.counts_from == "manifest" and stats.distributions is None and not stats.problems
    check_counts(stats.to_dict(), samples)


def test_stale_manifest_is_ignored_with_a_warning(samples, shard_dir, tmp_path):
    copy = tmp_path / "stale"
    shutil.copytree(shard_dir, copy)
    next(iter(sorted(copy.glob("*.tar")))).rename(copy / "renamed.tar")
    stats = compute_stats(copy, progress=False)
    assert stats.counts_from == "shards"
    assert any("does not match" in w for w in stats.warnings)
    check_counts(stats.to_dict(), samples)


def test_foreign_or_broken_manifest_is_ignored(samples, shard_dir, tmp_path):
    import polars as pl

    for name, content in (("other", pl.DataFrame({"shard": ["x"], "n": [1]})), ("broken", None)):
        copy = tmp_path / name
        shutil.copytree(shard_dir, copy)
        if content is None:
            (copy / "manifest.parquet").write_bytes(b"not parquet")
        else:
            content.write_parquet(copy / "manifest.parquet")
        stats = compute_stats(copy, progress=False)
        assert stats.counts_from == "shards" and stats.warnings
        check_counts(stats.to_dict(), samples)


def test_foreign_tars(samples, tmp_path):
    """Tars from other tools: plain tarfile (json first, folder prefix, real mtimes) and webdataset's own writer."""
    write_foreign_tar(tmp_path / "tarfile" / "all.tar", samples)
    stats = compute_stats(tmp_path / "tarfile", progress=False)
    check_counts(stats.to_dict(), samples)
    check_distributions(stats.to_dict(), samples)

    with wds.TarWriter(str(tmp_path / "wds.tar")) as sink:
        for record, data in samples:
            sample = {"__key__": record.key, "json": json.loads(record.to_json_bytes())}
            if data is not None:
                sample["jpg" if record.image.format == "jpeg" else "png"] = data
            sink.write(sample)
    single = compute_stats(tmp_path / "wds.tar", progress=False)
    check_counts(single.to_dict(), samples)


def test_bad_samples_are_counted_not_fatal(samples, tmp_path):
    with ShardWriter(tmp_path / "bad", "bad") as writer:
        record, data = samples[0]
        writer.write(record.key, {"json": record.to_json_bytes(), "jpg": data})
        writer.write("broken", {"json": b'{"schema": "grounding/v1", "key": '})
        writer.write("nojson", {"txt": b"hello"})
        writer.write("wrongschema", {"json": b'{"schema": "grounding/v1", "key": "wrongschema"}'})
    stats = compute_stats(tmp_path / "bad", progress=False)
    assert stats.problems == {"bad_json": 1, "missing_json": 1, "schema_violation": 1}
    assert stats.to_dict()["samples"] == 1
    assert any("broken" in e for e in stats.problem_examples)


def test_cli_stats_writes_json_and_plots(samples, shard_dir, tmp_path):
    result = CliRunner().invoke(
        app, ["stats", str(shard_dir), "--plots", str(tmp_path / "plots"), "--json", str(tmp_path / "s.json")]
    )
    assert result.exit_code == 0, result.output
    assert "synthblocks" in result.output and "points per trace" in result.output
    data = json.loads((tmp_path / "s.json").read_text())
    check_counts(data, samples)
    for name, size in CHART_SIZES_PX.items():
        path = tmp_path / "plots" / name
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(path) as im:
            im.load()
            assert im.size == size, name


def test_plots_of_a_set_without_boxes_or_traces(tmp_path):
    """Empty distributions still give every chart (with a 'no boxes' note) at the documented size."""
    text_only = [(r, d) for r, d in build_samples(1) if r.image is None]
    write_shard_set(tmp_path / "t", text_only)
    paths = write_plots(compute_stats(tmp_path / "t", progress=False), tmp_path / "plots")
    assert [p.name for p in paths] == list(CHART_SIZES_PX)
    for path in paths:
        with Image.open(io.BytesIO(path.read_bytes())) as im:
            assert im.size == CHART_SIZES_PX[path.name]


def test_cli_stats_on_a_missing_folder_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["stats", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "does not exist" in str(result.exception) or "does not exist" in result.output
