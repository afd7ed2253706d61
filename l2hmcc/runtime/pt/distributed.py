"""The seam between the trainer and a distributed backend.

The trainer talks to one ``Backend`` object and nothing else distributed: it never imports
``torch.distributed``, DeepSpeed or Horovod. A backend is one small class:

* ``rank``, ``world_size``, ``is_main`` (rank 0 writes checkpoints and logs);
* ``wrap(model, optimizer) -> (model, optimizer)``: e.g. DDP's module wrapper, DeepSpeed's
  engine, Horovod's ``DistributedOptimizer``; ``unwrap(model)`` gives back the plain module (for
  state dicts);
* ``backward_and_step(loss, clip_norm) -> grad norm``: zero the gradients, back-propagate,
  average gradients over ranks (DDP hooks, ``engine.backward``, Horovod's allreduce), clip the
  global gradient norm, take the optimizer step;
* ``all_reduce_mean(tensor or dict of tensors)``: the mean over ranks (metrics);
* ``barrier()``; ``broadcast_parameters(model)`` (rank 0's parameters to every rank, at start).

``SingleProcess`` is the only implementation here; the DDP, DeepSpeed and Horovod ones are in
``backends.py``.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = ["Backend", "SingleProcess", "clip_and_step"]

T = TypeVar("T", Tensor, dict[str, Tensor])


@runtime_checkable
class Backend(Protocol):
    """What the trainer needs from a (possibly distributed) execution backend."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool: ...

    def wrap(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]: ...

    def unwrap(self, model: nn.Module) -> nn.Module: ...

    def backward_and_step(self, loss: Tensor, clip_norm: float | None = None) -> Tensor | None: ...

    def all_reduce_mean(self, value: T) -> T: ...

    def barrier(self) -> None: ...

    def broadcast_parameters(self, model: nn.Module) -> None: ...


def clip_and_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, clip_norm: float | None
) -> Tensor | None:
    """Clip the gradient norm (if ``clip_norm``), step, release the gradients; returns the
    pre-clip norm (or ``None``).

    The gradients are set to ``None`` after the step, not only before the next backward, so
    they hold no memory while the model evaluates or checkpoints between training steps.
    """
    norm = None
    if clip_norm:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm


class SingleProcess:
    """One process, no communication: every collective is the identity."""

    rank = 0
    world_size = 1

    def __init__(self) -> None:
        self._model: nn.Module | None = None
        self._optimizer: torch.optim.Optimizer | None = None

    @property
    def is_main(self) -> bool:
        return True

    def wrap(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        self._model, self._optimizer = model, optimizer
        return model, optimizer

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model

    def backward_and_step(self, loss: Tensor, clip_norm: float | None = None) -> Tensor | None:
        if self._model is None or self._optimizer is None:
            raise RuntimeError("SingleProcess.backward_and_step before wrap(model, optimizer)")
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        return clip_and_step(self._model, self._optimizer, clip_norm)

    def all_reduce_mean(self, value: T) -> T:
        return value

    def barrier(self) -> None:
        return None

    def broadcast_parameters(self, model: nn.Module) -> None:
        return None
