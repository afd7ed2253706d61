"""The target registry: one entry per ``--target``.

A target turns a checked `ir.Spec` into a `Bundle` of generated files. It declares its
framework and distributed backend, which the checks use (e.g. DeepSpeed needs PyTorch).
Each target is one small module in this package:

* `pytorch`, `pytorch_ddp`, `pytorch_deepspeed`, `pytorch_horovod`: PyTorch jobs, built by
  the shared context builder in `pytorch` (the modules differ in their backend set-up, their
  local launcher and, for DeepSpeed, ``ds_config.json``);
* `job`: what every job directory has whatever the framework (the carried runtime, the local
  launcher ``run-local.sh``, ``job.pbs``); `sampler`: the IR → runtime config tables both
  frameworks' ``train.py`` use; `pycode`: ruff-style layout of generated Python;
* `tensorflow`, `tensorflow_horovod`: TensorFlow jobs (XLA), built by the context builder in
  `tensorflow` (the same job layout; the backends differ in their set-up and local launcher).

To add a target: write ``l2hmcc/targets/<name>.py`` with an object that satisfies `Target`
and list it in `TARGETS`. A PyTorch backend is a `pytorch.PyTorchTarget` plus a
``templates/pytorch/backend_<name>.py.j2`` partial; a TensorFlow backend is a
`tensorflow.TensorFlowTarget` plus a ``templates/tensorflow/backend_<name>.py.j2`` partial.
`PendingTarget` registers a target whose generator is not written yet.
"""

from __future__ import annotations

from l2hmcc.targets import (
    pytorch,
    pytorch_ddp,
    pytorch_deepspeed,
    pytorch_horovod,
    tensorflow,
    tensorflow_horovod,
)
from l2hmcc.targets.base import Framework, PendingTarget, RenderContext, Target

__all__ = ["TARGETS", "Framework", "PendingTarget", "RenderContext", "Target", "get"]

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        pytorch.TARGET,
        pytorch_ddp.TARGET,
        pytorch_horovod.TARGET,
        pytorch_deepspeed.TARGET,
        tensorflow.TARGET,
        tensorflow_horovod.TARGET,
    )
}


def get(name: str) -> Target | None:
    return TARGETS.get(name)


def is_implemented(target: Target) -> bool:
    return bool(getattr(target, "implemented", True))
