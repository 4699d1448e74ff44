"""Quotas and priorities: water-filling, monotone in the target (the nesting guarantee), stable hashes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataengine.corpus.quotas import SourceDemand, allocate_quotas, bucket_count, bucket_of, item_priority
from dataengine.corpus.scan import coco_image_id
from dataengine.errors import RecipeError


def test_weights_split_the_target():
    demands = [SourceDemand("a", 10_000, 2.0), SourceDemand("b", 10_000, 1.0), SourceDemand("c", 10_000, 1.0)]
    assert allocate_quotas(1000, demands) == {"a": 500, "b": 250, "c": 250}


def test_a_source_that_runs_out_gives_its_share_to_the_others():
    demands = [SourceDemand("a", 100, 2.0), SourceDemand("b", 10_000, 1.0), SourceDemand("c", 10_000, 1.0)]
    assert allocate_quotas(1000, demands) == {"a": 100, "b": 450, "c": 450}


def test_fixed_quotas_come_first_and_everything_when_short():
    demands = [SourceDemand("a", 300, fixed_pairs=200), SourceDemand("b", 10_000, 1.0)]
    assert allocate_quotas(1000, demands) == {"a": 200, "b": 800}
    short = [SourceDemand("a", 50, fixed_pairs=200), SourceDemand("b", 70, 1.0)]
    assert allocate_quotas(1000, short) == {"a": 50, "b": 70}
    assert allocate_quotas(None, short) == {"a": 50, "b": 70}
    with pytest.raises(RecipeError, match="more than target_pairs"):
        allocate_quotas(100, [SourceDemand("a", 300, fixed_pairs=200)])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5000), st.floats(0.1, 5.0), st.booleans()), min_size=1, max_size=6),
    st.integers(1, 20_000),
    st.integers(0, 5_000),
)
def test_quotas_never_shrink_when_the_target_grows(sources, target, extra):
    demands = [
        SourceDemand(f"s{i}", avail, weight, fixed_pairs=avail // 4 if fixed else None)
        for i, (avail, weight, fixed) in enumerate(sources)
    ]
    fixed_total = sum(d.fixed_pairs or 0 for d in demands)
    small = allocate_quotas(target + fixed_total, demands)
    big = allocate_quotas(target + fixed_total + extra, demands)
    for d in demands:
        assert 0 <= small[d.name] <= big[d.name] <= d.available_pairs
    assert sum(small.values()) <= target + fixed_total


def test_priorities_are_stable_and_seeded():
    assert item_priority(7, "refcoco", "k1", 0) == item_priority(7, "refcoco", "k1", 0)
    assert item_priority(7, "refcoco", "k1", 0) != item_priority(8, "refcoco", "k1", 0)
    assert item_priority(7, "refcoco", "k1", 0) != item_priority(7, "refcocog", "k1", 0)
    assert 0 <= item_priority(1, "a", "b", 2) < 2**64


def test_buckets_are_ordered_hash_ranges():
    assert bucket_of("00000000" + "0" * 32, 16) == 0 and bucket_of("ffffffff" + "f" * 32, 16) == 15
    assert bucket_of("80000000" + "0" * 32, 4) == 2
    assert bucket_count(samples=100, est_bytes=10, max_samples=10, max_bytes=10**9, min_shards=1) == 12
    assert bucket_count(samples=5, est_bytes=3 * 10**9, max_samples=10, max_bytes=10**9, min_shards=1) == 4
    assert bucket_count(samples=0, est_bytes=0, max_samples=10, max_bytes=10, min_shards=3) == 3


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"image": {"origin": "x.jpg", "coco_image_id": 42}}, 42),
        ({"image": {"origin": "COCO_train2014_000000123456.jpg"}}, 123456),
        ({"image": {"origin": "coco/train2017/000000000026.jpg"}}, 26),
        ({"image": {"origin": "/data/train2014/000000000777.jpg"}}, 777),
        ({"image": {"origin": "images/mscoco/images/train2014/COCO_train2014_000000000009.jpg"}}, 9),
        ({"image": {"origin": "vg/VG_100K/2345.jpg"}}, None),
        ({"image": {"origin": "roborefit/image/0000026.png"}}, None),
    ],
)
def test_coco_image_ids_from_records(record, expected):
    assert coco_image_id(record) == expected
