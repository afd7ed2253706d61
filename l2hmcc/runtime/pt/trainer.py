"""Training, evaluation and HMC-baseline loops of L2HMC, with checkpoints and clean stops.

``Trainer`` owns one ``Dynamics`` (networks + step sizes), its optimizer and learning-rate
schedule, the chains (``train.chains`` per rank), a random generator (seeded from
``train.seed`` and the rank), a ``BetaSchedule`` and three ``History`` objects (``common``):
``train``, ``eval`` and ``hmc``, one record per step with per-chain ``[B]`` metrics.

One train step: draw momenta (and directions, and a fresh hot start for the aux term), propose
with the model in train mode, ``loss = l2hmc_loss(...)``, ``backend.backward_and_step`` (clip,
step), the learning-rate schedule step, then the per-chain Metropolis test moves the chains.
With ``train.compile`` the proposal runs through ``torch.compile`` (``Dynamics.compile_proposal``:
the whole trajectory as one graph without networks, else the layer graph shared by all
layers), in training and in evaluation.

Checkpoints (``out_dir/checkpoints``, latest ``keep_checkpoints``) hold the model, optimizer
and schedule states, the step, the RNG states, the chains and the histories; ``resume()``
continues a run so that its history and final parameters equal an uninterrupted run's. A
``StopFlag`` (SIGTERM/SIGUSR1) makes ``train()`` write a checkpoint and return early.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..common.config import BetaSchedule, TrainConfig, lr_factor
from ..common.history import History
from ..common.loop import (
    CHECKPOINT_FORMAT,
    TrainerLoop,
    history_from_state,
    history_state,
)
from . import hmc, lattice
from .checkpoint import SUFFIX, StopFlag, load_checkpoint, save_checkpoint
from .distributed import Backend, SingleProcess
from .dynamics import AUTOCAST_DEVICES, Dynamics, DynamicsConfig, Proposal
from .groups import GaugeGroup, group_by_name
from .loss import LossConfig, l2hmc_loss
from .networks import NetworkConfig

__all__ = ["CHECKPOINT_FORMAT", "BetaSchedule", "TrainConfig", "Trainer"]


def _optimizer(config: TrainConfig, model: Dynamics, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer over the trainable parameters; the step sizes ``log ε_k`` (and the Fourier
    filter's ``log m²_k``, ``dynamics.fourier``) form their own group (first) with learning rate
    ``lr × step_size_lr_factor``. Adam/AdamW use the fused kernel on CPU and CUDA (one pass over
    the parameters instead of a handful: the step over 10⁷–10⁸ parameters is memory bound)."""
    own = ("log_step_size", "kinetic_log_m2")
    eps = [p for n, p in model.named_parameters() if p.requires_grad and n in own]
    nets = [p for n, p in model.named_parameters() if p.requires_grad and n not in own]
    groups: list[dict[str, Any]] = []
    if eps:
        groups.append({"params": eps, "lr": config.lr * config.step_size_lr_factor})
    if nets:
        groups.append({"params": nets, "lr": config.lr})
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    fused = device.type in ("cpu", "cuda") or None
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay, fused=fused)


