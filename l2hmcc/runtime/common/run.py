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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import equilibrium, exact
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
    "Thermalize",
    "build_summary",
    "chain_record",
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
    """Evaluation of the trained sampler: ``steps`` trajectories of ``chains`` chains per rank;
    ``ablation``: also train the same sampler without networks and evaluate it the same way."""

    steps: int
    chains: int
    ablation: bool = False


@dataclass(frozen=True)
class Hmc:
    """The generic-HMC baseline: ``steps`` trajectories of ``chains`` chains per rank.

    ``step_size`` fixed, or ``"tuned"`` to tune it to ``target_acceptance`` first; the number
    of leapfrog steps is ``n = ceil(trajectory_length / ε)``, each of ``trajectory_length / n``.
    ``fourier > 0``: Fourier-accelerated HMC (kicks ``K F``, drifts ``ε K p``) with that fixed
    mass² (U1, 2D/3D lattices).
    """

    steps: int
    chains: int
    step_size: float | Literal["tuned"] = "tuned"
    target_acceptance: float = 0.8
    trajectory_length: float = 1.0
    fourier: float = 0.0


@dataclass(frozen=True)
class Thermalize:
    """HMC trajectories that bring chains to equilibrium at a β before they are used: before
    training (at the first β) and before evaluation and the HMC baseline (at the final β).

    Windows of ``window`` trajectories run until the mean plaquette of the last window agrees
    with the one before (``equilibrium.window_drift`` below ``THERMALIZED_SIGMA``), at most
    ``max_trajectories`` in all (0: no thermalization). The trajectories are HMC's:
    ``step_size`` fixed, or ``"tuned"`` to tune it to ``target_acceptance`` first (the tuning
    trajectories count), ``ceil(trajectory_length / ε)`` leapfrog steps.
    """

    max_trajectories: int
    window: int
    step_size: float | Literal["tuned"] = "tuned"
    target_acceptance: float = 0.8
    trajectory_length: float = 1.0


def fixed_step_size(step_size: float | str) -> float | None:
    """A fixed ε as a float, ``None`` for ``"tuned"`` (what the trainers' loops take)."""
    if step_size == "tuned":
        return None
    return float(step_size)


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
    argv: Sequence[str] | None,
    *,
    job_dir: Path,
    description: str | None = None,
    dry_run: bool = False,
) -> argparse.Namespace:
    """The options of every generated ``train.py`` (``--help`` lists them); ``dry_run`` adds
    ``--dry-run`` and its options (PyTorch jobs: ``pt/dryrun.py``)."""
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
    steps.add_argument(
        "--thermalize-max",
        type=_positive,
        metavar="N",
        help="at most N thermalization trajectories each time (0: none)",
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
    p.add_argument(
        "--ablation",
        action="store_true",
        help="also train and evaluate the same spec without networks (step sizes only), as the"
        " spec's evaluate.ablation does: what the networks add",
    )
    if dry_run:
        dry = p.add_argument_group("dry run (no GPU needed)")
        dry.add_argument(
            "--dry-run",
            action="store_true",
            help="one train step, one L2HMC and one HMC trajectory on a fake --device (cuda "
            "unless given: cuda or xpu); reports device mistakes and the memory per rank",
        )
        dry.add_argument(
            "--ranks",
            type=int,
            metavar="N",
            help="world size for ZeRO's partitioning in the dry run (default: ds_config.json's)",
        )
        dry.add_argument("--json", type=Path, metavar="FILE", help="the dry run's report as JSON")
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
    burn_in: int | None = None,
) -> dict[str, Any]:
    """One sampler's block of ``summary.json`` (``l2hmc`` or ``hmc``), from its history.

    ``chains`` counts all ranks' chains; ``time_s`` is the wall time of the phase
    (``sampler_rate``). Statistics drop the first ``burn_in`` records, by default the burn-in
    ``equilibrium.check`` chooses from the plaquette record, and ``equilibrated`` says whether
    the kept records pass its drift test (``equilibrium`` holds the test's figures).
    ``plaquette.exact`` is the infinite-volume 2D U(1) value I₁(β)/I₀(β) (null otherwise),
    ``exact_finite_volume`` the value on this lattice.
    """
    eq = equilibrium.check(history["plaquette"]) if "plaquette" in history else None
    if burn_in is None:
        burn_in = eq.burn_in if eq is not None else 0
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
        "tau_int_q": {
            "value": _num(charge.get("tau_int")),
            "err": _num(charge.get("tau_int_err")),
            "converged": bool(charge["converged"]) if "converged" in charge else None,
        },
        "mean_abs_dq": _num(charge.get("mean_abs_dq")),
        "trajectories_per_s": sampler_rate(history, chains, time_s),
        "time_s": _num(time_s),
        "equilibrated": None if eq is None else eq.equilibrated,
        "equilibrium": None if eq is None else eq.as_dict("plaquette"),
    }


