"""Training past one process: PyTorch's own engine, DistributedDataParallel under torchrun.

    torchrun --nproc_per_node 4 -m lab.cli train --stage detector ...        # one machine, 4 GPUs
    torchrun --nnodes 2 --node_rank R --nproc_per_node 8 \\
             --rdzv_backend c10d --rdzv_endpoint HOST:29500 -m lab.cli train ...   # several machines

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `Dist.from_env` joins the process group
(NCCL on CUDA, gloo on CPU). Without them (a plain `pose-lab train`) it is one process and
every method is a no-op, so the loop has one code path. The loop shards each epoch
(`lab.train.loop.run_epoch`); only rank 0 validates, logs and writes checkpoints, which
every rank reads back when resuming (several machines need a shared run folder).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as td
import torch.nn as nn


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""

    @classmethod
    def from_env(cls, device: str = "auto") -> "Dist":
        """The process group torchrun describes in the environment, joined; else one process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        backend = "nccl" if cuda else "gloo"
        if not td.is_initialized():
            td.init_process_group(backend)
        return cls(td.get_rank(), td.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend)

    def device(self, device: str) -> str:
        """This rank's device: its own GPU (cuda:LOCAL_RANK) under NCCL."""
        if self.world > 1 and device == "cuda":
            torch.cuda.set_device(self.local_rank)
            return f"cuda:{self.local_rank}"
        return device

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around the stage's loss module (gradients averaged over
        ranks after every backward); the module itself for one process.

        On CUDA, BatchNorm layers become SyncBatchNorm, so a step normalises with the combined
        batch's statistics. PyTorch has no SyncBatchNorm on the CPU: there (gloo) each rank
        normalises with its own shard's statistics, as plain DDP does."""
        if self.world <= 1:
            return module
        if self.backend == "nccl":
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            return nn.parallel.DistributedDataParallel(module, device_ids=[self.local_rank])
        return nn.parallel.DistributedDataParallel(module)

    def barrier(self) -> None:
        if self.world > 1:
            td.barrier()

    def close(self) -> None:
        if self.world > 1 and td.is_initialized():
            td.destroy_process_group()
