"""The seam between the TensorFlow trainer and a distributed backend (mirror of
``pt/distributed.py``).

The trainer talks to one ``Backend`` and nothing else distributed; it never imports Horovod.
TensorFlow's split differs from PyTorch's in one place: the gradients are computed *inside* the
XLA-compiled train step, and Horovod's allreduce has no XLA kernel (it cannot run inside
``jit_compile=True``).  So a train step is

    grads = compiled_grads(...)                 # XLA: proposal, loss, tape.gradient
    grads = backend.reduce_gradients(grads)     # eager: Horovod allreduce (mean over ranks)
    compiled_apply(grads, lr)                   # XLA: clipping and the optimizer update

and ``broadcast_variables`` is called with the model's variables before the first step and with
the model's and the optimizer's variables after it (Horovod's rule: every rank then holds rank
0's state, including optimizer slots).

* ``rank``, ``world_size``, ``is_main`` (rank 0 writes checkpoints and logs);
* ``reduce_gradients(grads) -> grads``: the mean over ranks;
* ``all_reduce_mean(tensor or dict of tensors)``: the mean over ranks (metrics);
* ``broadcast_variables(variables)``: rank 0's values to every rank;
* ``barrier()``.

``SingleProcess`` is the identity; ``Horovod`` uses ``horovod.tensorflow`` (gloo or MPI,
whatever ``horovodrun`` started).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import tensorflow as tf

__all__ = ["Backend", "Horovod", "SingleProcess", "backend_by_name"]

T = TypeVar("T", tf.Tensor, dict[str, tf.Tensor])


@runtime_checkable
class Backend(Protocol):
    """What the TensorFlow trainer needs from a (possibly distributed) execution backend."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool: ...

    def reduce_gradients(self, grads: Sequence[tf.Tensor]) -> list[tf.Tensor]: ...

    def all_reduce_mean(self, value: T) -> T: ...

    def broadcast_variables(self, variables: Sequence[tf.Variable]) -> None: ...

    def barrier(self) -> None: ...


class SingleProcess:
    """One process, no communication: every collective is the identity."""

    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        return True

    def reduce_gradients(self, grads: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        return list(grads)

    def all_reduce_mean(self, value: T) -> T:
        return value

    def broadcast_variables(self, variables: Sequence[tf.Variable]) -> None:
        return None

    def barrier(self) -> None:
        return None


class Horovod:
    """Horovod (``horovod.tensorflow``): call from every rank started by ``horovodrun``.

    Gradients are averaged with one grouped allreduce (eager, outside any XLA function);
    metric dictionaries likewise, key by key in sorted order (the same on every rank).
    """

    def __init__(self) -> None:
        import horovod.tensorflow as hvd  # only jobs of the tensorflow-horovod target need it

        hvd.init()
        self._hvd = hvd
        self.rank = int(hvd.rank())
        self.world_size = int(hvd.size())
        self.local_rank = int(hvd.local_rank())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def reduce_gradients(self, grads: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        if self.world_size == 1:
            return list(grads)
        out = self._hvd.grouped_allreduce(list(grads), op=self._hvd.Average)
        return list(out)

    def all_reduce_mean(self, value: Any) -> Any:
        if self.world_size == 1:
            return value
        if isinstance(value, dict):
            keys = sorted(value)
            reduced = self._hvd.grouped_allreduce([value[k] for k in keys], op=self._hvd.Average)
            return dict(zip(keys, reduced, strict=True))
        return self._hvd.allreduce(value, op=self._hvd.Average)

    def broadcast_variables(self, variables: Sequence[tf.Variable]) -> None:
        if self.world_size > 1 and variables:
            self._hvd.broadcast_variables(list(variables), root_rank=0)

    def barrier(self) -> None:
        if self.world_size > 1:
            self._hvd.allreduce(tf.zeros(()), op=self._hvd.Sum, name="barrier")


def backend_by_name(name: str) -> Backend:
    """``"single"`` (or ``"none"``) → ``SingleProcess``; ``"horovod"`` → ``Horovod``."""
    key = name.lower()
    if key in ("single", "none", "singleprocess"):
        return SingleProcess()
    if key == "horovod":
        return Horovod()
    raise ValueError(f"unknown TensorFlow backend {name!r}; expected 'single' or 'horovod'")