def with_costs(block: dict[str, Any], forces_per_trajectory: int) -> dict[str, Any]:
    """``block`` with τ_int(Q) also per force evaluation and per second of the job:
    ``tau_int_q_forces = τ × forces per trajectory`` (forces per independent-ish sample;
    compares samplers whose trajectories differ in length) and ``tau_int_q_seconds = τ /
    trajectories_per_s`` (the job's wall seconds per τ_int(Q) chain trajectories, all chains
    running together: what ``improvement`` compares)."""
    tau, rate = block["tau_int_q"]["value"], block["trajectories_per_s"]
    return {
        **block,
        "forces_per_trajectory": forces_per_trajectory,
        "tau_int_q_forces": _num(tau * forces_per_trajectory) if tau is not None else None,
        "tau_int_q_seconds": _num(tau / rate) if tau is not None and rate else None,
    }


def improvement_and_note(
    l2hmc: dict[str, Any], hmc: dict[str, Any] | None
) -> tuple[float | None, str | None]:
    """``improvement`` and, when it is null, why: a sampler whose record is not in equilibrium
    or whose τ_int(Q) window did not converge gives no ratio a physicist could trust."""
    if hmc is None:
        return None, "no HMC baseline"
    reasons = []
    for label, s in (("L2HMC", l2hmc), ("HMC", hmc)):
        if s.get("equilibrated") is False:
            reasons.append(f"{label} is not equilibrated")
        if s["tau_int_q"].get("converged") is False:
            reasons.append(f"{label}'s τ_int(Q) window did not converge")
    if reasons:
        return None, "; ".join(reasons)
    value = improvement(l2hmc, hmc)
    return value, None if value is not None else "τ_int(Q) or a rate could not be estimated"


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
    ablation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole ``summary.json`` (``l2hmcc/schemas/summary.schema.json``); the ``ablation``
    block (the sampler trained without networks) only when it ran, with its gains: the
    ablation's τ_int(Q) over the trained sampler's, per trajectory and per unit of compute
    (above 1: the networks earn their place)."""
    ratio, note = improvement_and_note(l2hmc, hmc)
    out = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "experiment": experiment.name,
        "spec_sha256": experiment.spec_sha256,
        "target": experiment.target,
        "world_size": world_size,
        "beta": beta,
        "train": train,
        "l2hmc": l2hmc,
        "hmc": hmc,
        "improvement": ratio,
        "improvement_note": note,
    }
    if ablation is not None:
        tl, ta = l2hmc["tau_int_q"]["value"], ablation["tau_int_q"]["value"]
        out["ablation"] = {
            **ablation,
            "gain_per_trajectory": _num(ta / tl) if tl and ta else None,
            "gain": improvement(l2hmc, ablation),
        }
    return out


def _pm(block: dict[str, Any], digits: int = 4) -> str:
    mean, err = block.get("mean"), block.get("err")
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {err:.{digits}f}" if err is not None else "")


def _yes_no(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def format_report(summary: dict[str, Any]) -> str:
    """A few lines for the terminal: acceptance, plaquette vs exact, ⟨Q²⟩, τ_int(Q) (and
    whether its window converged), speed, and whether each record was in equilibrium."""
    lines = [f"{summary['experiment']} ({summary['target']}, {summary['world_size']} rank(s))"]
    for key, label in (("l2hmc", "L2HMC"), ("ablation", "no-NN"), ("hmc", "HMC")):
        s = summary.get(key)
        if not s:
            continue
        tau = s["tau_int_q"]
        tau_s = "-" if tau["value"] is None else f"{tau['value']:.2f}"
        if tau["value"] is not None and tau["err"] is not None:
            tau_s += f" ± {tau['err']:.2f}"
        if s.get("tau_int_q_forces") is not None:
            tau_s += f" (= {s['tau_int_q_forces']:.3g} forces"
            seconds = s.get("tau_int_q_seconds")
            tau_s += f", {seconds:.3g} s)" if seconds is not None else ")"
        if tau.get("converged") is False:
            tau_s += " (window not converged)"
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
            + f"  equilibrated {_yes_no(s.get('equilibrated'))}"
        )
    imp, note = summary.get("improvement"), summary.get("improvement_note")
    lines.append(
        f"  improvement (HMC cost / L2HMC cost per independent Q): {imp if imp is None else f'{imp:.3g}'}"
        + (f" ({note})" if imp is None and note else "")
    )
    ab = summary.get("ablation")
    if ab:
        gains = (ab.get("gain_per_trajectory"), ab.get("gain"))
        lines.append(
            "  networks' gain (no-NN tau_int(Q) / L2HMC's, per trajectory and per cost): "
            + ", ".join("-" if g is None else f"{g:.3g}" for g in gains)
        )
    lines.extend(equilibrium_warnings(summary))
    return "\n".join(lines)


def equilibrium_warnings(summary: dict[str, Any]) -> list[str]:
    """A ``WARNING`` line per sampler whose record is not in equilibrium: its figures are not
    those of the distribution at this β."""
    lines = []
    for key, label in (("l2hmc", "L2HMC"), ("ablation", "no-NN"), ("hmc", "HMC")):
        s = summary.get(key)
        if not s or s.get("equilibrated") is not False:
            continue
        eq = s.get("equilibrium") or {}
        lines.append(
            f"WARNING: {label} is not in equilibrium at beta = {summary['beta']:g}:"
            f" {eq.get('reason') or 'no plaquette record'}; its plaquette and <Q^2> are not"
            " known to be equilibrium values (more trajectories, or a longer thermalization:"
            " the spec's thermalize block)"
        )
    return lines


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


def chain_record(previous_run: Path, env: Mapping[str, str]) -> dict[str, Any] | None:
    """``run.json``'s ``chain`` for a job that continues itself (``job { continue = N }``):
    which link of the chain this is (0 = the first job), the follow-ons allowed in all, and the
    PBS job ids of every link so far, carried over from the previous link's ``run.json``.
    None when the job script does not chain (no ``L2HMCC_CHAIN_MAX``)."""
    if "L2HMCC_CHAIN_MAX" not in env:
        return None
    link = int(env.get("L2HMCC_CHAIN_LINK", "0"))
    job_ids: list[str | None] = []
    if link > 0:
        try:
            before = json.loads(previous_run.read_text(encoding="utf-8")).get("chain") or {}
            job_ids = list(before.get("job_ids", []))
        except (OSError, ValueError, AttributeError):
            job_ids = []
    job_ids.append(env.get("PBS_JOBID"))
    return {"link": link, "max_follow_ons": int(env["L2HMCC_CHAIN_MAX"]), "job_ids": job_ids}


def run_record(
    experiment: Experiment,
    *,
    status: Literal["running", "completed", "stopped", "failed"],
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
    thermalization: Sequence[dict[str, Any]] = (),
    chain: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``run.json`` (``l2hmcc/schemas/run.schema.json``): what ran, where, with what;
    ``thermalization`` holds one record per thermalization (``TrainerLoop.thermalize``)."""
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
        "thermalization": list(thermalization),
        "chain": chain,
    }
