"""The fast USTAR reader agrees with tarfile and refuses what it does not handle."""

import io
import tarfile

import pytest

from dataengine.shards.tarscan import (
    UnsupportedTar,
    chunk_members,
    iter_members,
    padded_size,
    split_members,
    tarfile_members,
)
from dataengine.shards.writer import ShardWriter


def _shard(tmp_path):
    with ShardWriter(tmp_path, "t", max_samples=100) as writer:
        for i in range(5):
            writer.write(f"k{i}", {"json": b'{"i": %d}' % i, "jpg": bytes([i]) * (700 + i)})
    return tmp_path / "t-000000.tar"


def _tar_bytes(names_and_data, fmt=tarfile.USTAR_FORMAT, mtime=0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in names_and_data:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_members_and_offsets_match_tarfile(tmp_path):
    shard = _shard(tmp_path)
    with open(shard, "rb") as fh:
        fast = [(m.name, m.offset, m.data_offset, m.size) for m in iter_members(fh)]
    with tarfile.open(shard) as tar:
        slow = [(m.name, m.offset, m.offset_data, m.size) for m in tar]
    assert fast == slow and len(fast) == 10
    data = shard.read_bytes()
    first, second = fast[0], fast[2]
    members = split_members(data[first[1] : second[1]])
    assert members == [("k0.jpg", bytes([0]) * 700), ("k0.json", b'{"i": 0}')]
    assert members == tarfile_members(data[first[1] : second[1]])


def test_bad_checksum_and_pax_headers(tmp_path):
    shard = _shard(tmp_path)
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF  # inside the first member's name: the header checksum no longer matches
    with pytest.raises(tarfile.ReadError, match="checksum"):
        split_members(bytes(data))
    with pytest.raises(tarfile.ReadError, match="checksum"):
        chunk_members(bytes(data))  # corrupt is corrupt: no fallback to tarfile
    pax = _tar_bytes([("k.json", b"{}")], fmt=tarfile.PAX_FORMAT, mtime=1.5)  # a float mtime needs a PAX header
    with pytest.raises(UnsupportedTar):
        split_members(pax)
    assert chunk_members(pax) == tarfile_members(pax) == [("k.json", b"{}")]


def test_gnu_format_prefix_and_non_utf8_names_read_as_tarfile_reads_them():
    """GNU-magic headers, names split into the USTAR prefix field, and names tarfile surrogate-escapes."""
    long_dir = "d" * 120
    for blob in (
        _tar_bytes([("images/a.json", b"{}"), ("images/a.jpg", b"\xff\xd8")], fmt=tarfile.GNU_FORMAT),
        _tar_bytes([(f"{long_dir}/key1.json", b"{}"), (f"{long_dir}/key1.jpg", b"\xff\xd8" * 300)]),
        _tar_bytes([("caf\udce9.json", b"{}")], fmt=tarfile.GNU_FORMAT),  # the byte 0xE9 alone is not UTF-8
    ):
        assert split_members(blob) == tarfile_members(blob)
    assert split_members(blob)[0][0] == "caf\udce9.json"


def test_truncated_ranges_are_errors(tmp_path):
    data = _shard(tmp_path).read_bytes()
    with pytest.raises(tarfile.ReadError, match="runs past"):
        split_members(data[:1000])  # the first header and part of its data
    (tmp_path / "cut.tar").write_bytes(data[: 1536 + 100])  # the first member and part of the second header
    with open(tmp_path / "cut.tar", "rb") as fh, pytest.raises(tarfile.ReadError, match="truncated tar header"):
        list(iter_members(fh))


def test_padded_size():
    assert [padded_size(n) for n in (0, 1, 511, 512, 513, 1024)] == [0, 512, 512, 512, 1024, 1024]
