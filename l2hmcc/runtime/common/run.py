"""What a generated job does around the sampler, framework-neutral (stdlib + numpy).

A generated ``train.py`` describes its experiment with the frozen dataclasses below
(``Experiment``, ``Lattice``, ``Evaluate``, ``Hmc``; the sampler's own configs come from
``config.py`` and the framework's trainer) and hands them to a framework driver (``pt/run.py``).
This module holds what the PyTorch and TensorFlow drivers share:

* ``parse_args``: the command line every ``train.py`` accepts (``--out``, ``--resume``, step
  overrides, device, compile, progress, TensorBoard, plots);
* ``Reporter``: log lines on the main rank, a rich status display on a terminal, plain lines
  with a UTC timestamp otherwise (batch jobs);
* ``sampler_summary``/``build_summary``: ``summary.json`` in the layout of
  ``l2hmcc/schemas/summary.schema.json``; ``run_record``: ``run.json``;
* ``write_json``: atomic JSON files (temporary file + rename).

Output layout (``--out``, default ``output/`` in the job directory; rank 0 writes, except each
rank's own ``checkpoints/rank{r}/``): ``summary.json``, ``run.json``,
``history/{train,eval,hmc}.npz``, ``plots/{train,eval,hmc}-*.png``, ``checkpoints/``,
``tensorboard/`` (with ``--tensorboard``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import exact
from .history import History, atomic_write_bytes
from .summary import summarize

__all__ = [
    "PER_CHAIN_KEYS",
    "SUMMARY_SCHEMA_VERSION",
    "Evaluate",
    "Experiment",
    "Hmc",
    "Lattice",
    "Reporter",
    "build_summary",
    "format_report",
    "n_plaquettes",
    "parse_args",
    "run_record",
    "sampler_summary",
    "utc_now",
    "write_json",
]

SUMMARY_SCHEMA_VERSION = 1
RUN_SCHEMA_VERSION = 1

#: Metrics recorded per chain (``[T, B]``): gathered from every rank before summarising.
PER_CHAIN_KEYS = (
    "accept_prob",
    "accepted",
    "dH",
    "exp_minus_dH",
    "sumlogdet",
    "plaquette",
    "action",
    "charge",
    "dQ",
    "sin_charge",
    "dQ_sin",
)


@dataclass(frozen=True)
class Experiment:
    """Where the job came from (the spec's ``experiment`` block and the compile record)."""

    name: str
    description: str
    seed: int
    spec: str
    spec_sha256: str
    target: str
    l2hmcc_version: str


@dataclass(frozen=True)
class Lattice:
    """Gauge group, extents and start of the chains (the spec's ``lattice`` block; β is a
    schedule of the trainer)."""

    group: Literal["U1", "SU2", "SU3"]
    shape: tuple[int, ...]
    start: Literal["hot", "cold"] = "hot"

    @property
    def dims(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class Evaluate:
    """Evaluation of the trained sampler: ``steps`` trajectories of ``chains`` chains per rank."""

    steps: int
    chains: int


@dataclass(frozen=True)
class Hmc:
    """The generic-HMC baseline: ``steps`` trajectories of ``chains`` chains per rank.

    ``step_size`` fixed, or ``None`` to tune it to ``target_acceptance`` first; the number of
    leapfrog steps is ``ceil(trajectory_length / ε)``.
    """

    steps: int
    chains: int
    step_size: float | None = None
    target_acceptance: float = 0.8
    trajectory_length: float = 1.0


def n_plaquettes(shape: Sequence[int]) -> int:
    """Plaquettes per configuration: sites × D(D−1)/2."""
    d = len(shape)
    return math.prod(shape) * d * (d - 1) // 2


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """``value`` as indented JSON (no NaN/Infinity), written atomically."""
    text = json.dumps(value, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------------------------
# Command line


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {text}")
    return value


def parse_args(
    argv: Sequence[str] | None, *, job_dir: Path, description: str | None = None
) -> argparse.Namespace:
    """The options of every generated ``train.py`` (``--help`` lists them)."""
    p = argparse.ArgumentParser(
        prog="train.py",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out",
        type=Path,
        default=job_dir / "output",
        metavar="DIR",
        help="output directory (default: output/ in the job directory)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the latest checkpoint in DIR/checkpoints (a fresh start if none)",
    )
    steps = p.add_argument_group("step overrides (quick runs)")
    steps.add_argument("--train-steps", type=_positive, metavar="N", help="training steps")
    steps.add_argument("--eval-steps", type=_positive, metavar="N", help="evaluation trajectories")
    steps.add_argument("--hmc-steps", type=_positive, metavar="N", help="HMC baseline trajectories")
    steps.add_argument("--log-every", type=_positive, metavar="N", help="log every N steps")
    steps.add_argument(
        "--checkpoint-every", type=_positive, metavar="N", help="checkpoint every N steps"
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda", "xpu", "mps"),
        default="auto",
        help="device (default: auto = cuda, xpu, mps, then cpu)",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override the spec's train.compile (torch.compile / XLA)",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "rich", "plain"),
        default="auto",
        help="progress display: rich on a terminal, plain log lines otherwise (default: auto)",
    )
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    # DeepSpeed's launcher passes --local_rank; the rank comes from the environment.
    p.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------
# Progress and log lines


class Reporter:
    """Progress on the main rank: on a terminal (``mode`` ``auto``/``rich``) a rich progress bar
    per phase with the log lines above it; otherwise plain log lines with a UTC timestamp,
    flushed at once (batch logs), and a line every ``log_every`` steps of phases whose loop logs
    nothing itself (``quiet_phases``)."""

    def __init__(
        self,
        *,
        enabled: bool,
        mode: str = "auto",
        log_every: int = 0,
        quiet_phases: Sequence[str] = ("hmc",),
    ) -> None:
        self.enabled = enabled
        self.log_every = log_every
        self.quiet_phases = tuple(quiet_phases)
        self._console: Any = None
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._title = ""
        if enabled and mode != "plain" and (mode == "rich" or sys.stdout.isatty()):
            try:
                from rich.console import Console
            except ImportError:
                pass
            else:
                self._console = Console(
                    force_terminal=True if mode == "rich" else None, log_path=False
                )

    @property
    def rich(self) -> bool:
        return self._console is not None

    def log(self, line: str) -> None:
        if not self.enabled:
            return
        if self._console is not None:
            self._console.log(line, markup=False, highlight=False)
        else:
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%H:%M:%S")
            print(f"[{stamp}] {line}", flush=True)

    @contextmanager
    def phase(self, title: str) -> Iterator[None]:
        """A progress bar (rich) while a phase runs; plain mode logs its start."""
        if not self.enabled:
            yield
            return
        self._title = title
        if self._console is None:
            self.log(title)
            self._t0 = _dt.datetime.now(_dt.timezone.utc)
            yield
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        ) as progress:
            self._progress, self._tasks = progress, {}
            try:
                yield
            finally:
                self._progress = None
        self._console.log(title + ": done", markup=False, highlight=False)

    def on_step(self, phase: str, step: int, total: int) -> None:
        """The trainer's per-step hook (main rank)."""
        if not self.enabled:
            return
        if self._progress is not None:
            task = self._tasks.get(phase)
            if task is None:
                task = self._tasks[phase] = self._progress.add_task(self._title, total=total)
            self._progress.update(task, completed=step)
        elif phase in self.quiet_phases and self.log_every and step % self.log_every == 0:
            elapsed = (_dt.datetime.now(_dt.timezone.utc) - self._t0).total_seconds()
            self.log(f"{phase} {step}/{total} {step / max(elapsed, 1e-9):.3g} steps/s")

    def print(self, text: str) -> None:
        if not self.enabled:
            return
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, flush=True)


# ----------------------------------------------------------------------------------------------
# summary.json


def _num(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def sampler_rate(history: History, chains: int, phase_time_s: float) -> float | None:
    """Chain trajectories per second: from the per-step ``time_s`` records without the first
    (which holds any ``torch.compile``/XLA warm-up) when there are some, else over the phase."""
    if "time_s" in history and len(history["time_s"]) >= 2:
        t = float(np.sum(history["time_s"][1:]))
        n = len(history["time_s"]) - 1
    else:
        t, n = phase_time_s, len(history)
    return _num(n * chains / t) if t > 0 else None


def sampler_summary(
    history: History,
    *,
    group: str,
    shape: Sequence[int],
    beta: float,
    chains: int,
    time_s: float,
    burn_in: int = 0,
) -> dict[str, Any]:
    """One sampler's block of ``summary.json`` (``l2hmc`` or ``hmc``), from its history.

    ``chains`` counts all ranks' chains; ``time_s`` is the wall time of the phase
    (``sampler_rate``). Statistics drop the first ``burn_in`` records.
    ``plaquette.exact`` is the infinite-volume 2D U(1) value I₁(β)/I₀(β) (null otherwise),
    ``exact_finite_volume`` the value on this lattice.
    """
    volume = n_plaquettes(shape)
    full = summarize(
        history, beta=beta, group=group, dims=len(shape), volume=volume, burn_in=burn_in
    )
    u1_2d = group.upper() == "U1" and len(shape) == 2
    plaq = full.get("plaquette", {})
    charge = full.get("charge", {})
    q2 = charge.get("q2", {})
    return {
        "trajectories": len(history),
        "burn_in": burn_in,
        "chains": chains,
        "acceptance": _num(full.get("acceptance", {}).get("mean")),
        "plaquette": {
            "mean": _num(plaq.get("mean")),
            "err": _num(plaq.get("err")),
            "exact": exact.u1_plaquette(beta) if u1_2d else None,
            "exact_finite_volume": exact.u1_plaquette(beta, volume) if u1_2d else None,
        },
        "q2": {
            "mean": _num(q2.get("mean")),
            "err": _num(q2.get("err")),
            "exact": exact.u1_q2(beta, volume) if u1_2d else None,
        },
        "tau_int_q": {"value": _num(charge.get("tau_int")), "err": _num(charge.get("tau_int_err"))},
        "mean_abs_dq": _num(charge.get("mean_abs_dq")),
        "trajectories_per_s": sampler_rate(history, chains, time_s),
        "time_s": _num(time_s),
    }


def improvement(l2hmc: dict[str, Any], hmc: dict[str, Any]) -> float | None:
    """HMC's τ_int(Q) × cost per trajectory over L2HMC's (cost = 1 / trajectories per second);
    above 1 means L2HMC decorrelates the charge faster per unit of compute."""
    tl, th = l2hmc["tau_int_q"]["value"], hmc["tau_int_q"]["value"]
    rl, rh = l2hmc["trajectories_per_s"], hmc["trajectories_per_s"]
    if not (tl and th and rl and rh):
        return None
    return _num((th / rh) / (tl / rl))


def build_summary(
    experiment: Experiment,
    *,
    world_size: int,
    beta: float,
    train: dict[str, Any],
    l2hmc: dict[str, Any],
    hmc: dict[str, Any] | None,
) -> dict[str, Any]:
    """The whole ``summary.json`` (``l2hmcc/schemas/summary.schema.json``)."""
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "experiment": experiment.name,
        "spec_sha256": experiment.spec_sha256,
        "target": experiment.target,
        "world_size": world_size,
        "beta": beta,
        "train": train,
        "l2hmc": l2hmc,
        "hmc": hmc,
        "improvement": improvement(l2hmc, hmc) if hmc is not None else None,
    }


def _pm(block: dict[str, Any], digits: int = 4) -> str:
    mean, err = block.get("mean"), block.get("err")
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {err:.{digits}f}" if err is not None else "")


def format_report(summary: dict[str, Any]) -> str:
    """A few lines for the terminal: acceptance, plaquette vs exact, ⟨Q²⟩, τ_int(Q), speed."""
    lines = [f"{summary['experiment']} ({summary['target']}, {summary['world_size']} rank(s))"]
    for key, label in (("l2hmc", "L2HMC"), ("hmc", "HMC")):
        s = summary.get(key)
        if not s:
            continue
        tau = s["tau_int_q"]
        tau_s = "-" if tau["value"] is None else f"{tau['value']:.2f}"
        if tau["value"] is not None and tau["err"] is not None:
            tau_s += f" ± {tau['err']:.2f}"
        exact_p = s["plaquette"]["exact_finite_volume"]
        exact_q2 = s["q2"]["exact"]
        acc = s["acceptance"]
        rate = s["trajectories_per_s"]
        lines.append(
            f"  {label:<5} acceptance {'-' if acc is None else f'{acc:.3f}'}"
            f"  plaquette {_pm(s['plaquette'])}"
            + (f" (exact {exact_p:.4f})" if exact_p is not None else "")
            + f"  <Q^2> {_pm(s['q2'], 3)}"
            + (f" (exact {exact_q2:.3f})" if exact_q2 is not None else "")
            + f"  tau_int(Q) {tau_s}  {'-' if rate is None else f'{rate:.3g}'} traj/s"
        )
    imp = summary.get("improvement")
    lines.append(
        f"  improvement (HMC cost / L2HMC cost per independent Q): {imp if imp is None else f'{imp:.3g}'}"
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# run.json


def host_name() -> str:
    return socket.gethostname()


def versions(modules: Sequence[str]) -> dict[str, str | None]:
    """Python, the platform and ``modules``' ``__version__`` (when imported by now)."""
    out: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
    }
    for name in modules:
        mod = sys.modules.get(name)
        out[name] = None if mod is None else str(getattr(mod, "__version__", "unknown"))
    return out


def run_record(
    experiment: Experiment,
    *,
    status: Literal["running", "completed", "stopped"],
    started_at: str,
    ended_at: str | None,
    argv: Sequence[str],
    world_size: int,
    hosts: Sequence[str],
    launcher: str,
    device: str,
    dist_backend: str | None,
    seeds: Sequence[int],
    resumed_from_step: int | None,
    versions: dict[str, str | None],
) -> dict[str, Any]:
    """``run.json`` (``l2hmcc/schemas/run.schema.json``): what ran, where, with what."""
    return {
        "schema_version": RUN_SCHEMA_VERSION,
        "experiment": experiment.name,
        "spec": experiment.spec,
        "spec_sha256": experiment.spec_sha256,
        "target": experiment.target,
        "l2hmcc_version": experiment.l2hmcc_version,
        "status": status,
        "started_at": started_at,
        "ended_at": ended_at,
        "argv": list(argv),
        "world_size": world_size,
        "hosts": list(hosts),
        "launcher": launcher,
        "device": device,
        "dist_backend": dist_backend,
        "seed": experiment.seed,
        "chain_seeds": list(seeds),
        "resumed_from_step": resumed_from_step,
        "versions": versions,
    }
