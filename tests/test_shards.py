"""Shard writing: determinism, rollover, atomic names, sidecar indexes, and loading by other tools."""

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from dataengine.errors import ShardError
from dataengine.shards import (
    GroundingShardWriter,
    ShardWriter,
    index_path,
    iter_grounding,
    iter_samples,
    list_shards,
    read_sample,
    sample_table,
    scan_tar,
    write_manifest,
)
from tests.helpers import make_image, make_record


def _write_set(out, n=9, max_samples=4, max_bytes=1 << 30):
    with GroundingShardWriter(out, "test", max_samples=max_samples, max_bytes=max_bytes) as writer:
        for i in range(n):
            fmt = "PNG" if i % 3 == 0 else "JPEG"
            image = make_image(40 + i, 30 + i, fmt, color=(i * 20, 50, 90))
            items = [{"task": "box", "query": f"thing {i}", "boxes": [[1, 2, 20.5, 25]], "label": "thing"}]
            if i % 2:
                items.append({"task": "point", "query": "a point", "points": [[3, 4]]})
            if i == 5:
                items.append(
                    {"task": "vqa", "conversation": [{"from": "human", "value": "q?"}, {"from": "gpt", "value": "a"}]}
                )
            writer.write(make_record(f"sample_{i:04d}", image, items), image)
    write_manifest(writer.rows, out / "manifest.parquet")
    return writer


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_two_runs_give_byte_identical_shards(tmp_path):
    _write_set(tmp_path / "a")
    _write_set(tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_rollover_by_count_and_bytes_and_no_temp_files(tmp_path):
    _write_set(tmp_path / "count", n=9, max_samples=4)
    assert [p.name for p in list_shards(tmp_path / "count")] == [f"test-00000{i}.tar" for i in range(3)]
    _write_set(tmp_path / "bytes", n=9, max_samples=100, max_bytes=6000)
    shards = list_shards(tmp_path / "bytes")
    assert len(shards) > 1
    assert all(p.stat().st_size <= 6000 + 10240 for p in shards)  # + the tar end padding
    assert not list(tmp_path.rglob("*.tmp"))


def test_tar_members_are_fixed_and_adjacent(tmp_path):
    _write_set(tmp_path)
    with tarfile.open(list_shards(tmp_path)[0]) as tar:
        members = tar.getmembers()
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" and m.mode == 0o444 for m in members)
    keys = [m.name.split(".")[0] for m in members]
    assert keys == sorted(keys)  # adjacent: each key's members come together
    assert all(m.name.count(".") == 1 for m in members)


def test_sidecar_index_points_at_each_sample(tmp_path):
    _write_set(tmp_path)
    shard = list_shards(tmp_path)[0]
    index = json.loads(index_path(shard).read_text())
    data = shard.read_bytes()
    for key, offset, length in index["index"]:
        with tarfile.open(fileobj=io.BytesIO(data[offset : offset + length] + bytes(1024))) as tar:
            names = tar.getnames()
        assert names and all(n.startswith(key + ".") for n in names)


def test_round_trip_through_our_reader(tmp_path):
    _write_set(tmp_path)
    samples = list(iter_grounding(tmp_path))
    assert [s.record.key for s in samples] == [f"sample_{i:04d}" for i in range(9)]
    assert samples[0].image_ext == "png" and samples[1].image_ext == "jpg"
    assert samples[1].image_bytes == make_image(41, 31, "JPEG", color=(20, 50, 90))  # bytes untouched


def test_loads_with_webdataset(tmp_path):
    import webdataset as wds

    _write_set(tmp_path)
    urls = [str(p) for p in list_shards(tmp_path)]
    rows = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    assert len(rows) == 9
    assert rows[0]["png"].size == (40, 30) and rows[1]["jpg"].size == (41, 31)
    assert rows[5]["json"]["items"][2]["task"] == "vqa"


def test_loads_with_hugging_face_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    from dataengine.records.grounding import hf_features

    _write_set(tmp_path / "shards")
    files = [str(p) for p in list_shards(tmp_path / "shards")]
    ds = datasets.load_dataset(
        "webdataset",
        data_files={"train": files},
        split="train",
        features=hf_features(),
        cache_dir=str(tmp_path / "hf_cache"),
    )
    assert len(ds) == 9
    assert ds[5]["json"]["items"][2]["conversation"][1]["value"] == "a"
    assert ds[0]["png"].size == (40, 30) and ds[0]["jpg"] is None


def test_writer_rejects_bad_keys_and_duplicates(tmp_path):
    with ShardWriter(tmp_path, "x") as writer:
        with pytest.raises(ShardError):
            writer.write("a.b", {"json": b"{}"})
        with pytest.raises(ShardError):
            writer.write("../evil", {"json": b"{}"})
        writer.write("ok", {"json": b"{}"})
        with pytest.raises(ShardError):
            writer.write("ok", {"json": b"{}"})


def test_abort_leaves_no_partial_shard(tmp_path):
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, "x") as writer:
        writer.write("a", {"json": b"{}"})
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_list_shards_skips_job_state_below_the_root_only(tmp_path):
    """`_state/` folders below the given root hold job state, not shards; a root inside one (a build's conversion
    cache, OUT/_state/cache/...) is listed normally."""
    cache = tmp_path / "out" / "_state" / "cache" / "refcoco-abc"
    for folder in (tmp_path / "out", cache, cache / "_state" / "rewrite_tmp"):
        with ShardWriter(folder, "s") as writer:
            writer.write("k", {"json": b"{}"})
    assert list_shards(tmp_path / "out") == [tmp_path / "out" / "s-000000.tar"]
    assert list_shards(cache) == [cache / "s-000000.tar"]
    assert list_shards(cache / "s-000000.tar") == [cache / "s-000000.tar"]


