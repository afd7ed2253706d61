"""Benchmark of the TensorFlow runtime: eager vs ``tf.function`` vs XLA, side by side.

Not a test: numbers depend on the machine and its load.  One thread (``OMP_NUM_THREADS=1``,
TF intra/inter-op threads = 1).  For every workload and mode it reports train steps/s, L2HMC
trajectories/s and HMC trajectories/s, the first call (tracing and compiling) separately, and
the ratios to eager.

Modes (``tf.trainer.COMPILE_MODES``): ``eager``; ``graph`` (plain ``tf.function``); ``xla``
(``train.compile``: graph-mode steps whose leapfrog layers run as one shared XLA executable,
forward and backward; XLA optimizer/accept steps; XLA HMC trajectory); ``xla-step`` (one XLA
function per train step and per evaluation trajectory, the layers a ``tf.while_loop``);
``xla-full`` (as ``xla-step`` with the layers unrolled; with ``--xla-full``, as it compiles for
minutes).

``--fusion MODE ...``: instead, the given modes side by side on the issue's workloads
(``FUSION``: U(1) 16×16 × 64 chains, 8 layers, ``hidden = [16]``; SU(3) 4⁴ × 8 chains, 4
layers, ``hidden = [16]``), every mode's trainer in this process, the first trajectory and
train step (tracing and XLA compilation) on their own, then interleaved rounds; CPU time.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_tf.py --fusion xla xla-step \
        --workloads u1 su3 --precisions fp32 fp64 [--rounds 5 --steps 3] [--json out.json]

Workloads (``../shared/reference/l2hmc.md``, as ``bench/bench_l2hmc_pt.py``):

* ``u1``: U(1) 16×16, 128 chains, 8 layers, merged, β = 4, ε₀ = 0.1, compact, the seed's
  network (conv 4→4→8→16(pool 2)→32, kernel 4, dense 7200 → 512 → 16, MLP 16×4, batch norm;
  60.2 M parameters).  HMC: ε = 0.125, 16 steps.  Seed: 3.8 s/train step, 1.2 s/trajectory.
* ``su3``: SU(3) 4⁴, 8 chains, 2 layers, ε₀ = 0.01, one hidden layer of 256, tanh, β = 6,
  loss plaquette 0.1.  HMC: ε = 0.1, 10 steps.  Seed: 2.25 s/train step, 0.64 s/trajectory.

``--quick``: U(1) 8×8 × 16 chains × 2 layers (small conv net), SU(3) 2⁴ × 2 chains × 1 layer,
fewer timed steps: a smoke run of the script (minutes), not the reference figures.

Each figure is the median over the timed calls after the warm-up ones; CPU time
(``process_time``) is reported next to wall time because, with one thread on a shared machine,
it does not count the time other processes held the core.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_tf.py [--quick] [--workloads u1 su3]
        [--modes eager graph xla] [--xla-full] [--precision fp32] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workloads import WORKLOADS, Workload

from l2hmcc.runtime.common.config import (
    DynamicsConfig,
    LossConfig,
    NetworkConfig,
    TrainConfig,
)
from l2hmcc.runtime.tf import hmc
from l2hmcc.runtime.tf.trainer import COMPILE_MODES, Trainer

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

QUICK = {
    "u1": Workload(
        "U1",
        (8, 8),
        4.0,
        16,
        DynamicsConfig(leapfrog=2, step_size=0.1),
        NetworkConfig(
            conv_filters=(4, 8),
            conv_kernels=(3,),
            conv_pool=(1, 2),
            hidden=(16, 16),
            batch_norm=True,
        ),
        LossConfig(),
        0.125,
        8,
    ),
    "su3": Workload(
        "SU3",
        (2, 2, 2, 2),
        6.0,
        2,
        DynamicsConfig(leapfrog=1, step_size=0.01),
        NetworkConfig(hidden=(32,), activation="tanh"),
        LossConfig(plaquette=0.1),
        0.1,
        5,
    ),
}


def timed(fn: Callable[[], Any], warmup: int, n: int) -> dict[str, float]:
    """First call (traces/compiles), then median wall and CPU seconds of ``n`` calls after
    ``warmup`` more."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"first_s": first, "wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}


