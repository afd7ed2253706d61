"""HMC trajectories per second with the PyTorch runtime: eager vs torch.compile, fp32 vs fp64.

Workloads (the seed's, see ../shared/reference/l2hmc.md):

* U(1) 16×16, 128 chains, β = 4, 16 leapfrog steps of ε = 0.125 (the seed's HMC baseline);
* SU(3) 4⁴, 8 chains, β = 6, 8 leapfrog steps of ε = 0.05.

One trajectory = momentum refresh, leapfrog (n + 1 forces, n link updates), Metropolis test,
plaquette and charge (U1: integer and sine charge; SU(3): the clover charge is left out with
``--no-charge``).  Every variant runs in the same process, one after the other, after a warm-up
(which includes compilation; its time is reported separately), with ``torch.set_num_threads``
set from ``--threads`` (default 1, as in CI).  The table reports trajectories per second and
the ratios compiled/eager and fp32/fp64 side by side.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_hmc_pt.py            # all (a few minutes)
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_hmc_pt.py --quick    # fewer trajectories
    .venv/bin/python bench/bench_hmc_pt.py --only u1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from l2hmcc.runtime.pt import hmc
from l2hmcc.runtime.pt.groups import SU3, U1, GaugeGroup


@dataclass(frozen=True)
class Workload:
    name: str
    group: GaugeGroup
    shape: tuple[int, ...]
    batch: int
    beta: float
    eps: float
    n_steps: int


WORKLOADS = {
    "u1": Workload("U1 16x16 x128", U1, (16, 16), 128, 4.0, 0.125, 16),
    "su3": Workload("SU3 4^4 x8", SU3, (4, 4, 4, 4), 8, 6.0, 0.05, 8),
}


@dataclass
class Result:
    workload: str
    dtype: str
    mode: str
    traj_per_s: float
    ms_per_traj: float
    warmup_s: float
    acceptance: float
    n_traj: int


def run_one(wl: Workload, dtype: torch.dtype, compiled: bool, n_traj: int, charge: bool) -> Result:
    g = torch.Generator().manual_seed(0)
    links = wl.group.random(wl.batch, wl.shape, dtype=dtype, generator=g)
    integ = hmc.compile_leapfrog(dynamic=False) if compiled else None
    t0 = time.perf_counter()
    for _ in range(2):  # warm-up: compilation and allocator
        links, met = hmc.hmc_step(
            links, wl.beta, wl.eps, wl.n_steps, g, integrator=integ, measure_charge=charge
        )
    warm = time.perf_counter() - t0
    acc = 0.0
    t0 = time.perf_counter()
    for _ in range(n_traj):
        links, met = hmc.hmc_step(
            links, wl.beta, wl.eps, wl.n_steps, g, integrator=integ, measure_charge=charge
        )
        acc += float(met["accept_prob"].mean())
    dt = time.perf_counter() - t0
    return Result(
        workload=wl.name,
        dtype=str(dtype).replace("torch.", ""),
        mode="compiled" if compiled else "eager",
        traj_per_s=n_traj / dt,
        ms_per_traj=1e3 * dt / n_traj,
        warmup_s=warm,
        acceptance=acc / n_traj,
        n_traj=n_traj,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    ap.add_argument("--quick", action="store_true", help="fewer trajectories (smoke run)")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-charge", action="store_true", help="skip the charge measurements")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_traj = {"u1": 10 if args.quick else 60, "su3": 3 if args.quick else 20}
    modes = [False] if args.no_compile else [False, True]
    results: list[Result] = []
    for key in args.only or ["u1", "su3"]:
        wl = WORKLOADS[key]
        for dtype in (torch.float64, torch.float32):
            for compiled in modes:
                r = run_one(wl, dtype, compiled, n_traj[key], charge=not args.no_charge)
                results.append(r)
                print(
                    f"{r.workload:16s} {r.dtype:8s} {r.mode:9s} {r.traj_per_s:9.2f} traj/s "
                    f"{r.ms_per_traj:9.2f} ms/traj  warm-up {r.warmup_s:6.1f} s  acc {r.acceptance:.2f}",
                    flush=True,
                )
    print()
    print(
        f"{'workload':16s} {'dtype':8s} {'eager':>10s} {'compiled':>10s} {'comp/eager':>11s} {'fp32/fp64':>10s}"
    )
    by = {(r.workload, r.dtype, r.mode): r.traj_per_s for r in results}
    for key in args.only or ["u1", "su3"]:
        name = WORKLOADS[key].name
        for dt in ("float64", "float32"):
            e = by.get((name, dt, "eager"))
            c = by.get((name, dt, "compiled"))
            e64 = by.get((name, "float64", "eager"))
            ratio_c = f"{c / e:11.2f}" if c and e else f"{'-':>11s}"
            ratio_p = f"{e / e64:10.2f}" if e and e64 else f"{'-':>10s}"
            print(f"{name:16s} {dt:8s} {e or 0:10.2f} {c or 0:10.2f} {ratio_c} {ratio_p}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