def _tar_bytes(members, fmt=tarfile.USTAR_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data, mtime in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


MEMBERS = [
    ("a.jpg", b"\xff" * 700, 0),
    ("a.json", b"{}", 0),
    ("b.json", b"[1]", 1.5),  # a float mtime: a PAX header from here on (the fast parser hands over to tarfile)
    ("c.txt", b"c", 0),
]
EXPECTED = [
    {"__key__": "a", "__shard__": "t.tar", "jpg": b"\xff" * 700, "json": b"{}"},
    {"__key__": "b", "__shard__": "t.tar", "json": b"[1]"},
    {"__key__": "c", "__shard__": "t.tar", "txt": b"c"},
]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT, "gz"])
def test_iter_samples_reads_plain_mixed_and_compressed_tars(tmp_path, fmt):
    members = MEMBERS if fmt == tarfile.PAX_FORMAT else [(n, d, 0) for n, d, _ in MEMBERS]
    data = _tar_bytes(members, tarfile.PAX_FORMAT if fmt == "gz" else fmt)
    (tmp_path / "t.tar").write_bytes(gzip.compress(data, mtime=0) if fmt == "gz" else data)
    assert list(iter_samples(tmp_path / "t.tar")) == EXPECTED


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT])
def test_iter_samples_refuses_a_tar_without_its_end_marker(tmp_path, fmt):
    """A tar cut just before its two zero blocks is truncated: the samples before the last one come out, then a
    ShardError naming the shard and the last sample."""
    data = _tar_bytes(MEMBERS if fmt == tarfile.PAX_FORMAT else [(n, d, 0) for n, d, _ in MEMBERS], fmt)
    tar = tmp_path / "t.tar"
    tar.write_bytes(data[: len(data.rstrip(b"\0")) // 512 * 512 + 512])  # members, no end-of-archive marker
    got = []
    with pytest.raises(ShardError, match=r"t.tar: truncated tar after sample 'c' \(no end-of-archive marker\)"):
        got.extend(iter_samples(tar))
    assert got == EXPECTED[:2]
    tar.write_bytes(data[:600])  # in the first member's data
    with pytest.raises(ShardError, match=r"t.tar: unreadable or truncated tar at sample 'a'"):
        list(iter_samples(tar))


def _webdataset_tar(samples: list[tuple[str, dict]], mtime: int = 0) -> bytes:
    """The same samples through webdataset's TarWriter on a direct-mode PAX tarfile (plain USTAR headers where
    they suffice)."""
    import webdataset as wds

    buf = io.BytesIO()
    writer = wds.TarWriter(buf, encoder=False, mtime=mtime, user="", group="", mode=0o444)
    writer.tarstream = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 (closed below)
    for key, members in samples:
        writer.write({"__key__": key, **members})
    writer.tarstream.close()
    return buf.getvalue()


@pytest.mark.parametrize("mtime", [0, 1_700_000_000])
def test_tars_are_byte_identical_to_webdatasets_tarwriter(tmp_path, mtime):
    sizes = [0, 1, 511, 512, 513, 10_000, 70_001]
    samples = [
        (f"s{i:03d}" + ("x" * 120 if i == 3 else ""), {"json": bytes([i]) * size, "jpg": memoryview(b"\xff" * i)})
        for i, size in enumerate(sizes)
    ]  # sample 3's names are over 100 bytes: a PAX header, as tarfile writes it
    with ShardWriter(tmp_path, "x", max_samples=100, mtime=mtime) as writer:
        for key, members in samples:
            writer.write(key, members)
    tar = tmp_path / "x-000000.tar"
    assert tar.read_bytes() == _webdataset_tar(samples, mtime)
    got = {s["__key__"]: s["json"] for s in iter_samples(tar)}
    assert got == {key: bytes(members["json"]) for key, members in samples}
    index = json.loads(index_path(tar).read_text())["index"]
    assert [row[0] for row in index] == [key for key, _ in samples]
    with open(tar, "rb") as fh:
        assert all(read_sample(fh, off, n, tar.name, key)["json"] == got[key] for key, off, n in index)
    assert sample_table(tar) == scan_tar(tar) == [tuple(row) for row in index]


def test_writer_rejects_member_extensions_webdataset_would_drop(tmp_path):
    with ShardWriter(tmp_path, "x") as writer, pytest.raises(ShardError, match="extension"):
        writer.write("a", {"_meta": b"{}"})
