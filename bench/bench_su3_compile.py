"""SU(3) L2HMC compiled (``train.compile``: planar real pairs, ``su_pairs``) against eager, side by
side in one process.

Not a test: the numbers depend on the machine and its load (printed with every figure).  One
thread (``OMP_NUM_THREADS=1``); CPU seconds per call (``time.process_time``), so time the
core spent on other processes is not counted.  For every lattice and precision:

* two trainers with the same seed, one eager and one with ``Dynamics.compile_layers()``;
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

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_su3_compile.py \\
        [--shape 4,4,4,4] [--precision fp64] [--hidden 16] [--repeats 5] [--json out.json]
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
    args = ap.parse_args()
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
                cfg = TrainConfig(steps=10**6, chains=args.chains, lr=1e-4, precision=p)
                dyn = DynamicsConfig(leapfrog=args.layers, step_size=0.01, directions="merged")
                net = NetworkConfig(hidden=hidden, activation="tanh")
                tr = Trainer("SU3", shape, 6.0, dyn, net, LossConfig(plaquette=0.1), cfg, log=None)
                if compiled:
                    tr.model.compile_layers()
                return tr

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


if __name__ == "__main__":
    main()
