"""A generated TensorFlow job's throughput: eager vs ``tf.function`` vs XLA, end to end.

For each workload the spec is compiled once with ``l2hmcc compile --target tensorflow`` (the
``--set`` overrides below) and the job directory's ``./run-local.sh`` runs once per mode, as a
separate process, exactly as a user runs it, with ``L2HMCC_TF_COMPILE_MODE`` picking the
trainer's mode (``tf/run.py``): ``eager``, ``graph`` (plain ``tf.function``), ``xla`` (what
``train.compile = true`` means: ``tf.function(jit_compile=True)`` on the leapfrog layers,
forward and backward, the optimizer and accept steps and the HMC trajectory), ``xla-step``
(one XLA function per train step and per evaluation trajectory, the layers a loop) and, with
``--xla-full``, ``xla-full`` (as ``xla-step`` with the layers unrolled: slow to compile). The
figures are read back from what the job wrote:

* train steps/s: from the per-step ``time_s`` of ``output/history/train.npz``, the first step
  (which holds tracing and XLA compilation) left out;
* L2HMC and HMC chain trajectories/s: ``output/summary.json`` (first record left out);
* the first train step's time (trace + compile) and the wall and CPU time of the whole process.

Workloads (the smoke specs, scaled as ``bench/bench_targets.py`` scales them for PyTorch):

* ``u1``: U(1) 16×16, 64 chains, 4 layers, hidden [64, 64] (fp32);
* ``su3``: SU(3) 4⁴, 4 chains, 2 layers, hidden [64] (fp64, complex128);
* ``--smoke``: the shipped smoke specs as they are (4×4 U(1), 2⁴ SU(3)), fewer steps.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_targets_tf.py             # both (many minutes)
    .venv/bin/python bench/bench_targets_tf.py --only u1 --modes eager graph xla --json out.json

Wall times depend on the machine and its load (shared 2-core machines are noisy): compare the
ratios within one run, and the CPU times. Nothing here gates a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_targets import WORKLOADS, compile_job, read_rates

MODES = ("eager", "graph", "xla", "xla-step", "xla-full")


@dataclass
class Result:
    workload: str
    mode: str
    mode_used: str
    train_steps_per_s: float
    l2hmc_traj_per_s: float
    hmc_traj_per_s: float
    first_step_s: float
    wall_s: float
    cpu_s: float


def measure(name: str, mode: str, job: Path, args: argparse.Namespace) -> Result:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": str(args.threads),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "L2HMCC_TF_COMPILE_MODE": mode,
    }
    out = job / f"output-{mode}"
    cmd = ["./run-local.sh", "--out", str(out), "--train-steps", str(args.train_steps)]
    cmd += ["--eval-steps", str(args.eval_steps), "--hmc-steps", str(args.eval_steps)]
    cmd += ["--no-plots", "--progress", "plain", "--checkpoint-every", "0"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=job,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{job} ({mode}): run failed\n{proc.stdout}\n{proc.stderr}")
    used = next(
        (
            line.split("compile mode ")[1].split()[0].strip("'")
            for line in proc.stdout.splitlines()
            if "compile mode " in line
        ),
        "?",
    )
    return Result(
        workload=name,
        mode=mode,
        mode_used=used,
        **read_rates(out),
        wall_s=wall,
        cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    p.add_argument("--modes", nargs="+", choices=MODES, default=["eager", "graph", "xla"])
    p.add_argument("--xla-full", action="store_true", help="also run xla-full (slow to compile)")
    p.add_argument("--smoke", action="store_true", help="the smoke specs unscaled, 10 steps")
    p.add_argument("--train-steps", type=int, default=40)
    p.add_argument("--eval-steps", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    modes = [*args.modes, *(["xla-full"] if args.xla_full and "xla-full" not in args.modes else [])]
    if args.smoke:
        args.train_steps, args.eval_steps = min(args.train_steps, 10), min(args.eval_steps, 10)
    names = args.only or sorted(WORKLOADS)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-targets-tf-") as tmp:
        for name in names:
            spec, overrides = WORKLOADS[name]
            sets = () if args.smoke else overrides
            job = compile_job(spec, sets, "tensorflow", Path(tmp) / name)
            for mode in modes:
                r = measure(name, mode, job, args)
                results.append(r)
                print(
                    f"{name:4} {mode:8} ({r.mode_used:5})"
                    f"  train {r.train_steps_per_s:8.3g} steps/s"
                    f"  L2HMC {r.l2hmc_traj_per_s:8.3g} traj/s"
                    f"  HMC {r.hmc_traj_per_s:8.3g} traj/s"
                    f"  first step {r.first_step_s:6.1f} s"
                    f"  wall {r.wall_s:6.1f} s  cpu {r.cpu_s:6.1f} s",
                    flush=True,
                )
    if "eager" in modes:
        print("\n/ eager:")
        for name in names:
            e = next(r for r in results if r.workload == name and r.mode == "eager")
            for r in (r for r in results if r.workload == name and r.mode != "eager"):
                print(
                    f"{name:4} {r.mode:8}  train x{r.train_steps_per_s / e.train_steps_per_s:.2f}"
                    f"  L2HMC x{r.l2hmc_traj_per_s / e.l2hmc_traj_per_s:.2f}"
                    f"  HMC x{r.hmc_traj_per_s / e.hmc_traj_per_s:.2f}"
                )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
