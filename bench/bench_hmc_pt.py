"""HMC trajectories per second with the PyTorch runtime: eager vs torch.compile, fp32 vs fp64.

Workloads (the seed's, see ../shared/reference/l2hmc.md):

* U(1) 16×16, 128 chains, β = 4, 16 leapfrog steps of ε = 0.125 (the seed's HMC baseline);
* SU(3) 4⁴, 8 chains, β = 6, 8 leapfrog steps of ε = 0.05.

One trajectory = momentum refresh, leapfrog (n + 1 forces, n link updates), Metropolis test,
plaquette and charge (U1: integer and sine charge; SU(3): unsmoothed clover charge; leave them
out with ``--no-charge``).  All variants (fp64/fp32 × eager/compiled) run in the same process:
each is warmed up first (two trajectories, including compilation, timed separately; a cold
inductor cache adds ~5 s for U1 and ~30-60 s for SU(3)), then they run interleaved in
``--rounds`` rounds, and each variant is reported by its fastest round (the median too): on a
shared machine the load drifts, and interleaving keeps the ratios fair.  ``torch.set_num_threads``
comes from ``--threads`` (default 1, as in CI).  The compiled SU(3) integrator runs on planar
real (re, im) arrays (``l2hmcc.runtime.pt.su_pairs``).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_hmc_pt.py            # all (a few minutes)
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_hmc_pt.py --quick    # fewer trajectories
    .venv/bin/python bench/bench_hmc_pt.py --only u1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    traj_per_s: float  #: from the fastest round (wall clock)
    ms_per_traj: float  #: fastest round (wall clock)
    ms_per_traj_median: float  #: median over rounds (wall clock)
    cpu_ms_per_traj: float  #: fastest round in process CPU time (robust to a shared machine)
    warmup_s: float  #: first two trajectories, including compilation
    acceptance: float
    n_traj: int


class Variant:
    """One (workload, dtype, mode) combination with its chains, kept between rounds."""

    def __init__(self, wl: Workload, dtype: torch.dtype, compiled: bool, charge: bool) -> None:
        self.wl, self.dtype, self.compiled, self.charge = wl, dtype, compiled, charge
        self.g = torch.Generator().manual_seed(0)
        self.links = wl.group.random(wl.batch, wl.shape, dtype=dtype, generator=self.g)
        self.integ = hmc.compile_leapfrog() if compiled else None
        self.rounds: list[float] = []
        self.cpu_rounds: list[float] = []
        self.acc: list[float] = []
        t0 = time.perf_counter()
        self.run(2)  # warm-up: compilation and allocator
        self.warm = time.perf_counter() - t0
        self.acc.clear()

    def run(self, n: int) -> tuple[float, float]:
        """``n`` trajectories; returns (wall, CPU) seconds per trajectory."""
        wl = self.wl
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(n):
            self.links, met = hmc.hmc_step(
                self.links,
                wl.beta,
                wl.eps,
                wl.n_steps,
                self.g,
                integrator=self.integ,
                measure_charge=self.charge,
            )
            self.acc.append(float(met["accept_prob"].mean()))
        return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n

    def result(self) -> Result:
        best = min(self.rounds)
        return Result(
            workload=self.wl.name,
            dtype=str(self.dtype).replace("torch.", ""),
            mode="compiled" if self.compiled else "eager",
            traj_per_s=1.0 / best,
            ms_per_traj=1e3 * best,
            ms_per_traj_median=1e3 * statistics.median(self.rounds),
            cpu_ms_per_traj=1e3 * min(self.cpu_rounds),
            warmup_s=self.warm,
            acceptance=sum(self.acc) / len(self.acc),
            n_traj=len(self.acc),
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    ap.add_argument("--quick", action="store_true", help="fewer trajectories (smoke run)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per variant")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-charge", action="store_true", help="skip the charge measurements")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    per_round = {"u1": 2 if args.quick else 10, "su3": 1 if args.quick else 4}
    rounds = 2 if args.quick else args.rounds
    modes = [False] if args.no_compile else [False, True]
    keys = args.only or ["u1", "su3"]
    results: list[Result] = []
    for key in keys:
        wl = WORKLOADS[key]
        variants = [
            Variant(wl, dtype, compiled, charge=not args.no_charge)
            for dtype in (torch.float64, torch.float32)
            for compiled in modes
        ]
        # Interleave the variants round by round: on a shared machine the load drifts, and
        # the fastest round of each variant is the fairest basis for the ratios.
        for _ in range(rounds):
            for v in variants:
                wall, cpu = v.run(per_round[key])
                v.rounds.append(wall)
                v.cpu_rounds.append(cpu)
        for v in variants:
            r = v.result()
            results.append(r)
            print(
                f"{r.workload:16s} {r.dtype:8s} {r.mode:9s} {r.traj_per_s:9.2f} traj/s "
                f"{r.ms_per_traj:9.2f} ms/traj (median {r.ms_per_traj_median:8.2f}, "
                f"CPU {r.cpu_ms_per_traj:8.2f})  "
                f"warm-up {r.warmup_s:6.1f} s  acc {r.acceptance:.2f}",
                flush=True,
            )
    for label, field in (("wall clock", "ms_per_traj"), ("process CPU time", "cpu_ms_per_traj")):
        print()
        print(
            f"{'workload':16s} {'dtype':8s} {'eager':>10s} {'compiled':>10s} "
            f"{'comp/eager':>11s} {'fp32/fp64':>10s}   (trajectories/s, fastest round, {label})"
        )
        by = {(r.workload, r.dtype, r.mode): 1e3 / getattr(r, field) for r in results}
        for key in keys:
            name = WORKLOADS[key].name
            for dt in ("float64", "float32"):
                e = by.get((name, dt, "eager"))
                c = by.get((name, dt, "compiled"))
                e64, c64 = by.get((name, "float64", "eager")), by.get((name, "float64", "compiled"))
                ratio_c = f"{c / e:11.2f}" if c and e else f"{'-':>11s}"
                ratio_p = f"{e / e64:5.2f}/{(c or 0) / (c64 or 1):4.2f}" if e and e64 else "-"
                print(f"{name:16s} {dt:8s} {e or 0:10.2f} {c or 0:10.2f} {ratio_c} {ratio_p:>10s}")
    print("(fp32/fp64 column: eager/compiled)")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
