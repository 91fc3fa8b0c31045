"""torch.distributed set-up for sharded runs (torchrun)."""

from __future__ import annotations

import os

import torch


def distributed_context():
    """(rank, world, gather, device) under torchrun (WORLD_SIZE > 1), else (0, 1, None, None).

    Initialises torch.distributed: NCCL when CUDA is available (one GPU per local rank), gloo
    otherwise. gather(obj) returns every rank's obj on rank 0 (None elsewhere)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None, None
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    device = None
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"

    def gather(obj):
        bucket = [None] * world if rank == 0 else None
        dist.gather_object(obj, bucket, dst=0)
        return bucket

    return rank, world, gather, device
