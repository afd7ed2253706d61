"""What an L2HMC trajectory costs against the HMC it ships beside, in one process, interleaved.

Not a test: figures depend on the machine and its load (printed beside every figure). One
thread (``OMP_NUM_THREADS=1``); CPU seconds (``time.process_time``), which on a shared machine
do not count the time other processes held the core. Sections:

* **per force**: U(1) 16×16, 8 layers, merged directions, β = 4, ``network none``: the
  compiled proposal (``Dynamics.compile_proposal``: one graph) per force evaluation
  (``1 + 2·8`` per trajectory) against the compiled HMC integrator
  (``hmc.compile_leapfrog``, 8 steps: 9 forces), at 64 and 1024 chains, fp32 and fp64;
* **networks vs their FLOP floor**: the same with ``network { hidden = [16] }``; the time the
  networks add (trajectory with networks − without) against their FLOP floor: the matmul
  FLOPs of every network call of a trajectory (``2·B·in·out`` per dense layer and head; the
  elementwise work is not counted) at the peak of this core, measured in the same run
  (a square matmul, best of several); also against the floor of the FLOPs the runtime
  computes (x-networks compute the heads of the links they move only);
* **compile latency**: the first call of each compiled unit with an empty inductor cache
  (cold: the process uses a fresh ``TORCHINDUCTOR_CACHE_DIR`` unless one is set) and again
  after ``torch._dynamo.reset()`` with the cache filled (warm);
* **network local** (``--sections local``): specs/u1.l2h's v-networks (``LOCAL``) with its
  Fourier filter (``dynamics.fourier``, ``--fourier``, default 0.5 as the spec has it),
  trajectory and train step (proposal with gradients and a backward), compiled as jobs compile
  them, beside the filtered ε-only sampler (``eps``: the ablation, no networks); with
  ``--baseline REV`` also the runtime of git revision REV (exported with ``git archive`` and
  imported beside the current one), interleaved, with the speed-up of now over REV;
* **Fourier filter** (``--sections fourier``): the ε-only sampler with the filter
  (``network none``, ``dynamics.fourier = 0.5``; 8 layers, compiled as jobs compile it) with
  the filter as separable Hartley transforms by small matmuls (``fourier_hartley``, what U1
  16×16 uses now; "dense") against the filter through ``rfftn``/``irfftn`` (the same model
  with those buffers removed; "fft"), and
  the plain ε-only sampler (no filter), interleaved;
* **the seed side by side**: ``specs/u1-seed.l2h``'s workload (U(1) 16×16, 128 chains, 8
  layers, the seed's network; ``workloads.u1``), our train step and trajectory, eager and
  compiled, against the seed's (PyPI ``l2hmc`` 0.13.0, installed by ``bench/setup-seed.sh``
  into ``bench/.seed-venv`` and timed there by ``bench/seed_runner.py``); without that venv
  the section says that no side-by-side figure exists.

Interleaving: within each configuration the variants are timed round-robin (``--rounds``
rounds of ``--reps`` calls each); a figure is the median over rounds of the per-round median,
and a ratio is the median of the per-round ratios, so load drifts hit both sides alike.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_cost.py [--quick] [--json out.json]

Further sections (SU(3) compiled vs eager, ...) are functions ``(args) -> list[dict]`` added
to ``SECTIONS``; each row is printed by ``report_row`` and collected into the JSON output.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # cold compile figures: an empty cache
    import tempfile

    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="l2hmcc-bench-inductor-")

import argparse
import functools
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from l2hmcc.runtime.pt import hmc  # noqa: E402
from l2hmcc.runtime.pt.dynamics import Dynamics, DynamicsConfig  # noqa: E402
from l2hmcc.runtime.pt.groups import U1  # noqa: E402
from l2hmcc.runtime.pt.networks import LeapfrogNet, NetworkConfig  # noqa: E402

SHAPE = (16, 16)
LAYERS = 8
BETA = 4.0
DTYPES = {"fp32": torch.float32, "fp64": torch.float64}
#: the seed's own venv (PyPI ``l2hmc`` 0.13.0 and its torch), outside the project's .venv
SEED_VENV = ROOT / "bench" / ".seed-venv"


def load() -> float:
    return os.getloadavg()[0]


def cpu_time(fn: Callable[[], Any], reps: int) -> float:
    """Median CPU seconds of ``reps`` calls."""
    ts = []
    for _ in range(reps):
        c0 = time.process_time()
        fn()
        ts.append(time.process_time() - c0)
    return statistics.median(ts)


def first_call(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call (a compilation is mostly one thread's CPU, but waits too)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def matmul_peak(dtype: torch.dtype, n: int = 512) -> float:
    """FLOP/s of this core's best ``n×n @ n×n`` (best of 5 runs of 5)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = math.inf
    for _ in range(5):
        c0 = time.process_time()
        for _ in range(5):
            torch.mm(a, b)
        best = min(best, (time.process_time() - c0) / 5)
    return 2 * n**3 / best


