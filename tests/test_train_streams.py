"""Streaming loader: shards split across data-loader workers and ranks without duplicates or gaps, exact resume of
the position, per-shard accounting, foreign tars without an index."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from dataengine.errors import JobStateError
from dataengine.train.shard_index import load_shard_set
from dataengine.train.streams import META_KEYS, ShardStream, StreamLoader
from tests.fixtures.inspect_shards import build_samples, write_foreign_tar
from tests.fixtures.train_data import make_grounding_shards


class KeyUnits:
    """A transform that yields each unit's identity (no decoding): enough to check ordering."""

    def prepare(self, raw: dict) -> str:
        return raw["__key__"]

    def item(self, key: str, unit: int, epoch: int) -> dict:
        return {"__key__": f"{key}/{unit}"}


def collate(items: list[dict]) -> dict:
    return {"meta": {k: [it.get(k) for it in items] for k in META_KEYS}}


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    return make_grounding_shards(tmp_path_factory.mktemp("g") / "corpus", samples=30, per_shard=4)  # 8 shards


def keys_of(loader, limit: int | None = None) -> list[str]:
    out = []
    for batch in loader:
        out += batch["meta"]["__key__"]
        if limit is not None and len(out) >= limit:
            break
    return out


def make_stream(shard_dir, **kw) -> ShardStream:
    entries = load_shard_set(shard_dir)
    for e in entries:  # two units per sample, like a (tiny) episode
        e.units = [2] * len(e)
    return ShardStream(entries, KeyUnits(), **kw)


@pytest.mark.parametrize("world,workers", [(1, 2), (2, 1), (2, 2), (9, 1), (5, 2)])
def test_ranks_and_workers_partition_one_epoch(shard_dir, world, workers):
    """Every unit of the epoch is read exactly once across all ranks and workers (8 shards: whole-shard split
    for <= 8 slots, every-n-th-sample split for 9 and 10 slots)."""
    expected = [*sorted(f"s{i:04d}/{u}" for i in range(30) for u in range(2)), "t0000/0", "t0000/1"]
    seen: list[str] = []
    for rank in range(world):
        stream = make_stream(shard_dir, seed=3, shuffle_buffer=7, epochs=1, rank=rank, world_size=world)
        seen += keys_of(StreamLoader(stream, 4, collate, num_workers=workers))
    assert sorted(seen) == expected


def test_order_depends_on_seed_and_epoch_only(shard_dir):
    a = keys_of(StreamLoader(make_stream(shard_dir, seed=1, shuffle_buffer=16, epochs=2), 5, collate))
    b = keys_of(StreamLoader(make_stream(shard_dir, seed=1, shuffle_buffer=16, epochs=2), 5, collate))
    c = keys_of(StreamLoader(make_stream(shard_dir, seed=2, shuffle_buffer=16, epochs=2), 5, collate))
    assert a == b and a != c
    half = len(a) // 2
    assert sorted(a[:half]) == sorted(a[half:]) and a[:half] != a[half:]  # two epochs, reshuffled


@pytest.mark.parametrize("workers,stop", [(0, 48), (2, 48), (2, 45)])
def test_resume_continues_exactly(shard_dir, workers, stop):
    """Stop mid-epoch (with units of half-read samples still in the shuffle buffer), save, resume in a new loader:
    the concatenation equals an uninterrupted run, across an epoch boundary."""
    full = keys_of(StreamLoader(make_stream(shard_dir, seed=5, shuffle_buffer=9), 3, collate, workers), limit=150)
    first = StreamLoader(make_stream(shard_dir, seed=5, shuffle_buffer=9), 3, collate, workers)
    head = keys_of(first, limit=stop)  # 45: an odd number of batches, the next one is worker 1's
    state = first.state_dict()
    assert sum(sum(p["consumed_per_shard"].values()) for p in state["positions"].values()) == stop
    second = StreamLoader(make_stream(shard_dir, seed=5, shuffle_buffer=9), 3, collate, workers)
    second.load_state_dict(state)
    tail = keys_of(second, limit=150 - stop)
    assert head + tail == full[: len(head) + len(tail)]


def test_resume_refuses_another_layout_or_seed(shard_dir):
    loader = StreamLoader(make_stream(shard_dir, seed=5), 3, collate, num_workers=0)
    keys_of(loader, limit=6)
    state = loader.state_dict()
    with pytest.raises(JobStateError, match="slots"):
        StreamLoader(make_stream(shard_dir, seed=5), 3, collate, num_workers=2).load_state_dict(state)
    with pytest.raises(JobStateError, match="seed"):
        StreamLoader(make_stream(shard_dir, seed=6), 3, collate, num_workers=0).load_state_dict(state)


def test_foreign_tar_is_scanned_and_read(tmp_path):
    """A tar written by another tool (GNU format, folder prefix, no sidecar index) streams the same samples (its
    sample table: tests/test_shards_index.py)."""
    samples = build_samples(6, seed=1)
    tar = write_foreign_tar(tmp_path / "foreign.tar", samples)
    assert load_shard_set(tar)[0].keys == [f"images/{r.key}" for r, _ in samples]
    stream = ShardStream(load_shard_set(tar), KeyUnits(), shuffle_buffer=1, shuffle_shards=False, epochs=1)
    assert keys_of(StreamLoader(stream, 2, collate)) == [f"images/{r.key}/0" for r, _ in samples]


def test_too_many_slots_for_the_data_is_a_clear_error(tmp_path):
    from dataengine.errors import ShardError

    shard_dir = make_grounding_shards(tmp_path / "g", samples=2, per_shard=4)
    stream = make_stream(shard_dir, epochs=1, rank=0, world_size=4)
    with pytest.raises(ShardError, match="loader slots"):
        keys_of(StreamLoader(stream, 2, collate))
