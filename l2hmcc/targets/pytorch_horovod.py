"""``--target pytorch-horovod``: Horovod's ``DistributedOptimizer`` (gradients averaged by
allreduce), rank 0's parameters and optimizer state broadcast at start.

Locally ``run-local.sh`` starts the ranks with ``horovodrun --gloo``; on ALCF systems ``job.pbs``
uses mpiexec (Horovod ships only in some module stacks there: the system checks say which).
Horovod 0.28.1 needs two patches to build against current torch: ``scripts/build-horovod.sh``.
"""

from __future__ import annotations

from typing import Any

from l2hmcc import ir
from l2hmcc.targets.pytorch import PyTorchTarget


def horovod_context(spec: ir.Spec) -> dict[str, Any]:
    d = spec.distributed
    return {"fp16_allreduce": isinstance(d, ir.Horovod) and d.fp16_allreduce}


TARGET = PyTorchTarget(
    name="pytorch-horovod",
    backend="horovod",
    description="PyTorch with Horovod",
    local="horovodrun",
    runtime_imports={"pt.backends": ("HorovodBackend",)},
    imports=("import horovod.torch as hvd",),
    backend_context=horovod_context,
)