def net_flops(net: LeapfrogNet, batch: int, moved: float = 1.0) -> int:
    """Matmul FLOPs of one call of ``net`` on ``batch`` chains: ``2·B·in·out`` for every dense
    layer and the fused head (a conv stack, absent here, is not counted).

    ``moved``: the fraction of the links whose heads an x-network computes
    (``LeapfrogNet.forward_moved``: ½; its dense ``x_layer`` then reads the other ½ alone).
    """
    total = 0
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            part = 1 - moved if m is net.x_layer and net.conv_dense is None and moved < 1 else 1
            total += round(m.weight.shape[0] * m.weight.shape[1] * part)
    total += round(net.head_weight.shape[0] * net.head_weight.shape[1] * moved)
    return 2 * batch * total


def trajectory_net_flops(dyn: Dynamics, batch: int, computed: bool = False) -> int:
    """Network FLOPs of one merged trajectory: ``2N`` layers, each two v-network calls and
    two x-network calls; ``computed``: the FLOPs the runtime performs, whose x-networks
    compute the heads of the links they move only (``Dynamics.moved_links``), else those of
    the architecture (every x-network head for every link)."""
    half = 0.5 if computed and dyn.moved_links is not None else 1.0
    per_layer = 0
    for k in range(dyn.config.leapfrog):
        v_net, x_nets = dyn._vnet(k), (dyn._xnet(k, 0), dyn._xnet(k, 1))
        per_layer += 2 * net_flops(v_net, batch) if v_net is not None else 0
        per_layer += sum(net_flops(n, batch, half) for n in x_nets if n is not None)
    return 2 * per_layer


#: The v-networks of specs/u1.l2h (``network local``): the recipe of docs/recipe.md.
LOCAL = NetworkConfig(
    kind="local", conv_filters=(8,), conv_kernels=(3,), hidden=(8,), activation="tanh"
)


class Case:
    """One configuration: the HMC integrator and the two proposals, compiled, with their
    inputs; ``units()`` are the timed callables."""

    def __init__(self, chains: int, precision: str) -> None:
        self.chains, self.precision = chains, precision
        dtype = DTYPES[precision]
        g = torch.Generator().manual_seed(0)
        self.x = U1.random(chains, SHAPE, dtype=dtype, generator=g)
        self.v = U1.random_momenta(self.x, g)
        self.beta = torch.tensor(BETA, dtype=dtype)
        self.eps = torch.tensor(0.1, dtype=dtype)
        self.compiled: dict[str, str] = {}
        self.models: dict[str, Dynamics] = {}
        for name, net in (
            ("none", None),
            ("hidden16", NetworkConfig(hidden=(16,))),
            ("local", LOCAL),
        ):
            torch.manual_seed(0)
            dyn = Dynamics(U1, SHAPE, DynamicsConfig(leapfrog=LAYERS), net, dtype=dtype)
            dyn.eval()
            self.compiled[name] = dyn.compile_proposal()
            self.models[name] = dyn
        self.hmc = hmc.compile_leapfrog()

    def units(self) -> dict[str, Callable[[], Any]]:
        def l2hmc(name: str) -> Callable[[], Any]:
            dyn = self.models[name]

            def run() -> Any:
                with torch.no_grad():
                    return dyn.propose(self.x, self.v, self.beta)

            return run

        def hmc_run() -> Any:
            with torch.no_grad():
                return self.hmc(self.x, self.v, self.beta, self.eps, LAYERS)

        return {name: l2hmc(name) for name in self.models} | {"hmc": hmc_run}


