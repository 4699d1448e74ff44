"""Data-parallel training across processes (`torchrun --nproc_per_node N -m dataengine.cli.app train ...`).

When `WORLD_SIZE` > 1 the process group is initialized (NCCL on CUDA, gloo on CPU), every rank builds the same
model from the same seed (then rank 0's weights are broadcast), the loaders give each rank its own shards, and
after the backward passes of a step the gradients are averaged across ranks (one all-reduce per bucket of
flattened gradients) before clipping and the optimizer step. Rank 0 writes checkpoints (with every rank's loader
position), logs and evaluations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

BUCKET_BYTES = 64 << 20


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group when launched with WORLD_SIZE > 1 (torchrun sets it); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def broadcast_parameters(module: torch.nn.Module, info: DistInfo) -> None:
    if info.active:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """All-reduce (mean) the gradients of `params` in buckets; parameters without a gradient count as zero."""
    if not info.active:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    bucket: list[torch.Tensor] = []
    size = 0
    for p in params:
        bucket.append(p.grad)
        size += p.grad.numel() * p.grad.element_size()
        if size >= BUCKET_BYTES:
            _reduce(bucket, info.world)
            bucket, size = [], 0
    if bucket:
        _reduce(bucket, info.world)


def _reduce(grads: list[torch.Tensor], world: int) -> None:
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= world
    for g, reduced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        g.copy_(reduced)


def gather_objects(obj, info: DistInfo) -> list:
    """Every rank's `obj`, in rank order (a one-element list without a process group)."""
    if not info.active:
        return [obj]
    out: list = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()
