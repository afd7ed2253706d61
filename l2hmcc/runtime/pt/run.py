"""The PyTorch job driver: one ``Run`` per process, used by every generated ``train.py``.

``Run`` is ``common.driver.JobDriver`` (the phases, the outputs, ``run.json``; see there) with
PyTorch's tensors: ``torch.manual_seed``, chains cloned or repeated with torch, cold starts on
the run's device, TensorBoard through ``torch.utils.tensorboard``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from ..common.driver import STOPPED_EXIT_CODE, JobDriver
from ..common.history import History
from ..common.run import Lattice

__all__ = ["STOPPED_EXIT_CODE", "Run"]


class Run(JobDriver):
    """One process's run of a generated PyTorch job (``common.driver.JobDriver``)."""

    version_modules = ("torch", "deepspeed", "horovod")
    distributed_targets = "pytorch-ddp, pytorch-deepspeed, pytorch-horovod"

    device: torch.device

    def seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def trainer_options(self) -> dict[str, Any]:
        return {"device": self.device}

    def cold_start(self, trainer: Any, lattice: Lattice) -> torch.Tensor:
        cold: torch.Tensor = trainer.group.cold(
            trainer.config.chains, lattice.shape, dtype=trainer.dtype, device=self.device
        )
        return cold

    def chains_like(self, x: torch.Tensor, chains: int) -> torch.Tensor:
        if chains == x.shape[0]:
            return x.clone()
        reps = math.ceil(chains / x.shape[0])
        return x.repeat((reps,) + (1,) * (x.dim() - 1))[:chains].clone()

    def step_sizes(self, trainer: Any) -> list[float]:
        return [float(e) for e in trainer.model.step_sizes().detach().cpu()]

    def tensorboard(self, histories: dict[str, History]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            warnings.warn(f"--tensorboard: {exc}; no events written", RuntimeWarning, stacklevel=2)
            return
        with SummaryWriter(str(self.out / "tensorboard")) as writer:
            for tag, step, value in self.scalars(histories):
                writer.add_scalar(tag, value, step)