class CpuClock:
    """Seconds of a call as ``bench_cost_gpu.Clock`` measures them on a device: process CPU
    time (``cpu_time``) for the rounds, wall time (``first_call``) for a first call."""

    unit = "CPU s"

    def __call__(self, fn: Callable[[], Any], reps: int = 1) -> float:
        return cpu_time(fn, reps)

    def first(self, fn: Callable[[], Any]) -> float:
        return first_call(fn)


class Timer(Protocol):
    unit: str

    def __call__(self, fn: Callable[[], Any], reps: int = 1) -> float: ...

    def first(self, fn: Callable[[], Any]) -> float: ...


@dataclass
class Rounds:
    """What ``interleaved_rounds`` measured: ``case`` (the one the rounds timed), first calls
    ``cold`` (empty inductor cache) and ``warm`` (cache filled), every round's seconds per unit
    (``times``) and the load after each round."""

    case: Case
    cold: dict[str, float]
    warm: dict[str, float]
    load_cold: float
    times: dict[str, list[float]]
    loads: list[float]

    @property
    def median(self) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in self.times.items()}

    @property
    def load(self) -> float:
        return statistics.median(self.loads)

    def ratio(self, a: str, b: str, per_a: float = 1.0, per_b: float = 1.0) -> float:
        """Median over rounds of ``(a / per_a) / (b / per_b)``."""
        return statistics.median(
            (x / per_a) / (y / per_b) for x, y in zip(self.times[a], self.times[b], strict=True)
        )

    def added(self, a: str, b: str) -> float:
        """Median over rounds of ``a − b`` (seconds)."""
        return statistics.median(x - y for x, y in zip(self.times[a], self.times[b], strict=True))


def interleaved_rounds(units: Callable[[], Case], timer: Timer, rounds: int, reps: int) -> Rounds:
    """The interleaved measurement of one configuration: ``units()`` builds a ``Case`` whose
    ``units()`` are timed. Each unit's first call with an empty inductor cache (cold), again
    after ``torch._dynamo.reset()`` on a fresh case (warm: from the cache), one more call each,
    then ``rounds`` rounds in which every unit in turn is timed ``reps`` times (``timer``: the
    median of the ``reps``), the load read after each round."""
    case = units()
    fns = case.units()
    cold = {k: timer.first(fn) for k, fn in fns.items()}
    load_cold = load()
    torch._dynamo.reset()  # the graphs again, from the inductor cache
    case = units()
    fns = case.units()
    warm = {k: timer.first(fn) for k, fn in fns.items()}
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    loads = []
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(timer(fn, reps))
        loads.append(load())
    return Rounds(case, cold, warm, load_cold, times, loads)


