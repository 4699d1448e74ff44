"""Sample tables (sidecar index, or a header scan of any tar) and reading one sample by its byte range."""

from __future__ import annotations

import io
import tarfile

import pytest

from dataengine.errors import ShardError
from dataengine.shards import index_path, iter_samples, list_shards
from dataengine.shards.index import parse_sample, read_sample, read_sidecar, sample_table, scan_tar
from dataengine.shards.tarscan import split_members, tarfile_members
from tests.fixtures.inspect_shards import build_samples, write_foreign_tar, write_shard_set


@pytest.fixture(scope="module")
def samples():
    return build_samples(6, seed=1)


@pytest.fixture(scope="module")
def engine_shard(samples, tmp_path_factory):
    return list_shards(write_shard_set(tmp_path_factory.mktemp("g"), samples, max_samples=10, manifest=False))[0]


def _write_tar(path, members, fmt):
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, data, mtime in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    return path


def _read_all(shard, table):
    with open(shard, "rb") as fh:
        return [read_sample(fh, offset, length, shard.name, key) for key, offset, length in table]


def test_sidecar_and_scan_agree_on_engine_shards(engine_shard):
    rows = read_sidecar(engine_shard)
    assert rows is not None and len(rows) == 7  # six image samples and the text-only one
    assert sample_table(engine_shard) == rows == scan_tar(engine_shard)
    assert _read_all(engine_shard, rows) == list(iter_samples(engine_shard))


@pytest.mark.parametrize(
    "sidecar",
    ["not json", '{"shard": "x"}', '{"index": [["k", "zero", 1]]}', '{"index": []}', '{"index": [["k", 0, 999999]]}'],
)
def test_a_broken_or_inconsistent_sidecar_means_a_scan(engine_shard, tmp_path, sidecar):
    shard = tmp_path / engine_shard.name
    shard.write_bytes(engine_shard.read_bytes())
    index_path(shard).write_text(sidecar)
    assert read_sidecar(shard) is None
    assert sample_table(shard) == scan_tar(engine_shard)


def test_foreign_tar_is_scanned_and_read(samples, tmp_path):
    """A tar written by another tool (GNU format, folder prefix, no sidecar index) gives the same samples."""
    tar = write_foreign_tar(tmp_path / "foreign.tar", samples)
    table = sample_table(tar)
    assert [k for k, _, _ in table] == [f"images/{r.key}" for r, _ in samples]
    assert _read_all(tar, table) == list(iter_samples(tar))


def test_pax_and_long_name_tars_fall_back_to_tarfile(tmp_path):
    """PAX headers (float mtimes) and GNU long names are read by tarfile; a sample's range starts at its first
    extended header."""
    long_key = "x" * 120
    members = [("a.json", b"{}", 1.5), ("a.jpg", b"\xff\xd8" * 400, 1.5), (f"{long_key}.json", b"[]", 0)]
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        tar = _write_tar(tmp_path / f"{fmt}.tar", members, fmt)
        table = scan_tar(tar)
        assert [k for k, _, _ in table] == ["a", long_key] and table[0][1] == 0
        assert table[0][1] + table[0][2] == table[1][1]
        read = _read_all(tar, table)
        assert read == list(iter_samples(tar))
        assert read[1] == {"__key__": long_key, "__shard__": tar.name, "json": b"[]"}


def test_fast_parsing_matches_tarfile(engine_shard, tmp_path):
    """The direct USTAR parser gives what `tarfile` gives, also for names that need the prefix field."""
    blob = engine_shard.read_bytes()
    for key, offset, length in sample_table(engine_shard):
        piece = blob[offset : offset + length]
        assert split_members(piece) == tarfile_members(piece)  # the fast path takes it (no UnsupportedTar)
        sample = parse_sample(piece, "s", key)
        assert sample["__key__"] == key and sample["__shard__"] == "s"
        assert {f"{key}.{ext}": v for ext, v in sample.items() if not ext.startswith("__")} == dict(
            tarfile_members(piece)
        )
    long_dir = "d" * 120
    piece = _write_tar(
        tmp_path / "long.tar",
        [(f"{long_dir}/key1.json", b"{}", 0), (f"{long_dir}/key1.jpg", b"\xff\xd8" * 300, 0)],
        tarfile.USTAR_FORMAT,
    ).read_bytes()
    assert split_members(piece) == tarfile_members(piece)
    fast = parse_sample(piece, "s")
    assert fast == {"__key__": f"{long_dir}/key1", "__shard__": "s", "json": b"{}", "jpg": b"\xff\xd8" * 300}


def test_reading_errors_name_the_shard_and_sample(engine_shard, tmp_path):
    table = sample_table(engine_shard)
    (k0, o0, n0), (k1, _, n1) = table[0], table[1]
    blob = engine_shard.read_bytes()
    with open(engine_shard, "rb") as fh, pytest.raises(ShardError, match=f"points at member '{k0}"):
        read_sample(fh, o0, n0, "s.tar", k1)
    with open(engine_shard, "rb") as fh, pytest.raises(ShardError, match=f"truncated at sample '{k1}'"):
        read_sample(fh, len(blob) - 10, n1, "s.tar", k1)
    with pytest.raises(ShardError, match="mixes samples"):
        parse_sample(blob[o0 : o0 + n0 + n1], "s.tar")
    with pytest.raises(ShardError, match="cannot read sample at its indexed offset"):
        parse_sample(blob[o0 : o0 + n0 - 600], "s.tar", k0)  # a member runs past the range
    with pytest.raises(ShardError, match="holds no file members"):
        parse_sample(bytes(1024), "s.tar")


def test_scan_errors(tmp_path):
    (tmp_path / "empty.tar").write_bytes(b"")
    with pytest.raises(ShardError, match=r"empty\.tar: unreadable"):
        scan_tar(tmp_path / "empty.tar")
    bad = _write_tar(tmp_path / "bad.tar", [("README", b"hello", 0)], tarfile.USTAR_FORMAT)
    with pytest.raises(ShardError, match="has no extension"):
        scan_tar(bad)
    corrupt = bytearray(bad.read_bytes())
    corrupt[0] ^= 0xFF
    (tmp_path / "corrupt.tar").write_bytes(bytes(corrupt))
    with pytest.raises(ShardError, match="checksum"):
        scan_tar(tmp_path / "corrupt.tar")
    assert scan_tar(_write_tar(tmp_path / "e.tar", [], tarfile.USTAR_FORMAT)) == []  # only the end marker