class Trainer(TrainerLoop):
    """Train, evaluate and compare L2HMC with tuned HMC on one lattice (see the module docstring).

    ``group`` a ``GaugeGroup`` or its name; ``beta`` a number or a ``BetaSchedule``; ``network``
    ``None`` trains step sizes only. ``out_dir`` (optional) receives ``checkpoints/``.
    ``backend`` defaults to ``SingleProcess()``; ``log`` receives one line per ``log_every``
    steps on the main rank (default ``print``); ``on_step(phase, step, total)`` (optional) is
    called on the main rank after every train/eval/hmc step (progress bars).
    The loops and the checkpoint bookkeeping are ``common.loop.TrainerLoop``'s.
    """

    model: Dynamics
    group: GaugeGroup
    generator: torch.Generator
    x: Tensor
    checkpoint_suffix = SUFFIX
    hmc_module = hmc
    lattice_module = lattice

    def __init__(
        self,
        group: GaugeGroup | str,
        lattice_shape: tuple[int, ...] | list[int],
        beta: float | BetaSchedule,
        dynamics: DynamicsConfig,
        network: NetworkConfig | None,
        loss: LossConfig,
        train: TrainConfig,
        *,
        out_dir: str | Path | None = None,
        backend: Backend | None = None,
        device: torch.device | str | None = None,
        log: Callable[[str], None] | None = print,
        on_step: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.group = group_by_name(group) if isinstance(group, str) else group
        self.lattice_shape = tuple(int(n) for n in lattice_shape)
        self.beta = beta if isinstance(beta, BetaSchedule) else BetaSchedule(start=float(beta))
        self.dynamics_config, self.network_config = dynamics, network
        self.loss_config, self.config = loss, train
        self.device = torch.device(device if device is not None else "cpu")
        self.dtype: torch.dtype = getattr(torch, train.dtype_name)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.backend: Backend = backend if backend is not None else SingleProcess()
        self._log = log if self.backend.is_main else None
        self._on_step = on_step if self.backend.is_main else None
        if loss.charge > 0 and self.group.name != "U1" and len(self.lattice_shape) != 4:
            raise ValueError("loss.charge for SU(N) needs a 4D lattice (clover charge)")

        net_precision = train.network_precision
        if net_precision in ("bf16", "fp16") and self.device.type not in AUTOCAST_DEVICES:
            warnings.warn(
                f"train.network_precision={net_precision!r} applies on CUDA and XPU only; "
                f"networks run in {train.precision} on {self.device.type}",
                RuntimeWarning,
                stacklevel=2,
            )
        self.model = Dynamics(
            self.group,
            self.lattice_shape,
            dynamics,
            network,
            dtype=self.dtype,
            device=self.device,
            network_precision=net_precision,
        )
        optimizer = _optimizer(train, self.model, self.device)
        self.backend.broadcast_parameters(self.model)
        self.wrapped, self.optimizer = self.backend.wrap(self.model, optimizer)
        self._lr_at = lr_factor(train)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_at)

        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(train.seed + 1_000_003 * self.backend.rank)
        self.x = self.group.random(
            train.chains,
            self.lattice_shape,
            dtype=self.dtype,
            device=self.device,
            generator=self.generator,
        )
        self.step = 0
        self.histories = {"train": History(), "eval": History(), "hmc": History()}
        self.stop_flag = StopFlag()

        if train.compile:
            self.model.compile_proposal()

    # -- one step -----------------------------------------------------------------------------
    def _beta_tensor(self, beta: float) -> Tensor:
        return torch.tensor(beta, dtype=self.dtype, device=self.device)

    def _loss_and_proposal(
        self,
        x: Tensor,
        v: Tensor,
        beta: Tensor,
        directions: Tensor | None,
        x_aux: Tensor | None,
        v_aux: Tensor | None,
        directions_aux: Tensor | None,
    ) -> tuple[Tensor, dict[str, Tensor], Proposal]:
        """Proposal of the chains (and of fresh samples for the aux term, in the same batch:
        one forward call, as DDP wants) and the loss."""
        b = x.shape[0]
        if x_aux is not None and v_aux is not None:
            xx, vv = torch.cat([x, x_aux]), torch.cat([v, v_aux])
            dd = None
            if directions is not None and directions_aux is not None:
                dd = torch.cat([directions, directions_aux])
        else:
            xx, vv, dd = x, v, directions
        prop: Proposal = self.wrapped(xx, vv, beta, dd)
        acc = prop.acceptance
        aux = None
        if x_aux is not None:
            aux = (x_aux, prop.x[b:], acc[b:])
            prop = Proposal(*(t[:b] for t in prop))
            acc = acc[:b]
        loss, parts = l2hmc_loss(self.loss_config, x, prop.x, acc, aux=aux)
        return loss, parts, prop

    def train_step(self, beta: float) -> dict[str, Tensor]:
        """One optimisation step on the chains; returns its metrics (``[B]`` and scalars)."""
        self.model.train()
        x = self.x
        v, d, u = self.model.draw(x, self.generator)
        x_aux = v_aux = d_aux = None
        if self.loss_config.aux_weight > 0:
            x_aux = self.group.random(
                x.shape[0],
                self.lattice_shape,
                dtype=self.dtype,
                device=self.device,
                generator=self.generator,
            )
            v_aux, d_aux, _ = self.model.draw(x_aux, self.generator)
        loss, parts, prop = self._loss_and_proposal(
            x, v, self._beta_tensor(beta), d, x_aux, v_aux, d_aux
        )
        grad_norm = self.backend.backward_and_step(loss, self.config.clip_norm or None)
        self.scheduler.step()
        x_new, accepted = self.model.accept(x, prop, u)
        metrics = self.model.metrics(x, x_new, prop, accepted)
        metrics.update(parts)
        metrics["beta"] = torch.tensor(beta)
        # the networks' rate (the step sizes' is step_size_lr_factor times it)
        metrics["lr"] = torch.tensor(self.config.lr * self._lr_at(self.scheduler.last_epoch))
        if grad_norm is not None:
            metrics["grad_norm"] = grad_norm.detach()
        self.x = x_new.detach()
        return metrics

    # -- loops (``train()`` is ``TrainerLoop``'s) ----------------------------------------------
    def evaluate(self, steps: int, beta: float | None = None, x: Tensor | None = None) -> History:
        """``steps`` L2HMC trajectories with the trained networks (eval mode, no gradients),
        starting from the training chains (or ``x``); returns the ``eval`` history."""
        bt = self._beta_tensor(self._final_beta(beta))
        self.model.eval()

        def step(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            v, d, u = self.model.draw(x, self.generator)
            with torch.no_grad():
                prop = self.model.propose(x, v, bt, d)
            x_new, accepted = self.model.accept(x, prop, u)
            return x_new, self.model.metrics(x, x_new, prop, accepted)

        return self._sample("eval", steps, (self.x if x is None else x).clone(), step)

    def _hmc_integrator(self, fourier: float = 0.0) -> Any:
        if fourier > 0:
            return hmc.fourier_leapfrog(
                fourier,
                self.lattice_shape,
                dtype=self.dtype,
                device=self.device,
                compiled=self.config.compile,
            )
        return hmc.compile_leapfrog() if self.config.compile else None

    def _own_chains(self, x: Tensor) -> Tensor:
        return x.clone()

    # -- logging ------------------------------------------------------------------------------
    def _reduce(self, metrics: dict[str, Tensor]) -> dict[str, Any]:
        """Per-chain metrics stay per chain (this rank's chains); scalars are averaged over ranks."""
        scalars = {k: v for k, v in metrics.items() if v.dim() == 0}
        if self.backend.world_size > 1 and scalars:
            scalars = self.backend.all_reduce_mean(scalars)
        return {**metrics, **scalars}

    def _scalar(self, value: float) -> Tensor:
        return torch.tensor(value)

    def _flag(self, value: float) -> Tensor:
        return torch.tensor(value, device=self.device)

    def _mean(self, value: Tensor) -> float:
        return float(value.float().mean())

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "model": self.backend.unwrap(self.wrapped).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {
                "generator": self.generator.get_state(),
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
            },
            "chains": self.x,
            "histories": {k: history_state(h) for k, h in self.histories.items()},
            "beta_schedule": asdict(self.beta),
            "configs": self._configs_state(),
            "world_size": self.backend.world_size,
            "rank": self.backend.rank,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_format(state)
        self.backend.unwrap(self.wrapped).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["rng"]["generator"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        self.x = state["chains"].to(self.device)
        self.histories = {k: history_from_state(h) for k, h in state["histories"].items()}
        self.step = int(state["step"])

    def _write_checkpoint(self, directory: Path, state: dict[str, Any]) -> Path:
        return save_checkpoint(directory, self.step, state, keep=self.config.keep_checkpoints)

    def _read_checkpoint(self, path: Path) -> dict[str, Any]:
        return load_checkpoint(path, map_location=self.device)
