"""The shared runner: byte-identical output for any worker count, resume after a failure, the CLI."""

from __future__ import annotations

import json

import pytest

import dataengine.converters.refcoco as refcoco_module
from dataengine.converters import run_conversion
from dataengine.errors import JobStateError
from dataengine.fixtures.refcoco import build_refer
from dataengine.runtime.jobs import JobFailedError
from tests.fixtures.converters import assert_valid, output_files, run_cli


@pytest.fixture(scope="module")
def refer(tmp_path_factory):
    return build_refer(tmp_path_factory.mktemp("refer"), n=12, seed=7)


@pytest.fixture
def small_partitions(monkeypatch):
    """Several partitions from a small fixture (planning runs on the driver, so Ray tasks see them too)."""
    monkeypatch.setattr(refcoco_module, "IMAGES_PER_PARTITION", 4)


def _convert(refer, out, **kwargs):
    return run_conversion("refcoco", refer.input_path, out, images_dir=refer.images_dir, show_progress=False, **kwargs)


def test_inline_runs_are_byte_identical(refer, tmp_path, small_partitions):
    report = _convert(refer, tmp_path / "a", workers=0)
    _convert(refer, tmp_path / "b", workers=0)
    assert report["tasks"] == 5
    assert output_files(tmp_path / "a") == output_files(tmp_path / "b")
    names = sorted(output_files(tmp_path / "a"))
    assert "refcoco-00000-000000.tar" in names and "manifest.parquet" in names and "quarantine.jsonl" in names
    assert [t["task_id"] for t in report["per_task"]] == [f"refcoco-0000{i}" for i in range(5)]


@pytest.mark.ray
def test_one_and_two_ray_workers_match_inline(refer, tmp_path, small_partitions):
    import ray

    _convert(refer, tmp_path / "inline", workers=0)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        _convert(refer, tmp_path / "w1", workers=1)
        _convert(refer, tmp_path / "w2", workers=2)
    finally:
        ray.shutdown()
    inline = output_files(tmp_path / "inline")
    assert output_files(tmp_path / "w1") == inline
    assert output_files(tmp_path / "w2") == inline
    assert_valid(tmp_path / "w2")


def test_resume_after_a_failed_task_gives_the_uninterrupted_output(refer, tmp_path, small_partitions, monkeypatch):
    _convert(refer, tmp_path / "clean", workers=0)
    original_read = refcoco_module.RefCocoConverter.read

    def crashing_read(self, partition, stats):
        for n, output in enumerate(original_read(self, partition, stats)):
            if partition["images"] and partition["images"][0]["image_id"] >= 100_002 and n == 2:
                raise RuntimeError("simulated crash in the middle of a partition")
            yield output

    monkeypatch.setattr(refcoco_module.RefCocoConverter, "read", crashing_read)
    out = tmp_path / "resumed"
    with pytest.raises(JobFailedError, match="simulated crash"):
        _convert(refer, out, workers=0)
    done = sorted(p.name for p in (out / "_state" / "done").iterdir())
    assert done == ["refcoco-00000.json", "refcoco-00001.json"]
    assert not (out / "manifest.parquet").exists()
    (out / "refcoco-00003-000000.tar.tmp").write_bytes(b"half a shard from a killed worker")
    with pytest.raises(JobStateError, match="--resume"):
        _convert(refer, out, workers=0)
    monkeypatch.setattr(refcoco_module.RefCocoConverter, "read", original_read)
    _convert(refer, out, workers=0, resume=True)
    assert output_files(out) == output_files(tmp_path / "clean")


def test_resume_refuses_other_options(refer, tmp_path):
    _convert(refer, tmp_path / "out", workers=0, limit=3)
    with pytest.raises(JobStateError, match="different configuration"):
        _convert(refer, tmp_path / "out", workers=0, limit=4, resume=True)


def test_cli_convert_prints_summary_and_writes_report(refer, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    out = tmp_path / "cli"
    args = [
        "convert",
        "refcoco",
        "--input",
        str(refer.input_path),
        "--images",
        str(refer.images_dir),
        "--out",
        str(out),
        "--workers",
        "0",
        "--splits",
        "train,val",
    ]
    code, stdout, stderr = run_cli(args, capsys)
    assert code == 0, stderr
    report = json.loads((out / "convert_report.json").read_text())
    assert "samples written" in stdout and "missing_annotation" not in stdout  # testB filtered out
    assert str(report["written_samples"]) in stdout
    assert report["options"]["splits"] == ["train", "val"]
    assert_valid(out)


def test_cli_help_explains_every_layout(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, stdout, _ = run_cli(["convert", "--help"], capsys)
    assert code == 0
    for needle in (
        "refs(unc).p",
        "roborefit_<split>.json",
        "train-0000k-of-0000N.parquet",
        "robopoint_1432k.json",
        "point_questions.jsonl",
        "image_sha256",
        "trajectory/*.json",
    ):
        assert needle in stdout, needle


def test_cli_missing_input_says_what_was_expected(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, _, stderr = run_cli(
        ["convert", "roborefit", "--input", str(tmp_path / "nope"), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2
    assert "does not exist" in stderr and "final_dataset" in stderr


def test_cli_fixtures_writes_a_convertible_dataset(tmp_path, capsys):
    code, stdout, _ = run_cli(["fixtures", "where2place", "--out", str(tmp_path / "fx"), "--n", "2"], capsys)
    assert code == 0 and "dataengine convert where2place" in stdout
    code, _, stderr = run_cli(
        [
            "convert",
            "where2place",
            "--input",
            str(tmp_path / "fx" / "where2place"),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "0",
        ],
        capsys,
    )
    assert code == 0, stderr
    assert_valid(tmp_path / "out")
