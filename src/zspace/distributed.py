"""Data-parallel training under torchrun: one process per GPU (or CPU worker), gradients averaged
by DistributedDataParallel, rank 0 alone writing files.

Outside torchrun (no WORLD_SIZE in the environment) everything here is a no-op, so the same
training code runs on one process or many.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE_PROCESS = DistributedContext()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: torch.device) -> DistributedContext:
    """Join the process group torchrun set up (nccl on CUDA, gloo on CPU); no-op otherwise.

    On CUDA each process takes the GPU of its LOCAL_RANK; call this before building models.
    """
    if not launched_by_torchrun():
        return SINGLE_PROCESS
    context = DistributedContext(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend=backend)
    return context


def local_device(device: torch.device, context: DistributedContext) -> torch.device:
    """The device this process should use: cuda:LOCAL_RANK under torchrun on GPUs."""
    if context.enabled and device.type == "cuda":
        return torch.device("cuda", context.local_rank)
    return device


def wrap_for_training(module: nn.Module, context: DistributedContext) -> nn.Module:
    """DistributedDataParallel around `module` when running under torchrun, else `module`."""
    if not context.enabled:
        return module
    device_ids = [context.local_rank] if next(module.parameters()).is_cuda else None
    return DistributedDataParallel(module, device_ids=device_ids)


def shard_of_batch(indices: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """This rank's equal share of a global batch (global batch size must divide evenly)."""
    if not context.enabled:
        return indices
    return indices.tensor_split(context.world_size)[context.rank]


def barrier(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: float, context: DistributedContext, device) -> float:
    """Average a Python number over ranks (for logging the same loss on every rank)."""
    if not context.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / context.world_size


def finish_process_group() -> bool:
    """Leave the process group if one is active; returns True on the process that should
    report results (rank 0, or the only process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return True
    is_main = dist.get_rank() == 0
    dist.barrier()
    dist.destroy_process_group()
    return is_main


def average_gradients(module: nn.Module, context: DistributedContext) -> None:
    """All-reduce and average `module`'s gradients across ranks (what DDP does in backward).

    GAN steps run the discriminator twice per update and freeze it during the generator's
    update, which DDP's reducer does not allow without find_unused_parameters; averaging the
    gradients explicitly just before each optimizer step gives the same update.
    """
    if not context.enabled:
        return
    for parameter in module.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad.div_(context.world_size)
