"""``--target tensorflow-horovod``: every rank runs its own chains; the gradients, computed
inside the XLA train step, are averaged by Horovod's allreduce outside it (Horovod has no XLA
kernel for it); rank 0's variables are broadcast before the first step and, with the
optimizer's slots, after it (``l2hmcc_runtime/tf/distributed.py``).

Locally ``run-local.sh`` starts the ranks with ``horovodrun --gloo``; on ALCF systems ``job.pbs``
uses mpiexec (Horovod for TensorFlow ships in Polaris' ``conda/2024-04-29`` and, as Intel's
build, in Aurora's ``tensorflow`` module: the system checks say which). Horovod 0.28.1 needs two
patches to build against current TensorFlow: ``scripts/build-horovod.sh``.
"""

from __future__ import annotations

from typing import Any

from l2hmcc import ir
from l2hmcc.targets.tensorflow import TensorFlowTarget


def horovod_context(spec: ir.Spec) -> dict[str, Any]:
    d = spec.distributed
    return {"fp16_allreduce": isinstance(d, ir.Horovod) and d.fp16_allreduce}


TARGET = TensorFlowTarget(
    name="tensorflow-horovod",
    backend="horovod",
    description="TensorFlow + XLA with Horovod",
    local="horovodrun",
    backend_class="HorovodBackend",
    backend_context=horovod_context,
)
