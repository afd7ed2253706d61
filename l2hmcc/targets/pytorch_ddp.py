"""``--target pytorch-ddp``: torch.distributed with ``DistributedDataParallel``.

Every rank runs its own chains; DDP's hooks average the gradients, so the parameters stay
identical on every rank; metrics are reduced to rank 0. Locally ``run-local.sh`` starts the
ranks with torchrun (``--standalone``); on ALCF systems ``job.pbs`` uses mpiexec and ``train.py``
reads the MPI rank variables. The process group uses nccl on CUDA, xccl on XPU, gloo on CPU.
"""

from __future__ import annotations

from typing import Any

from l2hmcc import ir
from l2hmcc.targets.pytorch import PyTorchTarget


def ddp_context(spec: ir.Spec) -> dict[str, Any]:
    d = spec.distributed
    return {"find_unused_parameters": isinstance(d, ir.DDP) and d.find_unused_parameters}


TARGET = PyTorchTarget(
    name="pytorch-ddp",
    backend="ddp",
    description="PyTorch DistributedDataParallel",
    local="torchrun",
    runtime_imports={
        "common.launch": ("export_torch_env",),
        "pt.backends": ("DDPBackend", "dist_backend"),
    },
    backend_context=ddp_context,
)
