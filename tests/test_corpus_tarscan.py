"""The corpus builder's fast USTAR reader agrees with tarfile and refuses what it does not handle."""

import io
import tarfile

import pytest

from dataengine.corpus.tarscan import UnsupportedTar, iter_members, split_members
from dataengine.shards.writer import ShardWriter


def _shard(tmp_path):
    with ShardWriter(tmp_path, "t", max_samples=100) as writer:
        for i in range(5):
            writer.write(f"k{i}", {"json": b'{"i": %d}' % i, "jpg": bytes([i]) * (700 + i)})
    return tmp_path / "t-000000.tar"


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


def test_bad_checksum_and_pax_headers(tmp_path):
    shard = _shard(tmp_path)
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF  # inside the first member's name: the header checksum no longer matches
    with pytest.raises(tarfile.ReadError, match="checksum"):
        split_members(bytes(data))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("k.json")
        info.size, info.mtime = 2, 1.5  # a float mtime needs a PAX header
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(UnsupportedTar):
        split_members(buf.getvalue())
