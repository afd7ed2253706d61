"""The job driver both frameworks share: one ``JobDriver`` per process (stdlib + numpy).

A generated ``train.py`` builds the configs, the backend and the trainer, then hands them to
its framework's ``Run`` (``pt/run.py``, ``tf/run.py``), a ``JobDriver`` that fills in the few
framework operations (seeding, chain tensors, TensorBoard). The calls read like the experiment:

* ``Run(experiment, args, env, backend, device)``: seeds, output directory, ``run.json``
  (status ``running``), the reporter;
* ``run.train(trainer, lattice)``: ``--resume`` from the latest checkpoint (or a cold start),
  else the chains thermalized at the first β, then ``trainer.train()`` (checkpoints every N
  steps and on SIGTERM/SIGUSR1); False when a signal stopped it;
* ``run.evaluate(trainer, evaluate)``: the trained sampler, ``evaluate.chains`` chains per rank
  started from the trained chains thermalized at the final β; with ``evaluate.ablation`` (or
  ``--ablation``) then the ablation: the same spec without networks (only the step sizes ε_k
  train, same loss, β schedule and steps) trained from its own start and evaluated the same
  way, from the same thermalized chains, to show what the networks add;
* ``run.hmc(trainer, hmc)``: the generic-HMC baseline on the same chains budget and from the
  same thermalized chains, its step size fixed or tuned first (not timed);
* ``run.finish(trainer)``: per-chain metrics of every rank gathered to rank 0, which writes
  ``history/*.npz``, ``summary.json``, ``plots/*.png``, TensorBoard events and ``run.json``;
  ``run.stopped(trainer)`` instead after a signal.

Thermalization (``Run(..., thermalize=Thermalize(...))``; none without it) runs HMC
trajectories until the plaquette stops drifting, at most a cap (``TrainerLoop.thermalize``);
each one is logged and recorded in ``run.json``. Whatever thermalization did, every measured
phase's record is checked again (``equilibrium.check``: burn-in from the data, drift between
the halves of what is kept) and ``summary.json`` says per sampler whether it is equilibrated.

Every file is written atomically and only by rank 0, except each rank's own checkpoints.

What the driver needs of a trainer (both frameworks' ``Trainer`` have it): ``config``
(``TrainConfig``), ``beta`` (``BetaSchedule``), ``group``, ``lattice_shape``, ``dtype``,
``step``, ``x``, ``histories``, ``stop_flag``, ``model.step_sizes()``, ``train()``,
``evaluate(steps, beta=, x=)``, ``run_hmc(...)``, ``resume()``, ``checkpoint_dir()``. Of a
backend: ``rank``, ``world_size``, ``comm``, ``gather_objects``, ``all_gather_chains``,
``after_resume``, ``barrier``, ``close``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from .config import TrainConfig
from .history import History, to_numpy
from .launch import LaunchEnv
from .plots import plot_history
from .run import (
    PER_CHAIN_KEYS,
    Evaluate,
    Experiment,
    Hmc,
    Lattice,
    Reporter,
    Thermalize,
    build_summary,
    chain_record,
    fixed_step_size,
    format_report,
    host_name,
    run_record,
    sampler_summary,
    utc_now,
    versions,
    with_costs,
    write_json,
)

__all__ = ["STOPPED_EXIT_CODE", "JobDriver", "chain_seed"]

#: Exit status of a run stopped by SIGTERM/SIGUSR1 after its checkpoint (128 + SIGTERM).
STOPPED_EXIT_CODE = 128 + int(signal.SIGTERM)


def _finite(x: Any) -> float | None:
    f = float(x)
    return f if math.isfinite(f) else None


def chain_seed(seed: int, rank: int) -> int:
    """The trainer's chain generator seed on ``rank`` (both trainers: seed + 1000003 · rank)."""
    return seed + 1_000_003 * rank