def cost_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per force, networks vs FLOP floor and compile latency, per chains × precision."""
    rows = []
    forces = {"hmc": LAYERS + 1, "none": 1 + 2 * LAYERS, "hidden16": 1 + 2 * LAYERS}
    forces["local"] = forces["none"]
    for precision in args.precisions:
        peak = matmul_peak(DTYPES[precision])
        rows.append(
            {"section": "peak", "precision": precision, "matmul_gflops": peak / 1e9, "load": load()}
        )
        report_row(rows[-1])
        for chains in args.chains:
            r = interleaved_rounds(
                functools.partial(Case, chains, precision), CpuClock(), args.rounds, args.reps
            )
            case, med = r.case, r.median
            added = r.added("hidden16", "none")
            flops = trajectory_net_flops(case.models["hidden16"], chains)
            floor = flops / peak
            computed = trajectory_net_flops(case.models["hidden16"], chains, computed=True)
            row = {
                "section": "cost",
                "chains": chains,
                "precision": precision,
                "compiled": case.compiled,
                "hmc_ms_per_force": 1e3 * med["hmc"] / forces["hmc"],
                "l2hmc_ms_per_force": 1e3 * med["none"] / forces["none"],
                "l2hmc_over_hmc_per_force": r.ratio("none", "hmc", forces["none"], forces["hmc"]),
                "traj_ms": {k: 1e3 * v for k, v in med.items()},
                "net_added_ms": 1e3 * added,
                "net_gflop": flops / 1e9,
                "net_floor_ms": 1e3 * floor,
                "net_over_floor": added / floor,
                "net_computed_gflop": computed / 1e9,
                "net_over_computed_floor": added / (computed / peak),
                "local_added_ms": 1e3 * r.added("local", "none"),
                "local_over_hmc_per_force": r.ratio("local", "hmc", forces["local"], forces["hmc"]),
                "cold_compile_s": r.cold,
                "warm_compile_s": r.warm,
                "load_cold": r.load_cold,
                "load": r.load,
            }
            rows.append(row)
            report_row(row)
    return rows


def baseline_runtime(rev: str) -> Any:
    """The runtime package (``l2hmcc/runtime``) of git revision ``rev``, exported with ``git
    archive`` into a temporary directory and imported under another name (its imports are
    relative), so that the runtime before a change runs beside the current one in one process."""
    import importlib
    import io
    import tarfile
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="l2hmcc-bench-baseline-"))
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "l2hmcc/runtime"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(out, filter="data")
    name = "baseline_runtime_" + "".join(ch for ch in rev if ch.isalnum())
    (out / "l2hmcc" / "runtime").rename(out / name)
    sys.path.insert(0, str(out))
    for module in ("pt.groups", "pt.networks", "pt.dynamics"):
        importlib.import_module(f"{name}.{module}")
    return importlib.import_module(name)


class LocalCase:
    """``network local`` (``LOCAL``, specs/u1.l2h's v-networks) with the Fourier filter
    ``fourier`` (``dynamics.fourier``; 0: none) compiled as generated jobs compile it, now and,
    with ``baseline``, as the runtime of another revision did, and the filtered ε-only sampler
    (``eps``, now's runtime: the ablation's cost); units: a trajectory without gradients and a
    train step (the proposal with gradients and the backward of a loss of it: ``logdet``, the
    acceptance-weighted ``cos`` distance, ``Σ v²``)."""

    def __init__(
        self,
        chains: int,
        precision: str,
        baseline: tuple[str, Any] | None,
        fourier: float = 0.5,
    ) -> None:
        dtype = DTYPES[precision]
        g = torch.Generator().manual_seed(0)
        self.x = U1.random(chains, SHAPE, dtype=dtype, generator=g)
        self.v = U1.random_momenta(self.x, g)
        self.beta = torch.tensor(BETA, dtype=dtype)
        runtimes: dict[str, Any] = {"now": None}
        if baseline is not None:
            runtimes[baseline[0]] = baseline[1]
        self.models: dict[str, Any] = {}
        for name, rt in runtimes.items():
            if rt is None:
                dyn_cls, cfg, net = Dynamics, DynamicsConfig, LOCAL
                grp = U1
            else:
                dyn_cls, cfg = rt.pt.dynamics.Dynamics, rt.pt.dynamics.DynamicsConfig
                net = rt.pt.networks.NetworkConfig(
                    **{k: getattr(LOCAL, k) for k in ("kind", "conv_filters", "conv_kernels")},
                    hidden=LOCAL.hidden,
                    activation=LOCAL.activation,
                )
                grp = rt.pt.groups.U1
            torch.manual_seed(0)
            dyn_config = cfg(leapfrog=LAYERS, fourier=fourier) if fourier else cfg(leapfrog=LAYERS)
            dyn = dyn_cls(grp, SHAPE, dyn_config, net, dtype=dtype)
            with torch.no_grad():  # heads that are not near zero: every term of the math runs
                for vnet in dyn.vnets:
                    w = vnet.head.weight
                    w.copy_(torch.linspace(-0.3, 0.3, w.numel(), dtype=dtype).reshape(w.shape))
            dyn.compile_proposal()
            self.models[name] = dyn
        eps = Dynamics(
            U1, SHAPE, DynamicsConfig(leapfrog=LAYERS, fourier=fourier), None, dtype=dtype
        )
        eps.compile_proposal()
        self.models["eps"] = eps

    def units(self) -> dict[str, Callable[[], Any]]:
        def trajectory(dyn: Any) -> Callable[[], Any]:
            def run() -> Any:
                dyn.eval()
                with torch.no_grad():
                    return dyn.propose(self.x, self.v, self.beta)

            return run

        def train(dyn: Any) -> Callable[[], Any]:
            def run() -> Any:
                dyn.train()
                p = dyn.propose(self.x, self.v, self.beta)
                distance = (1 - torch.cos(p.x - self.x)).flatten(1).sum(1)
                loss = p.logdet.sum() - (p.acceptance * distance).sum() + p.v.square().sum()
                dyn.zero_grad(set_to_none=True)
                loss.backward()
                return loss

            return run

        units = {f"traj {k}": trajectory(d) for k, d in self.models.items()}
        return units | {f"train {k}": train(d) for k, d in self.models.items()}


def local_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``network local``: trajectory and train step, now and (``--baseline REV``) as the
    runtime of revision REV compiled them, interleaved in one process."""
    baseline = None
    if args.baseline:
        baseline = (args.baseline, baseline_runtime(args.baseline))
    rows = []
    for precision in args.precisions:
        for chains in args.chains:
            r = interleaved_rounds(
                functools.partial(LocalCase, chains, precision, baseline, args.fourier),
                CpuClock(),
                args.rounds,
                args.reps,
            )
            row: dict[str, Any] = {
                "section": "local",
                "chains": chains,
                "precision": precision,
                "fourier": args.fourier,
                "over_eps": {u: r.ratio(f"{u} now", f"{u} eps") for u in ("traj", "train")},
                "ms": {k: 1e3 * v for k, v in r.median.items()},
                "cold_compile_s": r.cold,
                "warm_compile_s": r.warm,
                "load": r.load,
            }
            if baseline is not None:
                row["speedup"] = {
                    unit: r.ratio(f"{unit} {baseline[0]}", f"{unit} now")
                    for unit in ("traj", "train")
                }
            rows.append(row)
            report_row(row)
    return rows


class FourierCase:
    """The ε-only sampler with the Fourier filter (dense matmul, FFTs) and without it, compiled as jobs compile it; units: a trajectory without gradients and a
    train step (as ``LocalCase``)."""

    def __init__(self, chains: int, precision: str) -> None:
        dtype = DTYPES[precision]
        g = torch.Generator().manual_seed(0)
        self.x = U1.random(chains, SHAPE, dtype=dtype, generator=g)
        self.v = U1.random_momenta(self.x, g)
        self.beta = torch.tensor(BETA, dtype=dtype)
        self.models: dict[str, Any] = {}
        for name, m2 in {"dense": 0.5, "fft": 0.5, "plain": 0.0}.items():
            cfg = DynamicsConfig(leapfrog=LAYERS, fourier=m2)
            dyn = Dynamics(U1, SHAPE, cfg, None, dtype=dtype)
            if name == "fft":
                dyn.kinetic_full = None  # the filter through FFTs
            else:
                assert name == "plain" or dyn.kinetic_full is not None
            dyn.compile_proposal()
            self.models[name] = dyn

    units = LocalCase.units


def fourier_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The filtered ε-only sampler: the dense filter against the FFTs and against no filter,
    interleaved in one process."""
    rows = []
    for precision in args.precisions:
        for chains in args.chains:
            r = interleaved_rounds(
                functools.partial(FourierCase, chains, precision),
                CpuClock(),
                args.rounds,
                args.reps,
            )
            row: dict[str, Any] = {
                "section": "fourier",
                "chains": chains,
                "precision": precision,
                "ms": {k: 1e3 * v for k, v in r.median.items()},
                "fft_over_dense": {u: r.ratio(f"{u} fft", f"{u} dense") for u in ("traj", "train")},
                "dense_over_plain": {
                    u: r.ratio(f"{u} dense", f"{u} plain") for u in ("traj", "train")
                },
                "fft_over_plain": {u: r.ratio(f"{u} fft", f"{u} plain") for u in ("traj", "train")},
                "cold_compile_s": r.cold,
                "warm_compile_s": r.warm,
                "load": r.load,
            }
            rows.append(row)
            report_row(row)
    return rows


def _ours_seed_workload(compiled: bool) -> dict[str, Callable[[], Any]]:
    """Our train step and trajectory on ``specs/u1-seed.l2h``'s workload (``workloads.u1``)."""
    from workloads import WORKLOADS

    from l2hmcc.runtime.pt.trainer import TrainConfig, Trainer

    w = WORKLOADS["u1"]
    torch.manual_seed(0)
    cfg = TrainConfig(steps=10**6, chains=w.chains, lr=1e-4, precision="fp32", compile=compiled)
    tr = Trainer(w.group, w.shape, w.beta, w.dynamics, w.network, w.loss, cfg, log=None)
    state = {"x": tr.x.clone()}
    beta = tr._beta_tensor(w.beta)

    def trajectory() -> None:
        tr.model.eval()
        x = state["x"]
        v, d, u = tr.model.draw(x, tr.generator)
        with torch.no_grad():
            prop = tr.model.propose(x, v, beta, d)
        state["x"], _ = tr.model.accept(x, prop, u)

    return {"train": lambda: tr.train_step(w.beta), "traj": trajectory}


def seed_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The seed (PyPI ``l2hmc`` 0.13.0) beside ``specs/u1-seed.l2h``'s architecture, if it is
    installed with its runner: the seed runs in its own venv as a second process that times
    ``K`` calls when told to, so that its rounds alternate with ours (never at the same time)."""
    runner = ROOT / "bench" / "seed_runner.py"
    python = SEED_VENV / "bin" / "python"
    if not (python.exists() and runner.exists()) or args.no_seed:
        row = {
            "section": "seed",
            "figure": None,
            "note": "no side-by-side figure exists: the seed is not installed in "
            "bench/.seed-venv (bench/setup-seed.sh)" + (" or --no-seed" if args.no_seed else ""),
        }
        report_row(row)
        return [row]
    proc = subprocess.Popen(
        [str(python), str(runner)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    hello = json.loads(proc.stdout.readline())

    def seed(unit: str, n: int) -> float:
        proc.stdin.write(f"{unit} {n}\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        return statistics.median(json.loads(proc.stdout.readline())["cpu_s"])  # type: ignore[union-attr]

    rows = []
    try:
        for compiled in (False, True):
            ours = _ours_seed_workload(compiled)
            first = {k: first_call(fn) for k, fn in ours.items()}
            for unit in ("train", "traj"):
                seed(unit, 1)  # warm-up
                ours[unit]()
                r_ours, r_seed, loads = [], [], []
                for _ in range(args.seed_rounds):
                    r_ours.append(cpu_time(ours[unit], args.seed_reps))
                    r_seed.append(seed(unit, args.seed_reps))
                    loads.append(load())
                row = {
                    "section": "seed",
                    "unit": unit,
                    "ours": "compiled" if compiled else "eager",
                    "ours_s": statistics.median(r_ours),
                    "seed_s": statistics.median(r_seed),
                    "speedup": statistics.median(
                        s_ / o for s_, o in zip(r_seed, r_ours, strict=True)
                    ),
                    "ours_first_call_s": first[unit],
                    "seed_parameters": hello["parameters"],
                    "load": statistics.median(loads),
                }
                rows.append(row)
                report_row(row)
    finally:
        proc.stdin.write("quit\n")
        proc.stdin.close()
        proc.wait(timeout=60)
    return rows


#: the sections in order; other benchmarks append theirs (``(args) -> rows``)
SECTIONS: list[Callable[[argparse.Namespace], list[dict[str, Any]]]] = [
    cost_section,
    local_section,
    fourier_section,
    seed_section,
]


def report_row(row: dict[str, Any]) -> None:
    if row["section"] == "peak":
        print(
            f"matmul peak {row['precision']}: {row['matmul_gflops']:.1f} GFLOP/s "
            f"(load {row['load']:.1f})",
            flush=True,
        )
    elif row["section"] == "cost":
        t = row["traj_ms"]
        print(
            f"U1 16x16 x{row['chains']} {row['precision']} ({row['compiled']}, load "
            f"{row['load']:.1f}):\n"
            f"  per force: L2HMC {row['l2hmc_ms_per_force']:.4f} ms, HMC "
            f"{row['hmc_ms_per_force']:.4f} ms, ratio {row['l2hmc_over_hmc_per_force']:.2f}\n"
            f"  trajectory ms: HMC {t['hmc']:.2f}, L2HMC none {t['none']:.2f}, hidden16 "
            f"{t['hidden16']:.2f}; networks add {row['net_added_ms']:.2f} ms for "
            f"{row['net_gflop']:.3f} GFLOP (floor {row['net_floor_ms']:.2f} ms): "
            f"{row['net_over_floor']:.2f}x floor"
            + (
                f"; {row['net_over_computed_floor']:.2f}x the floor of the "
                f"{row['net_computed_gflop']:.3f} GFLOP computed (moved links' heads only)"
                if "net_over_computed_floor" in row
                else ""
            ),
            flush=True,
        )
        if "local_added_ms" in row:
            print(
                f"  network local (specs/u1.l2h's): trajectory {t['local']:.2f} ms, networks add "
                f"{row['local_added_ms']:.2f} ms; per force {row['local_over_hmc_per_force']:.2f}x"
                " HMC's",
                flush=True,
            )
        firsts = ", ".join(
            f"{k} {row['cold_compile_s'][k]:.1f}/{row['warm_compile_s'][k]:.1f}"
            for k in row["cold_compile_s"]
        )
        print(f"  first call s, cold (load {row['load_cold']:.1f}) / warm: {firsts}", flush=True)
    elif row["section"] == "local":
        ms = ", ".join(f"{k} {v:.2f}" for k, v in row["ms"].items())
        over = ", ".join(f"{k} {v:.2f}x" for k, v in row["over_eps"].items())
        print(
            f"network local U1 16x16 x{row['chains']} {row['precision']} fourier "
            f"{row['fourier']} (load {row['load']:.1f}): ms {ms}; now / eps: {over}"
            + (
                "; baseline / now: " + ", ".join(f"{k} {v:.2f}x" for k, v in row["speedup"].items())
                if "speedup" in row
                else ""
            ),
            flush=True,
        )
    elif row["section"] == "fourier":
        ms = ", ".join(f"{k} {v:.2f}" for k, v in row["ms"].items())
        ratios = ", ".join(
            f"{u}: fft/dense {row['fft_over_dense'][u]:.2f}x, dense/plain "
            f"{row['dense_over_plain'][u]:.2f}x, fft/plain {row['fft_over_plain'][u]:.2f}x"
            for u in ("traj", "train")
        )
        print(
            f"Fourier filter, network none U1 16x16 x{row['chains']} {row['precision']} (load "
            f"{row['load']:.1f}): ms {ms}; {ratios}",
            flush=True,
        )
    elif row["section"] == "seed" and "note" in row:
        print(f"seed side by side: {row['note']}", flush=True)
    elif row["section"] == "seed":
        print(
            f"seed side by side, U1 16x16 x128 seed network fp32, {row['unit']} (ours "
            f"{row['ours']}): ours {row['ours_s']:.3f} s, seed {row['seed_s']:.3f} s CPU: "
            f"{row['speedup']:.2f}x the seed (load {row['load']:.1f}; seed "
            f"{row['seed_parameters']} parameters)",
            flush=True,
        )
    else:
        print(json.dumps(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="64 chains, fp32, 3 rounds, 2 reps")
    ap.add_argument("--chains", default="64,1024")
    ap.add_argument("--precisions", default="fp32,fp64")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--seed-rounds", type=int, default=3)
    ap.add_argument("--seed-reps", type=int, default=3)
    ap.add_argument("--no-seed", action="store_true", help="skip the seed side by side")
    ap.add_argument(
        "--sections",
        default="cost,seed",
        help="comma-separated: cost, local, fourier, seed (and any added)",
    )
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="local section: also time the runtime of git revision REV (side by side)",
    )
    ap.add_argument(
        "--fourier",
        type=float,
        default=0.5,
        help="local section: dynamics.fourier (specs/u1.l2h: 0.5; 0: no filter)",
    )
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.chains, args.precisions, args.rounds, args.reps = "64", "fp32", 3, 5
        args.seed_rounds, args.seed_reps = 2, 2
    args.chains = [int(c) for c in str(args.chains).split(",")]
    args.precisions = str(args.precisions).split(",")
    torch.set_num_threads(1)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"inductor cache {os.environ['TORCHINDUCTOR_CACHE_DIR']}, load {load():.1f}",
        flush=True,
    )
    wanted = set(str(args.sections).split(","))
    rows = [
        row
        for section in SECTIONS
        if section.__name__.removesuffix("_section") in wanted
        for row in section(args)
    ]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
