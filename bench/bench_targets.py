"""A generated job's throughput, eager vs ``compile = true``: the whole pipeline, end to end.

For each workload the spec is compiled twice with ``l2hmcc compile --target pytorch`` (the
``--set`` overrides below, plus ``train.compile=false`` or ``true``) and each job directory's
``./run-local.sh`` runs as a separate process, exactly as a user runs it. The figures are read
back from what the job wrote:

* train steps/s: from the per-step ``time_s`` of ``output/history/train.npz``, the first step
  (which holds the compilation) left out;
* L2HMC and HMC trajectories/s: ``output/summary.json`` (``trajectories_per_s``, chain
  trajectories, first record left out);
* the first step's time (compilation, cold or warm ``TORCHINDUCTOR_CACHE_DIR``) and the wall
  time of the whole process.

Workloads:

* ``u1``: the shipped U(1) smoke spec scaled up to 16×16, 64 chains, 4 layers, hidden
  [64, 64] (fp32);
* ``su3``: the SU(3) smoke spec on 4⁴ with 4 chains, 2 layers, hidden [64] (fp64, complex128).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_targets.py             # both (minutes)
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_targets.py --only u1 --json out.json
    .venv/bin/python bench/bench_targets.py --train-steps 20 --eval-steps 20   # quicker

Wall times depend on the machine and its load (shared 2-core machines are noisy): compare the
ratios within one run. Nothing here gates a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

WORKLOADS: dict[str, tuple[str, tuple[str, ...]]] = {
    "u1": (
        "specs/u1-smoke.l2h",
        (
            "lattice.shape=[16, 16]",
            "train.chains=64",
            "evaluate.chains=64",
            "hmc.chains=64",
            "dynamics.leapfrog=4",
            "network.hidden=[64, 64]",
        ),
    ),
    "su3": (
        "specs/su3-smoke.l2h",
        (
            "lattice.shape=[4, 4, 4, 4]",
            "train.chains=4",
            "evaluate.chains=4",
            "hmc.chains=4",
            "network.hidden=[64]",
        ),
    ),
}


@dataclass
class Result:
    workload: str
    compile: bool
    train_steps_per_s: float
    l2hmc_traj_per_s: float
    hmc_traj_per_s: float
    first_step_s: float
    wall_s: float


def compile_job(spec: str, overrides: tuple[str, ...], target: str, out: Path) -> Path:
    """``l2hmcc compile SPEC --target TARGET -o OUT --force --set …`` (also used by
    ``bench_targets_tf.py``)."""
    sets = [a for o in overrides for a in ("--set", o)]
    cmd = [sys.executable, "-m", "l2hmcc", "compile", spec, "--target", target, "-o", str(out)]
    proc = subprocess.run([*cmd, "--force", *sets], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return out


def read_rates(out: Path) -> dict[str, float]:
    """What a finished job wrote in ``out``: train steps/s (the first step, which holds the
    compilation, left out), L2HMC and HMC trajectories/s, the first step's time."""
    summary = json.loads((out / "summary.json").read_text())
    with np.load(out / "history" / "train.npz") as h:
        t = h["time_s"]
    return {
        "train_steps_per_s": float((len(t) - 1) / np.sum(t[1:])),
        "l2hmc_traj_per_s": summary["l2hmc"]["trajectories_per_s"],
        "hmc_traj_per_s": summary["hmc"]["trajectories_per_s"],
        "first_step_s": float(t[0]),
    }


def run(job: Path, args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        ["./run-local.sh", *args], cwd=job, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{job}: run failed\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - start


def measure(name: str, compiled: bool, base: Path, args: argparse.Namespace) -> Result:
    spec, overrides = WORKLOADS[name]
    sets = (*overrides, f"train.compile={str(compiled).lower()}")
    job = compile_job(spec, sets, "pytorch", base / f"{name}-{'compiled' if compiled else 'eager'}")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": str(args.threads),
        "TORCHINDUCTOR_CACHE_DIR": str(args.cache or base / "inductor-cache"),
    }
    wall = run(
        job,
        [
            "--train-steps",
            str(args.train_steps),
            "--eval-steps",
            str(args.eval_steps),
            "--hmc-steps",
            str(args.eval_steps),
            "--no-plots",
            "--progress",
            "plain",
            "--checkpoint-every",
            "0",
        ],
        env,
    )
    return Result(workload=name, compile=compiled, **read_rates(job / "output"), wall_s=wall)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    p.add_argument("--train-steps", type=int, default=40)
    p.add_argument("--eval-steps", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", type=Path, help="TORCHINDUCTOR_CACHE_DIR (default: a fresh one)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-targets-") as tmp:
        for name in args.only or sorted(WORKLOADS):
            for compiled in (False, True):
                r = measure(name, compiled, Path(tmp), args)
                results.append(r)
                print(
                    f"{name:4} {'compile' if compiled else 'eager  '}"
                    f"  train {r.train_steps_per_s:8.3g} steps/s"
                    f"  L2HMC {r.l2hmc_traj_per_s:8.3g} traj/s"
                    f"  HMC {r.hmc_traj_per_s:8.3g} traj/s"
                    f"  first step {r.first_step_s:6.1f} s  wall {r.wall_s:6.1f} s",
                    flush=True,
                )
    print("\ncompiled / eager:")
    for name in args.only or sorted(WORKLOADS):
        e, c = (next(r for r in results if r.workload == name and r.compile == k) for k in (0, 1))
        print(
            f"{name:4}  train x{c.train_steps_per_s / e.train_steps_per_s:.2f}"
            f"  L2HMC x{c.l2hmc_traj_per_s / e.l2hmc_traj_per_s:.2f}"
            f"  HMC x{c.hmc_traj_per_s / e.hmc_traj_per_s:.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