def ablation_trainer(trainer: Any, **options: Any) -> Any:
    """The ablation of ``trainer``: a fresh trainer of the same class with the same group,
    lattice, β schedule, dynamics (step sizes and any Fourier masses, trained again), loss and
    training config, and no networks. ``options``: the trainer's keyword options (backend,
    log, hooks)."""
    return type(trainer)(
        trainer.group,
        trainer.lattice_shape,
        trainer.beta,
        trainer.dynamics_config,
        None,
        trainer.loss_config,
        trainer.config,
        **options,
    )


class JobDriver(ABC):
    """One process's run of a generated job (see the module docstring); a framework's ``Run``
    implements the abstract methods and sets the class attributes."""

    #: Modules whose versions ``run.json`` records (when imported by the end of the run).
    version_modules: tuple[str, ...] = ()
    #: The framework's distributed targets, named when a single-process job gets several ranks.
    distributed_targets: str = ""

    def __init__(
        self,
        experiment: Experiment,
        args: argparse.Namespace,
        env: LaunchEnv,
        backend: Any,
        device: Any,
        *,
        thermalize: Thermalize | None = None,
    ) -> None:
        self.experiment = experiment
        self.thermalize_config = thermalize
        if thermalize is not None and getattr(args, "thermalize_max", None) is not None:
            self.thermalize_config = dataclasses.replace(
                thermalize, max_trajectories=args.thermalize_max
            )
        self.thermalizations: list[dict[str, Any]] = []
        self._measure_x: Any = None
        #: ε tuned by a thermalization, by β: the next one at that β reuses it
        self._tuned_eps: dict[float, float] = {}
        self.args = args
        self.env = env
        self.backend = backend
        self.device = device
        self.rank: int = backend.rank
        self.world_size: int = backend.world_size
        self.is_main = self.rank == 0
        if env.world_size != self.world_size:
            raise SystemExit(
                f"train.py: the launcher started {env.world_size} processes but target "
                f"{experiment.target} runs {self.world_size}; compile the spec for a distributed"
                f" target ({self.distributed_targets}) to run several"
            )
        self.out: Path = Path(args.out).resolve()
        self.reporter = Reporter(enabled=self.is_main, mode=args.progress)
        self.started_at = utc_now()
        self.resumed_from: int | None = None
        self.hosts: list[str] = [str(h) for h in backend.gather_objects(host_name())]
        self.beta = 0.0
        self._times: dict[str, float] = {}
        self._eval_chains = 0
        self._hmc_chains = 0
        self._hmc_tuned = False
        self._hmc_fourier = 0.0
        self._lattice: Lattice | None = None
        self._ablation: Any = None
        # Same network initialisation on every rank (the backends broadcast it anyway); the
        # chains get per-rank generators from the trainer.
        np.random.seed(experiment.seed % 2**32)
        self.seed(experiment.seed)
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        # A job that continues itself (job.pbs with `continue = N`) records its chain.
        self.chain = chain_record(self.out / "run.json", os.environ)
        if getattr(args, "resume", False):
            # a resumed run keeps the thermalizations of the runs before it, and their tuned ε
            # (every rank takes rank 0's, so that all ranks run the same trajectories)
            previous = backend.gather_objects(self._previous_thermalizations())[0]
            self.thermalizations = list(previous)
            self._tuned_eps = {r["beta"]: r["step_size"] for r in previous if r.get("tuned")}
        self._status = ""
        self._write_run("running")
        if self.is_main:
            # An exception or sys.exit before the end leaves `failed` behind, not `running`
            # (a killed process cannot, and stays `running`).
            atexit.register(self._record_failure)

    # -- what a framework provides ---------------------------------------------------------------
    @abstractmethod
    def seed(self, seed: int) -> None:
        """Seed the framework's global generator (network initialisation)."""

    @abstractmethod
    def cold_start(self, trainer: Any, lattice: Lattice) -> Any:
        """``trainer.config.chains`` cold (identity) configurations."""

    @abstractmethod
    def chains_like(self, x: Any, chains: int) -> Any:
        """``chains`` chains from the trained ones ``x`` (repeated and cut when the counts
        differ), as a new tensor."""

    @abstractmethod
    def step_sizes(self, trainer: Any) -> list[float]:
        """The trained ``ε_k`` of every leapfrog layer."""

    @staticmethod
    def fourier_masses(trainer: Any) -> list[float] | None:
        """The learned mass² ``m²_k`` of every layer's Fourier filter (``dynamics.fourier``),
        or ``None`` without the filter."""
        log_m2 = getattr(trainer.model, "kinetic_log_m2", None)
        if log_m2 is None:
            return None
        return [float(m) for m in np.exp(to_numpy(log_m2))]

    @abstractmethod
    def tensorboard(self, histories: dict[str, History]) -> None:
        """Write the histories as TensorBoard scalars to ``out/tensorboard``."""

    def device_name(self) -> str:
        """The device for ``run.json``."""
        return str(self.device)

    def trainer_options(self) -> dict[str, Any]:
        """Keyword arguments of the framework's ``Trainer`` beyond the configs, backend and
        hooks (the ablation's trainer is built with them)."""
        return {}

    # -- configuration ---------------------------------------------------------------------------
    def train_config(self, train: TrainConfig) -> TrainConfig:
        """``train`` with the command line's overrides (steps, compile, intervals)."""
        a = self.args
        changes: dict[str, Any] = {}
        if a.train_steps is not None:
            changes.update(steps=a.train_steps, eras=0, steps_per_era=0)
        if a.compile is not None:
            changes["compile"] = a.compile
        if a.log_every is not None:
            changes["log_every"] = a.log_every
        if a.checkpoint_every is not None:
            changes["checkpoint_every"] = a.checkpoint_every
        config = dataclasses.replace(train, **changes) if changes else train
        self.reporter.log_every = config.log_every
        return config

    def log(self, line: str) -> None:
        """The trainer's ``log``: one line every ``log_every`` steps (main rank)."""
        self.reporter.log(line)

    def on_step(self, phase: str, step: int, total: int) -> None:
        """The trainer's ``on_step``: progress bars on a terminal (main rank)."""
        self.reporter.on_step(phase, step, total)

    # -- phases ----------------------------------------------------------------------------------
    def train(self, trainer: Any, lattice: Lattice) -> bool:
        """Resume or start, then train; False if SIGTERM/SIGUSR1 stopped training (a checkpoint
        of the stopping step is written)."""
        if self.args.resume and trainer.resume():
            self.backend.after_resume()
            self.resumed_from = trainer.step
            self.log(f"resumed from step {trainer.step} ({trainer.checkpoint_dir()})")
        else:
            if lattice.start == "cold":
                trainer.x = self.cold_start(trainer, lattice)
            if trainer.step == 0:
                beta0 = trainer.beta.at(0, trainer.config.total_steps)
                trainer.x = self._thermalized(trainer, trainer.x, beta0, "training")
        self._lattice = lattice
        total = trainer.config.total_steps
        self.beta = trainer.beta.final(total)
        t0 = time.perf_counter()
        with self.reporter.phase(f"training {total} steps ({self.world_size} rank(s))"):
            trainer.train()
        self._times["train"] = time.perf_counter() - t0
        return not trainer.stop_flag.is_set()

    def _thermalized(self, trainer: Any, x: Any, beta: float, before: str) -> Any:
        """``x`` thermalized at ``beta`` (as it is without a thermalization config or with a
        cap of 0); logged, and recorded for ``run.json``."""
        config = self.thermalize_config
        if config is None or config.max_trajectories == 0:
            return x
        t0 = time.perf_counter()
        step_size = fixed_step_size(config.step_size)
        if step_size is None:
            step_size = self._tuned_eps.get(beta)
        with self.reporter.phase(f"thermalizing at beta = {beta:g} before {before}"):
            x, record = trainer.thermalize(
                x,
                beta,
                max_trajectories=config.max_trajectories,
                window=config.window,
                step_size=step_size,
                target_acceptance=config.target_acceptance,
                traj_length=config.trajectory_length,
            )
        record = {"before": before, **record, "time_s": time.perf_counter() - t0}
        if record["tuned"]:
            self._tuned_eps[beta] = record["step_size"]
        self.thermalizations.append(record)
        first, last = record["plaquette_first_window"], record["plaquette_last_window"]
        plaq = "" if first is None else f", plaquette {first:.4f} -> {last:.4f}"
        z = record["drift_z"]
        line = (
            f"thermalized at beta = {beta:g}: {record['trajectories']} HMC trajectories"
            f" (eps = {record['step_size']:.4g} x {record['leapfrog_steps']}){plaq}"
            + ("" if z is None else f", last windows differ by {z:.2f} sigma")
        )
        if not record["converged"]:
            line = (
                f"WARNING: {line}; the plaquette still drifted at the cap of"
                f" {config.max_trajectories} trajectories (raise thermalize.max_trajectories)"
            )
        self.log(line)
        self._write_run("running")
        return x

    def _previous_thermalizations(self) -> list[dict[str, Any]]:
        """The thermalization records of ``out/run.json`` (rank 0; none if unreadable)."""
        path = self.out / "run.json"
        if not self.is_main or not path.is_file():
            return []
        try:
            records = json.loads(path.read_text(encoding="utf-8")).get("thermalization", [])
        except (OSError, ValueError, AttributeError):
            return []
        return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []

    def measure_chains(self, trainer: Any) -> Any:
        """The chains the measured phases start from: the trained chains thermalized at the
        final β (once, for evaluation and the HMC baseline)."""
        if self._measure_x is None:
            self._measure_x = self._thermalized(trainer, trainer.x, self.beta, "measuring")
        return self._measure_x

    def evaluate(self, trainer: Any, evaluate: Evaluate) -> None:
        steps = evaluate.steps if self.args.eval_steps is None else self.args.eval_steps
        start = self.measure_chains(trainer) if steps else trainer.x
        x = self.chains_like(start, evaluate.chains)
        self._eval_chains = evaluate.chains
        t0 = time.perf_counter()
        with self.reporter.phase(f"evaluating the trained sampler: {steps} trajectories"):
            trainer.evaluate(steps, beta=self.beta, x=x)
        self._times["eval"] = time.perf_counter() - t0
        if evaluate.ablation or getattr(self.args, "ablation", False):
            self.ablation(trainer, evaluate, steps)

    def ablation(self, trainer: Any, evaluate: Evaluate, steps: int) -> None:
        """Train the same spec without networks (a fresh trainer of the same class: same
        dynamics, loss, β schedule, steps and seed; no checkpoints), then evaluate it like the
        trained sampler.  Its histories and summary block are written beside the sampler's."""
        ab = ablation_trainer(
            trainer,
            backend=self.backend,
            log=self.log,
            on_step=self.on_step,
            **self.trainer_options(),
        )
        if self._lattice is not None and self._lattice.start == "cold":
            ab.x = self.cold_start(ab, self._lattice)
        total = ab.config.total_steps
        # the same start as the trained sampler's: thermalized at the first β (with its own
        # generator, so the trained sampler's and HMC's records do not change)
        ab.x = self._thermalized(ab, ab.x, ab.beta.at(0, total), "ablation training")
        t0 = time.perf_counter()
        with self.reporter.phase(f"ablation: training {total} steps without networks"):
            ab.train()
        self._times["ablation-train"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with self.reporter.phase(f"ablation: evaluating {steps} trajectories"):
            # from the chains the trained sampler's evaluation started from (thermalized)
            x = self.chains_like(self.measure_chains(trainer), evaluate.chains)
            ab.evaluate(steps, beta=self.beta, x=x)
        self._times["ablation-eval"] = time.perf_counter() - t0
        self._ablation = ab

    def hmc(self, trainer: Any, hmc: Hmc) -> None:
        """Generic HMC at the final β from the chains evaluation started from: ε fixed or tuned
        first, then ``steps`` trajectories of ``n = ceil(τ/ε)`` steps of ``τ/n``."""
        steps = hmc.steps if self.args.hmc_steps is None else self.args.hmc_steps
        self._hmc_chains = hmc.chains
        step_size = fixed_step_size(hmc.step_size)
        self._hmc_tuned = step_size is None
        self._hmc_fourier = hmc.fourier
        eps = "tuned" if step_size is None else f"ε = {step_size}"
        if steps == 0:
            return
        t0 = time.perf_counter()
        with self.reporter.phase(f"HMC baseline ({eps}): {steps} trajectories"):
            trainer.run_hmc(
                steps,
                self.beta,
                step_size=step_size,
                target_acceptance=hmc.target_acceptance,
                traj_length=hmc.trajectory_length,
                x=self.chains_like(self.measure_chains(trainer), hmc.chains),
                fourier=hmc.fourier,
            )
        self._times["hmc"] = time.perf_counter() - t0

    # -- outputs ---------------------------------------------------------------------------------
    def _gathered(self, history: History) -> History:
        """``history`` with the per-chain metrics of every rank (chain axis joined)."""
        if self.world_size == 1:
            return history
        out = History(history.float_dtype)
        records: dict[int, dict[str, Any]] = {}
        for key in history:
            values = history[key]
            if key in PER_CHAIN_KEYS and values.ndim >= 2:
                values = self.backend.all_gather_chains(values)
            for s, v in zip(history.steps(key), values, strict=True):
                records.setdefault(int(s), {})[key] = v
        for s in sorted(records):
            out.append(records[s], step=s)
        return out

    def finish(self, trainer: Any) -> int:
        """Gather, write every output on rank 0, print the summary; returns the exit status."""
        histories = {
            "train": self._gathered(trainer.histories["train"]),
            "eval": self._gathered(trainer.histories["eval"]),
            "hmc": self._gathered(trainer.histories["hmc"]),
        }
        if self._ablation is not None:
            histories["ablation-train"] = self._gathered(self._ablation.histories["train"])
            histories["ablation-eval"] = self._gathered(self._ablation.histories["eval"])
        if self.is_main:
            self._write_outputs(trainer, histories)
        self.backend.barrier()
        self.backend.close()
        return 0

    def stopped(self, trainer: Any) -> int:
        """After a signal stopped training: record it and return ``STOPPED_EXIT_CODE``."""
        self.log(f"checkpoint in {trainer.checkpoint_dir()}: rerun with --resume to continue")
        self._write_run("stopped")
        self.backend.close()
        return STOPPED_EXIT_CODE

    def _write_outputs(self, trainer: Any, histories: dict[str, History]) -> None:
        out = self.out
        for name, h in histories.items():
            h.save(out / "history" / f"{name}.npz", rank=0)
        group, shape = trainer.group.name, trainer.lattice_shape

        def block(phase: str, chains: int) -> dict[str, Any]:
            h = histories[phase]
            return sampler_summary(
                h,
                group=group,
                shape=shape,
                beta=self.beta,
                chains=chains * self.world_size,
                time_s=self._times.get(phase, 0.0),
            )

        forces = trainer.dynamics_config.forces_per_trajectory
        l2hmc = with_costs(block("eval", self._eval_chains), forces)
        hmc = None
        if len(histories["hmc"]):
            h = histories["hmc"]
            n_steps = int(h["n_steps"][-1])
            hmc = with_costs(block("hmc", self._hmc_chains), n_steps + 1)
            hmc.update(
                step_size=float(h["step_size"][-1]),
                leapfrog_steps=n_steps,
                tuned=self._hmc_tuned,
                fourier=self._hmc_fourier or None,
            )
        train_h = histories["train"]
        step_sizes = self.step_sizes(trainer)
        if not all(math.isfinite(e) for e in step_sizes):
            # summary.json holds finite numbers only; say so instead of a JSON traceback
            raise SystemExit(
                f"train.py: training diverged: step sizes {step_sizes} at step {trainer.step};"
                f" the histories are in {out / 'history'}, no summary.json was written"
            )
        train = {
            "steps": trainer.step,
            "total_steps": trainer.config.total_steps,
            "chains": trainer.config.chains * self.world_size,
            "time_s": self._times.get("train"),
            "resumed_from_step": self.resumed_from,
            "final_loss": _finite(np.mean(train_h["loss"][-1])) if "loss" in train_h else None,
            "step_sizes": step_sizes,
            "fourier_masses": self.fourier_masses(trainer),
        }
        ablation = None
        if self._ablation is not None:
            ab, ab_train = self._ablation, histories["ablation-train"]
            ablation = with_costs(block("ablation-eval", self._eval_chains), forces)
            ablation["train"] = {
                "steps": ab.step,
                "total_steps": ab.config.total_steps,
                "chains": ab.config.chains * self.world_size,
                "time_s": self._times.get("ablation-train"),
                "resumed_from_step": None,
                "final_loss": (
                    _finite(np.mean(ab_train["loss"][-1])) if "loss" in ab_train else None
                ),
                "step_sizes": self.step_sizes(ab),
                "fourier_masses": self.fourier_masses(ab),
            }
            if not all(math.isfinite(e) for e in ablation["train"]["step_sizes"]):
                self.log(f"ablation diverged (step sizes {ablation['train']['step_sizes']})")
                ablation = None
        summary = build_summary(
            self.experiment,
            world_size=self.world_size,
            beta=self.beta,
            train=train,
            l2hmc=l2hmc,
            hmc=hmc,
            ablation=ablation,
        )
        write_json(out / "summary.json", summary)
        if not self.args.no_plots:
            self._plots(histories, l2hmc["plaquette"]["exact_finite_volume"])
        if self.args.tensorboard:
            self.tensorboard(histories)
        self._write_run("completed")
        self.reporter.print(format_report(summary))
        self.reporter.print(f"outputs in {out}")

    def _plots(self, histories: dict[str, History], exact_plaquette: float | None) -> None:
        try:
            import matplotlib  # noqa: F401  (a compute node may lack it: the run still counts)
        except ImportError as exc:
            warnings.warn(f"no plots: {exc}", RuntimeWarning, stacklevel=2)
            return
        for name, h in histories.items():
            if len(h):
                plot_history(
                    h, self.out / "plots", exact_plaquette=exact_plaquette, prefix=f"{name}-"
                )

    @staticmethod
    def scalars(histories: dict[str, History]) -> list[tuple[str, int, float]]:
        """``(tag, step, value)`` of every history record, per-chain metrics averaged: what
        ``tensorboard`` writes."""
        out: list[tuple[str, int, float]] = []
        for name, h in histories.items():
            for key in h:
                for s, v in zip(h.steps(key), h[key], strict=True):
                    out.append((f"{name}/{key}", int(s), float(np.mean(v))))
        return out

    def _record_failure(self) -> None:
        if self._status == "running":
            with contextlib.suppress(OSError, ValueError):
                self._write_run("failed")

    def _write_run(self, status: str) -> None:
        if not self.is_main:
            return
        self._status = status
        record = run_record(
            self.experiment,
            status=status,  # type: ignore[arg-type]
            started_at=self.started_at,
            ended_at=None if status == "running" else utc_now(),
            argv=sys.argv,
            world_size=self.world_size,
            hosts=self.hosts,
            launcher=self.env.launcher,
            device=self.device_name(),
            dist_backend=self.backend.comm,
            seeds=[chain_seed(self.experiment.seed, r) for r in range(self.world_size)],
            resumed_from_step=self.resumed_from,
            versions=versions((*self.version_modules, "matplotlib")),
            thermalization=self.thermalizations,
            chain=self.chain,
        )
        write_json(self.out / "run.json", record)
