"""`dataengine validate` on good and corrupted shards: a bad sample makes it exit non-zero naming key and shard."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataengine.cli.app import app
from dataengine.images import sha1_hex
from dataengine.shards import ShardWriter
from tests.fixtures.inspect_shards import build_samples, write_foreign_tar, write_shard_set


@pytest.fixture(scope="module")
def samples():
    return build_samples(6, seed=3)


def members(record, data) -> dict[str, bytes]:
    out = {"json": record.to_json_bytes()}
    if data is not None:
        out["jpg" if record.image.format == "jpeg" else "png"] = data
    return out


def write_with_bad_sample(out: Path, samples, bad_key: str, bad_members: dict[str, bytes]) -> Path:
    """Good samples with one bad sample in the middle, written by the engine's own shard writer."""
    with ShardWriter(out, "part", max_samples=3) as writer:
        for i, (record, data) in enumerate(samples):
            writer.write(record.key, members(record, data))
            if i == 2:
                writer.write(bad_key, bad_members)
    return out


def run_validate(path: Path):
    return CliRunner().invoke(app, ["validate", str(path)])


def record_dict(record) -> dict:
    return json.loads(record.to_json_bytes())


def test_valid_shards_pass(samples, tmp_path):
    write_shard_set(tmp_path / "ok", samples)
    result = run_validate(tmp_path / "ok")
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "samples 7" in result.output


def test_foreign_tar_without_folder_prefix_passes(samples, tmp_path):
    path = write_foreign_tar(tmp_path / "f" / "x.tar", samples)
    flat = tmp_path / "flat" / "x.tar"
    flat.parent.mkdir()
    with tarfile.open(path) as src, tarfile.open(flat, "w") as dst:
        for member in src:
            data = src.extractfile(member).read()
            member.name = member.name.removeprefix("images/")
            dst.addfile(member, io.BytesIO(data))
    result = run_validate(flat.parent)
    assert result.exit_code == 0, result.output


def test_bad_json(samples, tmp_path):
    out = write_with_bad_sample(tmp_path / "s", samples, "badjson", {"json": b'{"schema": "grounding/v1", "key": "ba'})
    result = run_validate(out)
    assert result.exit_code == 1
    assert "badjson" in result.output and "bad_json" in result.output and "part-000001.tar" in result.output


def test_box_outside_the_image(samples, tmp_path):
    record, data = samples[0]
    bad = record_dict(record)
    bad["key"] = "boxout"
    w = bad["image"]["width"]
    bad["items"][0]["boxes"] = [[10.0, 10.0, w + 25.0, 40.0]]
    out = write_with_bad_sample(tmp_path / "s", samples, "boxout", {"json": json.dumps(bad).encode(), "jpg": data})
    result = run_validate(out)
    assert result.exit_code == 1
    assert "boxout" in result.output and "schema_violation" in result.output and "outside" in result.output


def test_truncated_image_bytes(samples, tmp_path):
    record, data = samples[0]  # a jpeg
    cut = data[: len(data) * 2 // 3]
    bad = record_dict(record)
    bad["key"] = "cutimage"
    bad["image"]["sha1"] = sha1_hex(cut)  # consistent record: only the truncation is wrong
    out = write_with_bad_sample(tmp_path / "s", samples, "cutimage", {"json": json.dumps(bad).encode(), "jpg": cut})
    result = run_validate(out)
    assert result.exit_code == 1
    assert "cutimage" in result.output and "truncated_image" in result.output


def test_image_size_differs_from_the_record(samples, tmp_path):
    record, data = samples[0]
    bad = record_dict(record)
    bad["key"] = "wrongsize"
    bad["image"]["width"] += 1
    out = write_with_bad_sample(tmp_path / "s", samples, "wrongsize", {"json": json.dumps(bad).encode(), "jpg": data})
    result = run_validate(out)
    assert result.exit_code == 1
    assert "wrongsize" in result.output and "size_mismatch" in result.output


def test_truncated_tar(samples, tmp_path):
    out = write_shard_set(tmp_path / "s", samples, max_samples=10, manifest=False)
    tar = out / "synth-000000.tar"
    data = tar.read_bytes()
    index = json.loads((out / "synth-000000.idx.json").read_text())["index"]
    key, offset, length = index[3]
    tar.write_bytes(data[: offset + length // 2])  # cut in the middle of the fourth sample
    result = run_validate(out)
    assert result.exit_code == 1
    assert "corrupt_shard" in result.output and "synth-000000.tar" in result.output
    assert key in result.output


def test_missing_folder_and_empty_folder(tmp_path):
    assert run_validate(tmp_path / "missing").exit_code != 0
    (tmp_path / "empty").mkdir()
    result = run_validate(tmp_path / "empty")
    assert result.exit_code == 1 and "no_shards" in result.output