def measure(w: Workload, mode: str, precision: str, warmup: int, n: int) -> dict[str, Any]:
    cfg = TrainConfig(steps=10**6, chains=w.chains, lr=1e-4, precision=precision, log_every=0)
    tr = Trainer(
        w.group, w.shape, w.beta, w.dynamics, w.network, w.loss, cfg, log=None, compile_mode=mode
    )
    params = sum(int(v.shape.num_elements()) for _, v in tr.params)
    out: dict[str, Any] = {"mode": mode, "params": params}
    out["train"] = timed(lambda: tr.train_step(w.beta), warmup, n)
    x0 = tr.x
    bt = tr._beta_tensor(w.beta)
    state = {"x": x0}

    def trajectory() -> None:
        x = state["x"]
        v, d, u = tr.model.draw(x, tr.generator)
        prop = tr._xla_guard("propose", x, v, bt, d)
        state["x"], metrics = tr._finish_fn(x, prop, u)
        float(metrics["accept_prob"][0])  # wait for the result

    out["trajectory"] = timed(trajectory, warmup, n)
    integrator = (
        None if mode == "eager" else hmc.compile_leapfrog("graph" if mode == "graph" else "xla")
    )
    hstate = {"x": x0}

    def hmc_trajectory() -> None:
        hstate["x"], metrics = hmc.hmc_step(
            hstate["x"], w.beta, w.hmc_eps, w.hmc_steps, tr.generator, integrator=integrator
        )
        float(metrics["accept_prob"][0])

    out["hmc"] = timed(hmc_trajectory, warmup, n)
    return out


#: ``--fusion`` workloads (issue 12's): U(1) 16×16, 64 chains, 8 layers, ``hidden = [16]``;
#: SU(3) 4⁴, 8 chains, 4 layers, ``hidden = [16]`` (as ``bench_su3_compile.py --tf``)
FUSION = {
    "u1": Workload(
        "U1",
        (16, 16),
        4.0,
        64,
        DynamicsConfig(leapfrog=8, step_size=0.1, directions="merged", x_update="compact"),
        NetworkConfig(hidden=(16,)),
        LossConfig(plaquette=1.0, charge=0.0),
    ),
    "su3": Workload(
        "SU3",
        (4, 4, 4, 4),
        6.0,
        8,
        DynamicsConfig(leapfrog=4, step_size=0.01, directions="merged"),
        NetworkConfig(hidden=(16,), activation="tanh"),
        LossConfig(plaquette=0.1, charge=0.0),
    ),
}


def _load() -> float:
    return os.getloadavg()[0]


def fusion(name: str, precision: str, modes: list[str], rounds: int, reps: int) -> dict[str, Any]:
    """The compile modes side by side in this process: per mode the first trajectory and the
    first train step (tracing and XLA compilation: CPU and wall seconds), then ``rounds``
    rounds timing ``reps`` trajectories and ``reps`` train steps of every mode in turn
    (interleaved); medians of the per-round medians (CPU seconds) and of the per-round ratios
    to the first mode."""
    w = FUSION[name]
    trainers = {}
    for mode in modes:
        cfg = TrainConfig(steps=10**6, chains=w.chains, lr=1e-4, precision=precision, log_every=0)
        trainers[mode] = Trainer(
            w.group,
            w.shape,
            w.beta,
            w.dynamics,
            w.network,
            w.loss,
            cfg,
            log=None,
            compile_mode=mode,
        )

    def trajectory(mode: str) -> None:
        tr = trainers[mode]
        tr.evaluate(1, w.beta)  # one eval trajectory through the trainer's own path
        float(tr.histories["eval"]["accept_prob"][-1][0])

    def train(mode: str) -> None:
        tr = trainers[mode]
        float(tr.train_step(w.beta)["accept_prob"][0])

    units = {"trajectory": trajectory, "train": train}
    row: dict[str, Any] = {"workload": name, "precision": precision, "modes": modes}
    first: dict[str, dict[str, float]] = {}
    for unit, fn in units.items():
        for mode in modes:
            t0, c0 = time.perf_counter(), time.process_time()
            fn(mode)
            first[f"{unit}/{mode}"] = {
                "cpu_s": time.process_time() - c0,
                "wall_s": time.perf_counter() - t0,
                "load": _load(),
            }
            fn(mode)
            print(
                f"  {name} {precision} {unit} {mode}: first call "
                f"{first[f'{unit}/{mode}']['cpu_s']:.1f} CPU s",
                flush=True,
            )
    per_round: dict[str, list[float]] = {}
    loads = []
    for _ in range(rounds):
        for unit, fn in units.items():
            for mode in modes:
                ts = []
                for _ in range(reps):
                    c0 = time.process_time()
                    fn(mode)
                    ts.append(time.process_time() - c0)
                per_round.setdefault(f"{unit}/{mode}", []).append(statistics.median(ts))
        loads.append(_load())
    base = modes[0]
    row["first"] = first
    row["cpu_s"] = {k: statistics.median(v) for k, v in per_round.items()}
    row["speedup_vs_" + base] = {
        f"{unit}/{mode}": statistics.median(
            b / m
            for b, m in zip(per_round[f"{unit}/{base}"], per_round[f"{unit}/{mode}"], strict=True)
        )
        for unit in units
        for mode in modes
    }
    row["compile_mode_after"] = {m: tr.compile_mode for m, tr in trainers.items()}
    row["load_min_max"] = [min(loads), max(loads)]
    return row


