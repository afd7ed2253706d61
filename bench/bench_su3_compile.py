"""SU(3) L2HMC compiled (``train.compile``: planar real pairs, ``su_pairs``) against eager, side by
side in one process.

Not a test: the numbers depend on the machine and its load (printed with every figure).  One
thread (``OMP_NUM_THREADS=1``); CPU seconds per call (``time.process_time``), so time the
core spent on other processes is not counted.  For every lattice and precision:

* two trainers with the same seed, ``train.compile`` false and true (the trainer's own path:
  ``Dynamics.compile_proposal``, which compiles SU(N) layers on planar pairs);
* cold compile: the first compiled trajectory and the first compiled train step, with a fresh
  ``TORCHINDUCTOR_CACHE_DIR`` (a temporary directory unless ``--cache-dir`` is given); warm
  compile: the same after ``torch._dynamo.reset()`` (dynamo traces again, inductor's FX graph
  cache answers).  Both as wall seconds and as CPU seconds of the process and the C++
  compiler (``TORCHINDUCTOR_COMPILE_THREADS=1`` keeps compilation in-process), the figure
  a loaded machine does not distort;
* then ``--repeats`` rounds, each timing one eager and one compiled trajectory (draw, propose
  without gradients, accept) and one eager and one compiled train step, interleaved; the
  figures are the medians.

Workload: SU(3), 8 chains, ``--layers`` leapfrog layers (4), ε₀ = 0.01, merged directions,
β = 6, loss plaquette 0.1, a dense network ``--hidden`` (16; 256 is the seed's width, whose
140 M fp64 parameters at 4⁴ are read from memory twice per layer and dominate both modes).

``--tf``: the same workload in the TensorFlow runtime, its ``eager``, ``graph`` and ``xla``
trainer modes interleaved (whether XLA fuses the complex SU(N) arithmetic there).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_su3_compile.py \\
        [--shape 4,4,4,4] [--precision fp64] [--hidden 16] [--repeats 5] [--tf] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
# inductor compiles in this process (its C++ compiler a waited-for child), so that the CPU time
# of compilation can be measured: on a loaded machine wall time says little
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _load() -> float:
    return os.getloadavg()[0]


def _cpu_with_children() -> float:
    """CPU seconds of this process and of its finished children (the C++ compiler)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", action="append", help="lattice extents, e.g. 4,4,4,4 (repeatable)")
    ap.add_argument("--precision", action="append", choices=("fp32", "fp64"))
    ap.add_argument("--hidden", default="16", help="widths of the dense network, e.g. 16 or 256")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-train", action="store_true", help="trajectories only")
    ap.add_argument("--cache-dir", help="TORCHINDUCTOR_CACHE_DIR (default: a fresh one)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--tf", action="store_true", help="the TensorFlow runtime: eager, graph, XLA")
    args = ap.parse_args()
    if args.tf:
        tf_main(args)
        return
    cache = args.cache_dir or tempfile.mkdtemp(prefix="inductor-su3-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache

    import torch  # after TORCHINDUCTOR_CACHE_DIR

    from l2hmcc.runtime.common.config import DynamicsConfig, LossConfig, NetworkConfig, TrainConfig
    from l2hmcc.runtime.pt.trainer import Trainer

    torch.set_num_threads(1)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    shapes = [tuple(int(n) for n in s.split(",")) for s in (args.shape or ["4,4,4,4"])]
    results = []
    print(f"torch {torch.__version__}, inductor cache {cache}, load {_load():.1f}", flush=True)
    for shape in shapes:
        for precision in args.precision or ["fp64"]:

            def trainer(
                compiled: bool, shape: tuple[int, ...] = shape, p: str = precision
            ) -> Trainer:
                torch.manual_seed(0)
                cfg = TrainConfig(
                    steps=10**6, chains=args.chains, lr=1e-4, precision=p, compile=compiled
                )
                dyn = DynamicsConfig(leapfrog=args.layers, step_size=0.01, directions="merged")
                net = NetworkConfig(hidden=hidden, activation="tanh")
                return Trainer(
                    "SU3", shape, 6.0, dyn, net, LossConfig(plaquette=0.1), cfg, log=None
                )

            eager, comp = trainer(False), trainer(True)
            beta = torch.tensor(6.0, dtype=eager.dtype)

            def trajectory(tr: Trainer, beta: torch.Tensor = beta) -> None:
                tr.model.eval()
                v, d, u = tr.model.draw(tr.x, tr.generator)
                with torch.no_grad():
                    prop = tr.model.propose(tr.x, v, beta, d)
                tr.x = tr.model.accept(tr.x, prop, u)[0]

            def train(tr: Trainer) -> None:
                tr.train_step(6.0)

            def cpu(fn, tr: Trainer) -> float:
                c = time.process_time()
                fn(tr)
                return time.process_time() - c

            def first_call(fn, tr: Trainer) -> tuple[float, float]:
                """(wall s, CPU s of this process and its finished children: gcc)."""
                t, c = time.perf_counter(), _cpu_with_children()
                fn(tr)
                return time.perf_counter() - t, _cpu_with_children() - c

            phases = [("trajectory", trajectory)] + ([] if args.no_train else [("train", train)])
            row: dict = {"shape": list(shape), "precision": precision, "hidden": list(hidden)}
            row["parameters"] = sum(p.numel() for p in eager.model.parameters())
            for name, fn in phases:
                for kind in ("cold", "warm"):
                    if kind == "warm":
                        torch._dynamo.reset()
                    w, c = first_call(fn, comp)
                    row[f"{name}_{kind}_compile_wall_s"] = w
                    row[f"{name}_{kind}_compile_cpu_s"] = c
                    print(
                        f"  {shape} {precision} {name}: {kind} compile (first call) "
                        f"{c:.1f} CPU s, {w:.1f} s wall, load {_load():.1f}",
                        flush=True,
                    )
                fn(comp)
                fn(eager)
            loads = []
            times: dict[str, list[float]] = {}
            for _ in range(args.repeats):
                loads.append(_load())
                for name, fn in phases:
                    times.setdefault(f"{name}_eager_s", []).append(cpu(fn, eager))
                    times.setdefault(f"{name}_compiled_s", []).append(cpu(fn, comp))
            for key, ts in times.items():
                row[key] = statistics.median(ts)
            for name, _ in phases:
                row[f"{name}_speedup"] = row[f"{name}_eager_s"] / row[f"{name}_compiled_s"]
            row["load_min_max"] = [min(loads), max(loads)]
            results.append(row)
            line = ", ".join(
                f"{name} {row[f'{name}_eager_s'] * 1e3:.0f} / {row[f'{name}_compiled_s'] * 1e3:.0f} ms "
                f"({row[f'{name}_speedup']:.2f}x)"
                for name, _ in phases
            )
            print(
                f"{shape} {precision} hidden {hidden}: eager / compiled CPU median: {line}; "
                f"load {min(loads):.1f}-{max(loads):.1f}",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def tf_main(args: argparse.Namespace) -> None:
    """The same workload in the TensorFlow runtime: trajectories and train steps in the
    trainer's ``eager``, ``graph`` (plain ``tf.function``) and ``xla`` (``train.compile``:
    XLA layers) modes, interleaved; the first call (tracing and XLA compilation) separately."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from l2hmcc.runtime.common.config import DynamicsConfig, LossConfig, NetworkConfig, TrainConfig
    from l2hmcc.runtime.tf.trainer import Trainer

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    results = []
    print(f"tensorflow {tf.__version__}, load {_load():.1f}", flush=True)
    for shape in [tuple(int(n) for n in s.split(",")) for s in (args.shape or ["4,4,4,4"])]:
        for precision in args.precision or ["fp64"]:
            trainers = {}
            for mode in ("eager", "graph", "xla"):
                cfg = TrainConfig(steps=10**6, chains=args.chains, lr=1e-4, precision=precision)
                dyn = DynamicsConfig(leapfrog=args.layers, step_size=0.01, directions="merged")
                net = NetworkConfig(hidden=hidden, activation="tanh")
                loss = LossConfig(plaquette=0.1)
                trainers[mode] = Trainer(
                    "SU3", shape, 6.0, dyn, net, loss, cfg, log=None, compile_mode=mode
                )

            def trajectory(tr: Trainer) -> None:
                bt = tr._beta_tensor(6.0)
                v, d, u = tr.model.draw(tr.x, tr.generator)
                prop = tr._xla_guard("propose", tr.x, v, bt, d)
                tr.x = tr._finish_fn(tr.x, prop, u)[0]

            def train(tr: Trainer) -> None:
                tr.train_step(6.0)

            phases = [("trajectory", trajectory)] + ([] if args.no_train else [("train", train)])
            row: dict = {"framework": "tf", "shape": list(shape), "precision": precision}
            for name, fn in phases:
                for mode, tr in trainers.items():
                    t, c = time.perf_counter(), _cpu_with_children()
                    fn(tr)
                    row[f"{name}_{mode}_first_cpu_s"] = _cpu_with_children() - c
                    row[f"{name}_{mode}_first_wall_s"] = time.perf_counter() - t
                    fn(tr)
            loads, times = [], {}
            for _ in range(args.repeats):
                loads.append(_load())
                for name, fn in phases:
                    for mode, tr in trainers.items():
                        c = time.process_time()
                        fn(tr)
                        times.setdefault(f"{name}_{mode}_s", []).append(time.process_time() - c)
            row.update({k: statistics.median(v) for k, v in times.items()})
            row["load_min_max"] = [min(loads), max(loads)]
            results.append(row)
            for name, _ in phases:
                e = row[f"{name}_eager_s"]
                print(
                    f"{shape} {precision} {name}: "
                    + ", ".join(
                        f"{m} {row[f'{name}_{m}_s'] * 1e3:.0f} ms ({e / row[f'{name}_{m}_s']:.2f}x"
                        f", first {row[f'{name}_{m}_first_cpu_s']:.1f} CPU s)"
                        for m in trainers
                    )
                    + f"; load {min(loads):.1f}-{max(loads):.1f}",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
