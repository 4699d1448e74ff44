"""Deterministic mixing: item priorities, pair quotas per source and hash buckets.

The nesting rule: every candidate item gets a priority, a 64-bit hash of (family seed, source name, input sample
key, item index). Each source contributes its lowest-priority items whose running pair count fits its quota.
Quotas come from water-filling: sources with a fixed `pairs` quota get min(pairs, available); the rest of the
target is shared in proportion to the weights, a source that runs out giving its surplus to the others. Every
quota is a non-decreasing function of the target, so a bigger corpus of the same family (same seed, sources,
weights, filters and holdouts) holds every item of a smaller one.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from dataengine.errors import RecipeError


def stable_u64(*parts: object) -> int:
    """A 64-bit unsigned hash of the parts (BLAKE2b of their text joined by the unit separator)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


_MASK64 = (1 << 64) - 1


def _mix64(value: int) -> int:
    """SplitMix64's finalizer: a fixed bijection of 64-bit integers that scatters nearby inputs."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & _MASK64
    return value ^ (value >> 31)


def item_priorities(seed: int, source: str, sample_key: str, n_items: int) -> list[int]:
    """Selection priorities of a sample's items (lower is taken first): BLAKE2b of (seed, source, key), then
    SplitMix64 of that plus the item index. Stable across machines, Python and library versions."""
    base = stable_u64("priority", seed, source, sample_key)
    return [_mix64((base + index * 0x9E3779B97F4A7C15) & _MASK64) for index in range(n_items)]


def item_priority(seed: int, source: str, sample_key: str, item_index: int) -> int:
    """The selection priority of one item (see `item_priorities`)."""
    return item_priorities(seed, source, sample_key, item_index + 1)[item_index]


@dataclass(frozen=True)
class SourceDemand:
    """What a source asks for and what it has after filters, holdouts and dedup."""

    name: str
    available_pairs: int
    weight: float = 0.0
    fixed_pairs: int | None = None


def allocate_quotas(target_pairs: int | None, demands: list[SourceDemand]) -> dict[str, int]:
    """Pairs per source. `target_pairs=None` takes everything available (fixed quotas still cap their source).

    Weighted sources share `target - sum(fixed quotas)` by water-filling: find the level L with
    sum(min(available_s, L * weight_s)) = remainder; each quota is floor(min(available_s, L * weight_s)).
    """
    quotas: dict[str, int] = {}
    for d in demands:
        if d.fixed_pairs is not None:
            quotas[d.name] = min(d.fixed_pairs, d.available_pairs)
    weighted = [d for d in demands if d.fixed_pairs is None]
    if target_pairs is None:
        quotas.update({d.name: d.available_pairs for d in weighted})
        return {d.name: quotas[d.name] for d in demands}
    fixed_total = sum(d.fixed_pairs or 0 for d in demands if d.fixed_pairs is not None)
    if fixed_total > target_pairs:
        raise RecipeError(f"fixed pair quotas add up to {fixed_total}, more than target_pairs {target_pairs}")
    remainder = target_pairs - sum(quotas.values())
    level = _water_level(remainder, [(d.available_pairs, d.weight) for d in weighted])
    for d in weighted:
        share = d.available_pairs if math.isinf(level) else min(d.available_pairs, math.floor(level * d.weight))
        quotas[d.name] = int(share)
    return {d.name: quotas[d.name] for d in demands}


def _water_level(remainder: int, capacities: list[tuple[int, float]]) -> float:
    """The level L with sum(min(cap, L * w)) = remainder (inf when the capacities cannot reach it)."""
    active = [(cap, w) for cap, w in capacities if w > 0 and cap > 0]
    if remainder <= 0 or not active:
        return 0.0
    if sum(cap for cap, _ in active) <= remainder:
        return math.inf
    active.sort(key=lambda cw: cw[0] / cw[1])
    filled = 0.0
    weight_left = sum(w for _, w in active)
    for cap, w in active:
        level = (remainder - filled) / weight_left
        if cap / w >= level:
            return level
        filled += cap
        weight_left -= w
    return math.inf  # unreachable: the capacities exceed the remainder


def bucket_of(group_hex: str, n_buckets: int) -> int:
    """The write bucket of a sample group: its hash prefix scaled to [0, n_buckets), so buckets are hash ranges."""
    return int(group_hex[:8], 16) * n_buckets >> 32


def bucket_count(samples: int, est_bytes: int, max_samples: int, max_bytes: int, min_shards: int) -> int:
    """Buckets (≈ shards) for a corpus: enough that a bucket fills about 90% of one shard."""
    by_samples = math.ceil(samples / max(1, int(max_samples * 0.9)))
    by_bytes = math.ceil(est_bytes / max(1, int(max_bytes * 0.9)))
    return max(1, min_shards, by_samples, by_bytes)