def fusion_report(row: dict[str, Any]) -> str:
    w = FUSION[row["workload"]]
    base = row["modes"][0]
    lines = [
        f"\n{w.group} {'x'.join(map(str, w.shape))}, {w.chains} chains, {w.dynamics.leapfrog} "
        f"layers, hidden {list(w.network.hidden)}, {row['precision']} (load "
        f"{row['load_min_max'][0]:.1f}-{row['load_min_max'][1]:.1f}); CPU ms per call, "
        f"ratio to {base!r}, first call CPU s",
    ]
    for unit in ("trajectory", "train"):
        cells = [
            f"{m} {row['cpu_s'][f'{unit}/{m}'] * 1e3:.1f} ms "
            f"({row['speedup_vs_' + base][f'{unit}/{m}']:.2f}x, first "
            f"{row['first'][f'{unit}/{m}']['cpu_s']:.1f} s)"
            for m in row["modes"]
        ]
        lines.append(f"  {unit:10s} " + "; ".join(cells))
    return "\n".join(lines)


def report(name: str, w: Workload, rows: list[dict[str, Any]], precision: str) -> str:
    lines = [
        f"\n{name}: {w.group} {'x'.join(map(str, w.shape))}, {w.chains} chains, "
        f"{w.dynamics.leapfrog} layers, {precision}, {rows[0]['params'] / 1e6:.2f} M parameters",
        f"{'':10s} {'train step/s':>14s} {'first (s)':>10s} {'L2HMC traj/s':>14s} "
        f"{'first (s)':>10s} {'HMC traj/s':>12s} {'first (s)':>10s}   ratios to eager (cpu)",
    ]
    base = {k: rows[0][k]["cpu_s"] for k in ("train", "trajectory", "hmc")}
    for r in rows:
        cells = []
        for k in ("train", "trajectory", "hmc"):
            cells.append(f"{1 / r[k]['wall_s']:8.3g}/{1 / r[k]['cpu_s']:<5.3g}")
            cells.append(f"{r[k]['first_s']:10.1f}")
        ratios = " ".join(
            f"{base[k] / r[k]['cpu_s']:5.2f}x" for k in ("train", "trajectory", "hmc")
        )
        lines.append(
            f"{r['mode']:10s} {cells[0]:>14s} {cells[1]} {cells[2]:>14s} {cells[3]} "
            f"{cells[4]:>12s} {cells[5]}   {ratios}"
        )
    lines.append("(rates as wall/cpu; 'first' = first call: tracing and XLA compilation)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small workloads (a smoke run)")
    ap.add_argument("--workloads", nargs="+", default=["u1", "su3"], choices=sorted(WORKLOADS))
    ap.add_argument(
        "--modes",
        nargs="+",
        default=["eager", "graph", "xla"],
        choices=list(COMPILE_MODES),
    )
    ap.add_argument("--xla-full", action="store_true", help="also time mode xla-full")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "fp64"])
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="timed calls per figure")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--fusion",
        nargs="+",
        metavar="MODE",
        help="instead: these compile modes side by side on the FUSION workloads "
        "(--workloads, --precisions; --rounds, --steps as reps)",
    )
    ap.add_argument("--precisions", nargs="+", default=None, choices=["fp32", "fp64"])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if args.fusion:
        print(
            f"TensorFlow {tf.__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
            f"one thread, load {_load():.1f}",
            flush=True,
        )
        rows = []
        for name in args.workloads:
            for precision in args.precisions or [args.precision]:
                row = fusion(name, precision, args.fusion, args.rounds, args.steps or 3)
                rows.append(row)
                print(fusion_report(row), flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=2))
        return
    modes = list(args.modes) + (["xla-full"] if args.xla_full else [])
    if "eager" not in modes:
        modes.insert(0, "eager")
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    n = args.steps if args.steps is not None else (3 if args.quick else 5)
    table = QUICK if args.quick else WORKLOADS
    print(
        f"TensorFlow {tf.__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
        f"one thread; warmup {warmup}, median of {n}",
        flush=True,
    )
    results: dict[str, Any] = {}
    for name in args.workloads:
        w = table[name]
        rows = []
        for mode in modes:
            rows.append(measure(w, mode, args.precision, warmup, n))
            print(f"  {name} {mode}: done", flush=True)
        results[name] = rows
        print(report(name, w, rows, args.precision), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
