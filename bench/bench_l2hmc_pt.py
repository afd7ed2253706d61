"""Benchmark of the PyTorch L2HMC sampler: train steps/s and trajectories/s, eager vs compiled,
fp32 and fp64, on the seed's architectures (the seed itself runs beside ours in
``bench_cost.py --sections seed``).

Not a test: numbers depend on the machine and its load. One thread (``OMP_NUM_THREADS=1``).

Workloads (``../shared/reference/l2hmc.md``):

* ``u1``: U(1) 16×16, 128 chains, 8 layers, merged directions, β = 4, ε₀ = 0.1 learnable,
  compact x update, separate networks, split x-networks, the seed's default network
  (``networks.seed_u1_network``: conv 4→4→8→16(pool 2)→32, kernel 4, flatten 7200 → 512 → 16,
  MLP 16×4, batch norm; 60.2 M parameters). Seed: 3.8 s/train step, 1.2 s/trajectory.
* ``su3``: SU(3) 4⁴, 8 chains, 2 layers, ε₀ = 0.01, one hidden layer of 256, tanh, no conv,
  β = 6, loss plaquette 0.1, charge 0. Seed: 2.25 s/train step, 0.64 s/trajectory.

A train step is ``Trainer.train_step`` (draw, propose in train mode, loss, backward, Adam step,
accept); a trajectory is draw + ``propose`` (eval mode, no gradients) + accept. Each figure is the
median over the timed steps after ``--warmup`` untimed ones (the first of which compiles).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_l2hmc_pt.py [--quick] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workloads import WORKLOADS, Workload

from l2hmcc.runtime.pt.trainer import TrainConfig, Trainer


def trainer(w: Workload, precision: str, compiled: bool) -> Trainer:
    """The workload's trainer, its layers compiled (``Dynamics.compile_layers``) if asked."""
    torch.manual_seed(0)
    cfg = TrainConfig(
        steps=10**6, chains=w.chains, lr=1e-4, precision=precision, log_every=0, compile=False
    )
    tr = Trainer(w.group, w.shape, w.beta, w.dynamics, w.network, w.loss, cfg, log=None)
    if compiled:
        tr.model.compile_layers()
    return tr


def timed(fn, warmup: int, n: int) -> tuple[float, float, float]:
    """(wall seconds of the first call, median wall seconds and median CPU seconds of ``n`` calls
    after ``warmup`` calls). With one thread the CPU time is the better figure on a shared
    machine: it does not count the time other processes held the core."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        fn()
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return first, statistics.median(wall), statistics.median(cpu)


def measure(
    name: str, precision: str, compiled: bool, warmup: int, n_train: int, n_traj: int
) -> dict:
    w = WORKLOADS[name]
    torch._dynamo.reset()  # every configuration compiles its own graphs (the disk cache stays)
    tr = trainer(w, precision, compiled)
    params = sum(p.numel() for p in tr.model.parameters())

    def train_step() -> None:
        tr.train_step(w.beta)

    state = {"x": tr.x.clone()}

    def trajectory() -> None:
        tr.model.eval()
        x = state["x"]
        v, d, u = tr.model.draw(x, tr.generator)
        with torch.no_grad():
            prop = tr.model.propose(x, v, tr._beta_tensor(w.beta), d)
        state["x"], _ = tr.model.accept(x, prop, u)

    first_traj, traj_wall, traj = timed(trajectory, warmup, n_traj)
    first_train, train_wall, train = timed(train_step, warmup, n_train)
    return {
        "workload": name,
        "precision": precision,
        "mode": "compiled" if compiled else "eager",
        "parameters": params,
        "train_s": train,
        "traj_s": traj,
        "train_wall_s": train_wall,
        "traj_wall_s": traj_wall,
        "first_train_s": first_train,
        "first_traj_s": first_traj,
    }


def _cols(e: dict, c: dict | None, key: str) -> str:
    if c is None:
        return f"{e[key]:12.3f} {'-':>9} {'-':>7}"
    ratio = e[key] / c[key]
    return f"{e[key]:12.3f} {c[key]:9.3f} {ratio:7.2f}"


def table(results: list[dict]) -> str:
    """Side by side: eager and compiled seconds (CPU time) and their ratio."""
    by = {(r["workload"], r["precision"], r["mode"]): r for r in results}
    head = (
        f"{'workload':8} {'prec':5} | {'train s/step':>12} {'compiled':>9} {'x comp':>7} "
        f"| {'traj s':>12} {'compiled':>9} {'x comp':>7} "
        f"| first call s, eager/compiled (train; traj)"
    )
    lines = [head, "-" * len(head)]
    for (name, prec, mode), e in by.items():
        if mode != "eager":
            continue
        c = by.get((name, prec, "compiled"))
        firsts = ""
        if c is not None:
            firsts = (
                f"{e['first_train_s']:.1f}/{c['first_train_s']:.1f}; "
                f"{e['first_traj_s']:.1f}/{c['first_traj_s']:.1f}"
            )
        lines.append(
            f"{name:8} {prec:5} | {_cols(e, c, 'train_s')} | {_cols(e, c, 'traj_s')} | {firsts}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="2 timed steps each (compilation still dominates)"
    )
    ap.add_argument("--workloads", default="u1,su3")
    ap.add_argument("--precisions", default="fp32,fp64")
    ap.add_argument("--modes", default="eager,compiled")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    warmup, n_train, n_traj = (2, 2, 3) if args.quick else (2, 5, 10)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"inductor cache {os.environ.get('TORCHINDUCTOR_CACHE_DIR', 'default')}",
        flush=True,
    )
    results = []
    for name in args.workloads.split(","):
        for prec in args.precisions.split(","):
            for mode in args.modes.split(","):
                r = measure(name, prec, mode == "compiled", warmup, n_train, n_traj)
                results.append(r)
                print(
                    f"  {name} {prec} {mode}: {r['parameters'] / 1e6:.2f} M params, "
                    f"train {r['train_s']:.3f} s/step CPU ({r['train_wall_s']:.3f} wall, "
                    f"first {r['first_train_s']:.1f}), trajectory {r['traj_s']:.3f} s CPU "
                    f"({r['traj_wall_s']:.3f} wall, first {r['first_traj_s']:.1f})",
                    flush=True,
                )
    print()
    print(table(results))
    print("x comp = eager/compiled; the seed side by side: bench/bench_cost.py --sections seed")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
