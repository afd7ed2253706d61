"""The loops and checkpoint bookkeeping both frameworks' trainers share (stdlib + numpy).

``TrainerLoop`` is the base class of ``pt.trainer.Trainer`` and ``tf.trainer.Trainer``: the
logic that is the same in both, written once.

* ``train()``: the β of each step from the schedule, the step timed (``time_s``), recorded in
  the ``train`` history, progress and a log line every ``log_every`` steps, the stop flag
  agreed by all ranks, a checkpoint every ``checkpoint_every`` steps, on a stop and at the end;
* ``_sample(...)``: the timed loop of evaluation;
* ``run_hmc(...)``: the HMC baseline, ε tuned or given, with the charge changes ``dQ``, the
  step size and the number of leapfrog steps (the framework's ``hmc`` and ``lattice`` modules
  do the work: ``hmc_module``, ``lattice_module``);
* ``thermalize(...)``: HMC trajectories in windows until the plaquette stops drifting (at
  most a cap), with a record of what was done;
* the log line; ``checkpoint_dir``, ``save_checkpoint``, ``resume``; histories as plain arrays
  in a checkpoint (``history_state``, ``history_from_state``).

A framework's ``Trainer`` sets the attributes annotated below in its ``__init__`` and supplies
the tensor work: ``train_step(beta)``, ``_reduce(metrics)`` (scalars averaged over ranks),
``_scalar(value)`` (a host scalar tensor: ``time_s``, ``step_size``, ``n_steps``),
``_flag(value)`` (the stop flag as a tensor the ranks average), ``_mean(value)`` (a metric's
mean, for the log line), ``_beta_tensor(beta)``, ``_hmc_integrator(fourier)`` (the compiled HMC
integrator or ``None``), ``state_dict()``/``load_state_dict(state)`` and the checkpoint files
(``checkpoint_suffix``, ``_write_checkpoint``, ``_read_checkpoint``).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from . import equilibrium
from .checkpoint import StopFlag, latest_checkpoint
from .config import BetaSchedule, DynamicsConfig, LossConfig, NetworkConfig, TrainConfig
from .history import History, to_numpy

__all__ = [
    "CHARGE_CHANGES",
    "CHECKPOINT_FORMAT",
    "TrainerLoop",
    "history_from_state",
    "history_state",
]

#: Version of a trainer checkpoint's layout (``state_dict``); both frameworks write it.
CHECKPOINT_FORMAT = 1

#: ``(charge metric, its change)``: the HMC baseline records ``|Q_t − Q_{t−1}|`` per chain.
CHARGE_CHANGES = (("charge", "dQ"), ("sin_charge", "dQ_sin"))

#: ``step(x) -> (x, metrics)``: one trajectory of the chains ``x``.
StepFn = Callable[[Any], tuple[Any, dict[str, Any]]]


def history_state(h: History) -> dict[str, Any]:
    """A history as plain arrays for a checkpoint: ``values[key]`` and ``steps[key]``."""
    return {"values": h.as_arrays(), "steps": {k: h.steps(k) for k in h}}


def history_from_state(state: dict[str, Any]) -> History:
    """The history ``history_state`` saved (a key with no values is absent from ``values``)."""
    h = History()
    records: dict[int, dict[str, Any]] = {}
    for key, values in state.get("values", {}).items():
        for s, v in zip(state["steps"][key], values, strict=True):
            records.setdefault(int(s), {})[key] = v
    for s in sorted(records):
        h.append(records[s], step=s)
    return h


class TrainerLoop(ABC):
    """The framework-neutral part of a ``Trainer`` (see the module docstring)."""

    config: TrainConfig
    beta: BetaSchedule
    dynamics_config: DynamicsConfig
    network_config: NetworkConfig | None
    loss_config: LossConfig
    out_dir: Path | None
    backend: Any  #: the framework's ``distributed.Backend``
    step: int
    histories: dict[str, History]
    stop_flag: StopFlag
    _log: Callable[[str], None] | None
    _on_step: Callable[[str, int, int], None] | None

    model: Any  #: the framework's ``Dynamics``
    group: Any  #: the framework's ``GaugeGroup``
    generator: Any  #: the framework's random generator
    x: Any  #: the chains

    #: File name suffix of the framework's checkpoints (``.pt``, ``.npz``).
    checkpoint_suffix: str
    #: The framework's ``hmc`` and ``lattice`` modules (same functions in ``pt/`` and ``tf/``).
    hmc_module: ModuleType
    lattice_module: ModuleType

    # -- what a framework supplies ------------------------------------------------------------
    @abstractmethod
    def train_step(self, beta: float) -> dict[str, Any]:
        """One optimisation step on the chains; its metrics (``[B]`` and scalars)."""

    @abstractmethod
    def _reduce(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Per-chain metrics as they are, scalars averaged over ranks."""

    @abstractmethod
    def _beta_tensor(self, beta: float) -> Any:
        """``beta`` as a scalar tensor of the links' real dtype."""

    @abstractmethod
    def _hmc_integrator(self, fourier: float = 0.0) -> Any:
        """The compiled leapfrog integrator of the HMC baseline, or ``None`` (eager);
        ``fourier > 0``: the Fourier-accelerated one with that mass² (``hmc.fourier_leapfrog``,
        compiled or eager as the other)."""

    def _own_chains(self, x: Any) -> Any:
        """``x`` as chains the HMC baseline may update in place (immutable tensors: ``x``)."""
        return x

    @abstractmethod
    def _scalar(self, value: float) -> Any:
        """``value`` as a scalar tensor on the host (a metric)."""

    @abstractmethod
    def _flag(self, value: float) -> Any:
        """``value`` as a scalar tensor the backend can average over ranks."""

    @abstractmethod
    def _mean(self, value: Any) -> float:
        """The mean of a metric (over its chains)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def _write_checkpoint(self, directory: Path, state: dict[str, Any]) -> Path:
        """Write ``state`` as this step's checkpoint in ``directory``, keep the latest few."""

    @abstractmethod
    def _read_checkpoint(self, path: Path) -> dict[str, Any]:
        """The state a checkpoint file holds."""

    # -- loops --------------------------------------------------------------------------------
    def train(self, steps: int | None = None) -> History:
        """Train until ``train.total_steps`` (or ``steps`` more); checkpoints; returns the
        history.  Stops early, after writing a checkpoint, when ``stop_flag`` is set
        (SIGTERM/SIGUSR1)."""
        total = self.config.total_steps
        end = total if steps is None else min(total, self.step + steps)
        hist = self.histories["train"]
        self.stop_flag.install()
        t0, s0 = time.perf_counter(), self.step
        try:
            while self.step < end:
                beta = self.beta.at(self.step, total)
                t_step = time.perf_counter()
                metrics = self.train_step(beta)
                metrics["time_s"] = self._scalar(time.perf_counter() - t_step)
                hist.append(self._reduce(metrics), step=self.step)
                self.step += 1
                self._progress("train", self.step, total, metrics, t0, s0)
                stop = self._stop_requested()
                every = self.config.checkpoint_every
                if stop or (every and self.step % every == 0 and self.step < end):
                    self.save_checkpoint()
                if stop:
                    if self._log:
                        self._log(f"stopped by signal {self.stop_flag.signal} at step {self.step}")
                    return hist
        finally:
            self.stop_flag.uninstall()
        self.save_checkpoint()
        return hist

    def _stop_requested(self) -> bool:
        """The stop flag, decided by all ranks together (any rank's signal stops every rank at
        the same step, so no rank waits in a collective of a step the others skip)."""
        stop = self.stop_flag.is_set()
        if self.backend.world_size > 1:
            stop = bool(self.backend.all_reduce_mean(self._flag(1.0 if stop else 0.0)) > 0)
        return stop

    def _final_beta(self, beta: float | None) -> float:
        """``beta``, or the schedule's last β when it is ``None``."""
        return self.beta.final(self.config.total_steps) if beta is None else beta

    def _sample(self, phase: str, steps: int, x: Any, step: StepFn) -> History:
        """``steps`` times ``x, metrics = step(x)``, timed (``time_s``) and recorded in the
        ``phase`` history, with progress and log lines; returns the history."""
        hist = self.histories[phase]
        t0 = time.perf_counter()
        for i in range(steps):
            t_step = time.perf_counter()
            x, metrics = step(x)
            metrics["time_s"] = self._scalar(time.perf_counter() - t_step)
            hist.append(self._reduce(metrics))
            self._progress(phase, i + 1, steps, metrics, t0, 0)
        return hist

    def run_hmc(
        self,
        steps: int,
        beta: float | None = None,
        *,
        step_size: float | None = None,
        target_acceptance: float = 0.75,
        traj_length: float = 1.0,
        x: Any = None,
        fourier: float = 0.0,
    ) -> History:
        """HMC baseline at trajectory length ``traj_length``: ``step_size=None`` tunes ε with
        ``hmc.tune_step_size`` to ``target_acceptance`` (the tuning trajectories thermalise);
        a number runs ``n = ceil(τ/ε)`` steps of ``τ/n``.  Then ``steps`` trajectories, timed
        and recorded in the ``hmc`` history with the charge changes ``|Q_t − Q_{t−1}|``
        (``CHARGE_CHANGES``), ``step_size`` and ``n_steps``; returns the history.
        ``fourier > 0``: Fourier-accelerated HMC with that fixed mass² (tuning included)."""
        hmc, lattice = self.hmc_module, self.lattice_module
        bt = self._beta_tensor(self._final_beta(beta))
        x = self._own_chains(self.x if x is None else x)
        integrator = self._hmc_integrator(fourier)
        if step_size is None:
            tuned = hmc.tune_step_size(
                x,
                bt,
                target=target_acceptance,
                traj_length=traj_length,
                generator=self.generator,
                integrator=integrator,
            )
            eps, n_steps, x = tuned.eps, tuned.n_steps, tuned.links
            if self._log:
                self._log(
                    f"hmc: tuned eps={eps:.4g} n_steps={n_steps} acceptance={tuned.acceptance:.3f}"
                )
        else:
            n_steps = hmc.steps_for_length(step_size, traj_length)
            eps = traj_length / n_steps
        previous: dict[str, Any] = {}  # charges of the previous configuration
        if self.model.has_charge:
            previous["charge"] = lattice.topological_charge(x)
        if self.group.is_abelian:
            previous["sin_charge"] = lattice.sin_charge(x)
        hist = self.histories["hmc"]
        for i in range(steps):
            t_step = time.perf_counter()
            x, metrics = hmc.hmc_step(x, bt, eps, n_steps, self.generator, integrator=integrator)
            metrics["time_s"] = self._scalar(time.perf_counter() - t_step)
            for key, dkey in CHARGE_CHANGES:
                if key in metrics:
                    metrics[dkey] = abs(metrics[key] - previous[key])
                    previous[key] = metrics[key]
            metrics["step_size"] = self._scalar(eps)
            metrics["n_steps"] = self._scalar(n_steps)
            hist.append(self._reduce(metrics))
            if self._on_step:
                self._on_step("hmc", i + 1, steps)
        return hist

    def thermalize(
        self,
        x: Any,
        beta: float,
        *,
        max_trajectories: int,
        window: int,
        step_size: float | None = None,
        target_acceptance: float = 0.8,
        traj_length: float = 1.0,
    ) -> tuple[Any, dict[str, Any]]:
        """HMC trajectories of the chains ``x`` at ``beta`` until they are in equilibrium there:
        ε fixed or tuned first (``step_size=None``: ``hmc.tune_step_size``, whose trajectories
        count), then windows of ``window`` trajectories until the mean plaquette of a window
        agrees with the previous one (``equilibrium.window_drift`` below
        ``equilibrium.THERMALIZED_SIGMA``, every rank's chains agreeing), at most
        ``max_trajectories`` in all. Returns the chains and a record for ``run.json``: β, the
        trajectories, ε and the leapfrog steps, the mean acceptance, the first and last
        window's mean plaquette, the last ``z`` and whether the drift test passed
        (``converged``; False when the cap stopped it)."""
        hmc = self.hmc_module
        bt = self._beta_tensor(beta)
        x = self._own_chains(x)
        integrator = self._hmc_integrator()
        done = 0
        if step_size is None:
            n_iter = max(1, min(40, max_trajectories // 2))
            n_check = max(1, min(10, max_trajectories // 10))
            tuned = hmc.tune_step_size(
                x,
                bt,
                target=target_acceptance,
                traj_length=traj_length,
                n_iter=n_iter,
                n_check=n_check,
                generator=self.generator,
                integrator=integrator,
            )
            eps, n_steps, x = tuned.eps, tuned.n_steps, tuned.links
            done += n_iter + n_check
        else:
            n_steps = hmc.steps_for_length(step_size, traj_length)
            eps = traj_length / n_steps
        windows: list[Any] = []
        accept: list[float] = []
        z: float | None = None
        converged = False
        while done + window <= max_trajectories:
            plaquettes = []
            for _ in range(window):
                x, metrics = hmc.hmc_step(
                    x, bt, eps, n_steps, self.generator, measure_charge=False,
                    integrator=integrator,
                )  # fmt: skip
                plaquettes.append(to_numpy(metrics["plaquette"]))
                accept.append(float(np.mean(to_numpy(metrics["accept_prob"]))))
            done += window
            windows.append(np.stack(plaquettes))
            if len(windows) >= 2:
                z = equilibrium.window_drift(windows[-2], windows[-1])
                settled = z is not None and z < equilibrium.THERMALIZED_SIGMA
                converged = self._all_ranks(settled)
                if converged:
                    break
        record = {
            "beta": float(beta),
            "trajectories": done,
            "max_trajectories": max_trajectories,
            "window": window,
            "step_size": float(eps),
            "leapfrog_steps": int(n_steps),
            "tuned": step_size is None,
            "acceptance": float(np.mean(accept)) if accept else None,
            "plaquette_first_window": float(np.mean(windows[0])) if windows else None,
            "plaquette_last_window": float(np.mean(windows[-1])) if windows else None,
            "drift_z": z if z is not None and math.isfinite(z) else None,
            "converged": converged,
        }
        return x, record

    def _all_ranks(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every rank (each rank decides on its own chains)."""
        if self.backend.world_size == 1:
            return flag
        return not bool(self.backend.all_reduce_mean(self._flag(0.0 if flag else 1.0)) > 0)

    # -- logging ------------------------------------------------------------------------------
    def _progress(
        self, phase: str, done: int, total: int, metrics: dict[str, Any], t0: float, done0: int
    ) -> None:
        """Progress after a step; a log line every ``log_every`` steps, with the rate since
        ``t0`` (when ``done0`` steps were done)."""
        if self._on_step:
            self._on_step(phase, done, total)
        if self._log and self.config.log_every and done % self.config.log_every == 0:
            rate = (done - done0) / max(time.perf_counter() - t0, 1e-9)
            self._log(self._line(phase, done, total, metrics, rate))

    def _line(self, kind: str, step: int, total: int, m: dict[str, Any], rate: float) -> str:
        def mean(key: str) -> str:
            return f"{self._mean(m[key]):.4g}" if key in m else "-"

        eps = " ".join(f"{e:.3g}" for e in to_numpy(m["step_sizes"]).tolist())
        return (
            f"{kind} {step}/{total} beta={mean('beta')} loss={mean('loss')} "
            f"acc={mean('accept_prob')} dQ={mean('dQ')} plaq={mean('plaquette')} "
            f"eps=[{eps}] {rate:.3g} steps/s"
        )

    # -- checkpoints --------------------------------------------------------------------------
    def _check_format(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}"
            )

    def _configs_state(self) -> dict[str, Any]:
        """The sampler's configs as plain dicts, for a checkpoint."""
        network = self.network_config
        return {
            "dynamics": asdict(self.dynamics_config),
            "network": None if network is None else asdict(network),
            "loss": asdict(self.loss_config),
            "train": asdict(self.config),
        }

    def checkpoint_dir(self) -> Path | None:
        """``out_dir/checkpoints`` (``…/rank<r>`` with several ranks); ``None`` without
        ``out_dir``."""
        if self.out_dir is None:
            return None
        rank = self.backend.rank
        return self.out_dir / "checkpoints" / (f"rank{rank}" if self.backend.world_size > 1 else "")

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of this rank (every rank keeps its own chains and RNG state)."""
        directory = self.checkpoint_dir()
        if directory is None:
            return None
        return self._write_checkpoint(directory, self.state_dict())

    def resume(self, path: str | Path | None = None) -> bool:
        """Load ``path`` or the latest checkpoint in ``checkpoint_dir()``; False if none."""
        if path is None:
            directory = self.checkpoint_dir()
            found = (
                latest_checkpoint(directory, self.checkpoint_suffix)
                if directory is not None
                else None
            )
            if found is None:
                return False
            path = found
        self.load_state_dict(self._read_checkpoint(Path(path)))
        return True
