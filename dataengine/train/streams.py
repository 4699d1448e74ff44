"""Streaming training samples from WebDataset shards: split across ranks and workers, shuffled, resumable.

A shard set is a list of tars; each sample holds one or more *units* (one grounding sample = 1 unit, one episode
= one unit per time step). A loader *slot* is one (rank, data-loader worker); slot = rank * workers + worker.

The order of units is a pure function of (seed, epoch, slot): shards are shuffled per epoch, split across slots
(whole shards when there are at least as many shards as slots, else every n-th sample), read in order and passed
through a shuffle buffer of `shuffle_buffer` units. Samples are read lazily by (shard, index) through the shard
index, so resuming at position p of an epoch replays only integers (no reads, no decoding) and then continues
exactly where the interrupted run stopped: no duplicates, no gaps.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol

from torch.utils.data import IterableDataset, get_worker_info

from dataengine.errors import DataEngineError, JobStateError, ShardError
from dataengine.train.shard_index import ShardEntry, ShardReader

log = logging.getLogger(__name__)

META_KEYS = ("__slot__", "__epoch__", "__pos__", "__shard__", "__key__")


class SkipSample(DataEngineError):
    """Raised by a transform for a sample the stream does not use (another split, no usable item): no warning."""


class UnitTransform(Protocol):
    """Turns raw samples into training items. `prepare` runs once per loaded sample, `item` once per unit."""

    def prepare(self, raw: dict) -> Any: ...

    def item(self, prepared: Any, unit: int, epoch: int) -> dict: ...


def distributed_rank_world() -> tuple[int, int]:
    """(rank, world size) from torch.distributed when initialized, else from RANK / WORLD_SIZE, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _mix(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


class ShardStream(IterableDataset):
    """An iterable of training items over a shard set. Iterate it through `StreamLoader` to track positions."""

    def __init__(
        self,
        entries: list[ShardEntry],
        transform: UnitTransform,
        *,
        seed: int = 0,
        shuffle_buffer: int = 1000,
        shuffle_shards: bool = True,
        epochs: int | None = None,
        split: str = "auto",
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if not entries:
            raise ShardError("a stream needs at least one shard")
        if split not in ("auto", "shard", "sample"):
            raise ValueError(f"split must be auto, shard or sample, got {split!r}")
        for entry in entries:
            if not entry.units:
                entry.units = [1] * len(entry)
        self.entries, self.transform = entries, transform
        self.seed, self.shuffle_buffer, self.shuffle_shards = seed, max(1, shuffle_buffer), shuffle_shards
        self.epochs, self.split = epochs, split
        self.rank, self.world_size = rank, world_size
        self.resume_at: dict[int, tuple[int, int]] = {}  # slot -> (epoch, units already consumed in that epoch)
        self.worker_rotation = 0  # data-loader worker k serves slot worker (k + rotation) % workers

    # --- identity --------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        h = hashlib.sha1()
        for e in self.entries:
            h.update(f"{e.name}:{len(e)}:{sum(e.units)}\n".encode())
        return h.hexdigest()

    def total_units(self) -> int:
        return sum(sum(e.units) for e in self.entries)

    def slot_layout(self, num_workers: int) -> tuple[int, int]:
        """(rank, number of slots) for a loader with `num_workers` workers (0 = main process)."""
        rank, world = distributed_rank_world()
        rank = self.rank if self.rank is not None else rank
        world = self.world_size if self.world_size is not None else world
        if not 0 <= rank < world:
            raise DataEngineError(f"rank {rank} is outside a world of size {world}")
        return rank, world * max(1, num_workers)

    # --- the plan: a pure function of (seed, epoch, slot) -----------------------------------------------------
    def slot_samples(self, epoch: int, slot: int, n_slots: int) -> Iterator[tuple[int, int]]:
        """(shard index, sample index) pairs this slot reads in `epoch`, in read order."""
        order = list(range(len(self.entries)))
        if self.shuffle_shards:
            random.Random(_mix("shards", self.seed, epoch)).shuffle(order)
        by_shard = self.split == "shard" or (self.split == "auto" and len(order) >= n_slots)
        if by_shard:
            for s in order[slot::n_slots]:
                for j in range(len(self.entries[s])):
                    yield s, j
            return
        counter = 0
        for s in order:
            for j in range(len(self.entries[s])):
                if counter % n_slots == slot:
                    yield s, j
                counter += 1

    def plan(self, epoch: int, slot: int, n_slots: int) -> Iterator[tuple[int, int, int, bool]]:
        """(shard, sample, unit, last unit of that sample) in the order the slot yields them."""
        rng = random.Random(_mix("buffer", self.seed, epoch, slot, n_slots))
        buffer: list[tuple[int, int, int]] = []
        remaining: dict[tuple[int, int], int] = {}

        def pop(index: int):
            buffer[index], buffer[-1] = buffer[-1], buffer[index]
            s, j, u = buffer.pop()
            remaining[(s, j)] -= 1
            last = remaining[(s, j)] == 0
            if last:
                del remaining[(s, j)]
            return s, j, u, last

        for s, j in self.slot_samples(epoch, slot, n_slots):
            units = self.entries[s].units[j]
            if units <= 0:
                continue
            remaining[(s, j)] = units
            for u in range(units):
                buffer.append((s, j, u))
                if len(buffer) >= self.shuffle_buffer:
                    yield pop(rng.randrange(len(buffer)))
        while buffer:
            yield pop(rng.randrange(len(buffer)) if self.shuffle_buffer > 1 else 0)

    def consumed_per_shard(self, epoch: int, slot: int, n_slots: int, pos: int) -> Counter:
        """Units of each shard this slot has yielded after `pos` units of `epoch` (replays integers only)."""
        counts: Counter = Counter()
        for i, (s, _, _, _) in enumerate(self.plan(epoch, slot, n_slots)):
            if i >= pos:
                break
            counts[self.entries[s].name] += 1
        return counts

    # --- iteration -----------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        worker = (worker + self.worker_rotation) % workers
        rank, n_slots = self.slot_layout(workers)
        slot = rank * workers + worker
        if sum(len(e) for e in self.entries) < n_slots:
            raise ShardError(
                f"{sum(len(e) for e in self.entries)} samples cannot feed {n_slots} loader slots "
                "(ranks x workers): use fewer data-loader workers or more data"
            )
        epoch, skip = self.resume_at.get(slot, (0, 0))
        reader = ShardReader(self.entries)
        try:
            while self.epochs is None or epoch < self.epochs:
                yield from self._epoch(reader, epoch, slot, n_slots, skip)
                epoch, skip = epoch + 1, 0
        finally:
            reader.close()

    def _epoch(self, reader: ShardReader, epoch: int, slot: int, n_slots: int, skip: int) -> Iterator[dict]:
        cache: dict[tuple[int, int], Any] = {}
        bad: set[tuple[int, int]] = set()
        yielded = 0
        for pos, (s, j, u, last) in enumerate(self.plan(epoch, slot, n_slots), start=1):
            if pos <= skip or (s, j) in bad:
                continue
            entry = self.entries[s]
            try:
                prepared = cache.get((s, j))
                if prepared is None:
                    prepared = cache[(s, j)] = self.transform.prepare(reader.read(s, j))
                item = self.transform.item(prepared, u, epoch)
            except SkipSample:
                bad.add((s, j))
                cache.pop((s, j), None)
                continue
            except (DataEngineError, ValueError) as exc:  # ValueError covers pydantic and JSON errors
                log.warning("skipping sample %s of %s: %s", entry.keys[j], entry.name, exc)
                bad.add((s, j))
                cache.pop((s, j), None)
                continue
            finally:
                if last:
                    cache.pop((s, j), None)
            item.update({"__slot__": slot, "__epoch__": epoch, "__pos__": pos, "__shard__": entry.name})
            item.setdefault("__key__", entry.keys[j])
            yielded += 1
            yield item
        if yielded == 0 and skip == 0:
            raise ShardError(f"loader slot {slot} of {n_slots} got no usable samples in epoch {epoch}")


class StreamPosition:
    """What the trainer has consumed, per slot: epoch, units consumed in it, and per-shard counts in that epoch."""

    def __init__(self) -> None:
        self.slots: dict[int, dict] = {}

    def update(self, meta: dict[str, list]) -> None:
        for slot, epoch, pos, shard in zip(
            meta["__slot__"], meta["__epoch__"], meta["__pos__"], meta["__shard__"], strict=True
        ):
            state = self.slots.setdefault(int(slot), {"epoch": int(epoch), "pos": 0, "per_shard": Counter()})
            if int(epoch) != state["epoch"]:
                state.update(epoch=int(epoch), pos=0, per_shard=Counter())
            state["pos"] = max(state["pos"], int(pos))
            state["per_shard"][shard] += 1


class StreamLoader:
    """A `DataLoader` over a `ShardStream` that knows what it handed out: `state_dict()` / `load_state_dict()`."""

    def __init__(self, stream: ShardStream, batch_size: int, collate_fn, num_workers: int = 0, prefetch: int = 2):
        self.stream, self.batch_size, self.collate_fn = stream, batch_size, collate_fn
        self.num_workers, self.prefetch = num_workers, prefetch
        self.position = StreamPosition()
        self.next_worker = 0  # the worker whose batch comes next (the DataLoader serves workers round-robin)

    def __iter__(self) -> Iterator[dict]:
        from torch.utils.data import DataLoader

        self.stream.resume_at = {s: (st["epoch"], st["pos"]) for s, st in self.position.slots.items()}
        self.stream.worker_rotation = self.next_worker
        loader = DataLoader(
            self.stream,
            batch_size=self.batch_size,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
            prefetch_factor=self.prefetch if self.num_workers else None,
            persistent_workers=False,
        )
        workers = max(1, self.num_workers)
        for batch in loader:
            self.position.update(batch["meta"])
            self.next_worker = (int(batch["meta"]["__slot__"][-1]) % workers + 1) % workers
            yield batch

    def state_dict(self) -> dict:
        rank, n_slots = self.stream.slot_layout(self.num_workers)
        return {
            "version": 1,
            "fingerprint": self.stream.fingerprint(),
            "seed": self.stream.seed,
            "rank": rank,
            "slots": n_slots,
            "num_workers": self.num_workers,
            "next_worker": self.next_worker,
            "positions": {
                str(slot): {"epoch": st["epoch"], "pos": st["pos"], "consumed_per_shard": dict(st["per_shard"])}
                for slot, st in sorted(self.position.slots.items())
            },
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue after the consumed units of a saved state. The shard set, seed and slot layout must match."""
        _, n_slots = self.stream.slot_layout(self.num_workers)
        expected = {"fingerprint": self.stream.fingerprint(), "seed": self.stream.seed, "slots": n_slots}
        for key, value in expected.items():
            if state.get(key) != value:
                raise JobStateError(
                    f"cannot resume the loader: its {key} was {state.get(key)!r} and is now {value!r} "
                    "(same shards, seed, ranks and data-loader workers are needed for an exact resume)"
                )
        self.position = StreamPosition()
        self.next_worker = int(state.get("next_worker", 0))
        for slot_text, saved in state["positions"].items():
            slot = int(slot_text)
            counts = self.stream.consumed_per_shard(saved["epoch"], slot, n_slots, saved["pos"])
            # skipped (quarantined) samples are replayed but were never handed out: saved <= replayed
            if any(n > counts.get(shard, 0) for shard, n in saved["consumed_per_shard"].items()):
                raise JobStateError(f"cannot resume the loader: slot {slot}'s per-shard counts do not replay")
            self.position.slots[slot] = {"epoch": saved["epoch"], "pos": saved["pos"], "per_shard": counts}
