"""The l2hmcc performance and physics report, reproducible from one command.

    OMP_NUM_THREADS=1 .venv/bin/python bench/report.py --quick     # this 2-core CPU: < 1 hour
    .venv/bin/python bench/report.py --full --device cuda           # a GPU node (bench/gpu_report.sh)
    .venv/bin/python bench/report.py --smoke                        # seconds (tests/bench/test_report.py)

writes ``bench/results/<date>-<mode>/report.md`` (``--out`` to choose), its PNG figures and
``report.json`` (every number), with the sections

1. machine and run: CPU, cores, load average, memory, GPU, versions, git state, command;
2. compile latency of every shipped spec (whole ``l2hmcc check``/``compile`` processes,
   ``bench/bench_frontend.py``);
3. runtime throughput of U(1) 16×16 and SU(3) 4⁴ (the workloads of ``bench/bench_l2hmc_pt.py``
   and ``bench/bench_hmc_pt.py``): L2HMC train steps/s and trajectories/s, HMC trajectories/s,
   eager vs ``torch.compile``, fp32 vs fp64, measured in interleaved rounds, with process CPU
   time beside wall time (``reportlib/throughput.py``);
4. the same figures beside the seed's, when it ran in the same report (otherwise the report
   says that no side-by-side figure exists: timings from another day are not compared);
5. U(1) 16×16 physics at β = 2…6: an L2HMC sampler trained from ``specs/u1-report.l2h`` (β
   annealed through the eras) against HMC tuned to 0.75 acceptance at trajectory length 1, on
   the same chains and trajectories: acceptance, plaquette and ⟨Q²⟩ against exact
   finite-volume values, tunneling rate, τ_int(Q), cost per effective sample
   (``reportlib/physics.py``);
6. SU(3) 4⁴: HMC and L2HMC plaquette and acceptance against strong coupling and the published
   β = 6 value (``reportlib/su3.py``);
7. the GPU script and how to reproduce.

Nothing here gates a test; figures depend on the machine and its load (the report states both).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import dataclasses
import datetime as dt
import json
import math
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for p in (str(REPO), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402
from reportlib import cost, frontend, machine, physics, render, su3, throughput  # noqa: E402

U1_SPEC = REPO / "specs" / "u1-report.l2h"
SU3_SPEC = REPO / "specs" / "su3-smoke.l2h"


@dataclass(frozen=True)
class Mode:
    """The sizes of one report mode."""

    name: str
    frontend_specs: tuple[str, ...] | None  #: None: every shipped spec
    frontend_runs: int
    throughput: throughput.Plan
    physics: physics.Plan
    su3: su3.Plan
    notes: tuple[str, ...] = field(default=())


def _smoke_network() -> Any:
    from l2hmcc.runtime.pt.networks import NetworkConfig

    return NetworkConfig(hidden=(8,))


MODES: dict[str, Callable[[], Mode]] = {
    # seconds: the machinery, on tiny lattices, eager only (tests/bench/test_report.py)
    "smoke": lambda: Mode(
        name="smoke",
        frontend_specs=("specs/u1-smoke.l2h",),
        frontend_runs=1,
        throughput=throughput.Plan(
            u1_chains=4,
            u1_shape=(4, 4),
            u1_network=_smoke_network(),
            su3_network=_smoke_network(),
            su3_chains=2,
            su3_shape=(2, 2, 2, 2),
            rounds=2,
            n_train=1,
            n_traj=1,
            hmc_traj=2,
            compiled=False,
            cost=cost.Plan(
                rounds=2,
                reps=1,
                su3_shapes=((2, 2, 2, 2),),
                su3_chains=2,
                seed=False,
                dry_run=True,
            ),
        ),
        physics=physics.Plan(
            spec=U1_SPEC,
            overrides=(
                "lattice.shape=[4, 4]",
                "lattice.beta=eras([1.0, 2.0])",
                "train.steps=6",
                "train.chains=4",
                "train.compile=false",
                "evaluate.steps=30",
                "evaluate.chains=4",
                "hmc.steps=30",
                "hmc.chains=4",
            ),
            block=10,
            long_factor=2,
            compile_hmc=False,
            compile_eval=False,
        ),
        su3=su3.Plan(
            spec=SU3_SPEC,
            overrides=(
                "train.steps=2",
                "evaluate.steps=10",
                "hmc.steps=10",
                "hmc.step_size=auto(0.75)",
            ),
            betas=(0.5, 6.0),
            steps=10,
            therm=2,
        ),
    ),
    # this 2-core CPU (one thread): < 1 hour
    "quick": lambda: Mode(
        name="quick",
        frontend_specs=None,
        frontend_runs=5,
        throughput=throughput.Plan(
            rounds=3,
            n_train=1,
            n_traj=2,
            hmc_traj=10,
            l2hmc_compiled=("u1",),
            cost=cost.Plan(chains=(64,), precisions=("fp32",), rounds=3, reps=3),
        ),
        physics=physics.Plan(
            spec=U1_SPEC,
            overrides=(),
            block=50,
            long_factor=5,
        ),
        su3=su3.Plan(
            spec=SU3_SPEC,
            overrides=(
                "lattice.shape=[4, 4, 4, 4]",
                "dynamics.leapfrog=4",
                "dynamics.step_size=0.05",
                "train.steps=30",
                "train.chains=8",
                "evaluate.chains=8",
                "hmc.chains=8",
                "hmc.step_size=auto(0.75)",
            ),
            betas=(0.5, 1.0, 6.0),
            steps=100,
            therm=50,
        ),
    ),
    # a GPU node: bigger batches and lattices, bf16 networks, the spec's full budget
    "full": lambda: Mode(
        name="full",
        frontend_specs=None,
        frontend_runs=15,
        throughput=throughput.Plan(
            u1_chains=1024,
            su3_chains=64,
            hmc_u1_shape=(64, 64),
            hmc_su3_shape=(8, 8, 8, 8),
            rounds=5,
            n_train=3,
            n_traj=5,
            hmc_traj=20,
            bf16=True,
            cost=cost.Plan(
                chains=(64, 1024),
                precisions=("fp32", "fp64"),
                network_precisions=("bf16", "fp16"),
                rounds=5,
                reps=10,
                su3_shapes=((4, 4, 4, 4), (8, 8, 8, 8)),
                su3_precisions=("fp32", "fp64"),
            ),
        ),
        physics=physics.Plan(
            spec=U1_SPEC,
            overrides=(
                "train.steps=20000",
                "train.chains=128",
                "evaluate.steps=10000",
                "evaluate.chains=256",
                "hmc.steps=10000",
                "hmc.chains=256",
            ),
            block=100,
            long_factor=10,
        ),
        su3=su3.Plan(
            spec=SU3_SPEC,
            overrides=(
                "lattice.shape=[8, 8, 8, 8]",
                "dynamics.leapfrog=4",
                "dynamics.step_size=0.05",
                "train.steps=500",
                "train.chains=16",
                "evaluate.chains=16",
                "hmc.chains=16",
                "hmc.step_size=auto(0.75)",
            ),
            betas=(0.5, 1.0, 6.0),
            steps=500,
            therm=100,
        ),
    ),
}

SECTION_NAMES = ("frontend", "throughput", "physics", "su3")


def _shipped_specs(selected: tuple[str, ...] | None) -> list[Path]:
    if selected is not None:
        return [REPO / s for s in selected]
    return sorted((REPO / "specs").glob("*.l2h"))


def _jsonable(value: Any) -> Any:
    """``value`` without private keys (``_series``) and with non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def commands(mode: Mode, args: argparse.Namespace) -> list[tuple[str, str]]:
    """The exact commands: the whole report, and each part on its own."""
    py = ".venv/bin/python"
    flag = "" if mode.name == "full" else f" --{mode.name}"
    dev = "" if args.device == "cpu" else f" --device {args.device}"
    ph = mode.physics
    sets = " ".join(f"--set {shlex.quote(o)}" for o in ph.overrides)
    s3 = " ".join(f"--set {shlex.quote(o)}" for o in mode.su3.overrides)
    return [
        ("this report", f"OMP_NUM_THREADS=1 {py} bench/report.py{flag}{dev}"),
        ("one section", f"{py} bench/report.py{flag} --sections physics"),
        ("compile latency alone", f"{py} bench/bench_frontend.py --runs {mode.frontend_runs}"),
        ("HMC throughput alone", f"OMP_NUM_THREADS=1 {py} bench/bench_hmc_pt.py"),
        ("L2HMC throughput alone", f"OMP_NUM_THREADS=1 {py} bench/bench_l2hmc_pt.py"),
        (
            "cost against HMC alone",
            f"OMP_NUM_THREADS=1 {py} bench/bench_cost.py"
            if args.device == "cpu"
            else f"{py} bench/bench_cost_gpu.py --device {args.device}",
        ),
        (
            "the U(1) physics spec as a job",
            f"{py} -m l2hmcc compile {ph.spec.relative_to(REPO)} --target pytorch -o jobs/u1-report "
            f"{sets} && jobs/u1-report/run-local.sh",
        ),
        (
            "the SU(3) spec as a job",
            f"{py} -m l2hmcc compile {mode.su3.spec.relative_to(REPO)} --target pytorch -o "
            f"jobs/su3-report {s3} --set lattice.beta=6.0 && jobs/su3-report/run-local.sh",
        ),
        ("GPU node", "bash bench/gpu_report.sh"),
    ]


SERIES = "physics-series.npz"


def save_series(results: dict[str, Any], out: Path) -> None:
    """The physics section's charge histories (``[T, chains]`` integers per β and sampler: what
    the figures need; a full-mode run has ~10⁵ HMC trajectories × 256 chains per β)."""
    import numpy as np

    series = (results.get("physics") or {}).get("_series") or {}
    arrays = {
        f"beta={beta}/{key}": np.rint(a).astype(np.int16)
        for beta, d in series.items()
        for key, a in d.items()
        if key.endswith("_charge")
    }
    if arrays:
        np.savez_compressed(out / SERIES, **arrays)


def load_series(out: Path) -> dict[float, dict[str, Any]]:
    import numpy as np

    path = out / SERIES
    if not path.exists():
        return {}
    series: dict[float, dict[str, Any]] = {}
    with np.load(path) as z:
        for name in z.files:
            beta, key = name.split("/", 1)
            series.setdefault(float(beta.split("=", 1)[1]), {})[key] = z[name]
    return series


def rerender(out: Path, md: Path | None) -> int:
    """Rewrite ``out/report.md`` and its figures from ``out/report.json`` (+ the series)."""
    results = json.loads((out / "report.json").read_text(encoding="utf-8"))
    if results.get("physics"):
        results["physics"]["_series"] = load_series(out)
    figs = render.figures(results, out)
    text = render.markdown(results, figs)
    (out / "report.md").write_text(text, encoding="utf-8")
    print(f"rewrote {out / 'report.md'}")
    if md:
        publish(text, figs, out, md)
        print(f"published {md}")
    return 0


def publish(text: str, figs: dict[str, str], out: Path, md: Path) -> None:
    """Copy the report to ``md`` and its figures to ``md`` without suffix (a folder beside it)."""
    import shutil

    folder = md.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    for name in figs.values():
        shutil.copyfile(out / name, folder / name)
        text = text.replace(f"]({name})", f"]({folder.name}/{name})")
    md.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="sized for a 2-core CPU (< 1 hour)")
    size.add_argument("--smoke", action="store_true", help="tiny lattices, seconds (tests)")
    size.add_argument("--full", action="store_true", help="a GPU node (the default mode)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument(
        "--sections",
        default=",".join(SECTION_NAMES),
        help=f"comma-separated subset of {','.join(SECTION_NAMES)}",
    )
    ap.add_argument("--out", type=Path, help="output directory (default bench/results/DATE-MODE)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on CPU (default 1)")
    ap.add_argument(
        "--rerender",
        type=Path,
        metavar="DIR",
        help="only rewrite DIR/report.md and its figures from DIR/report.json (and "
        "DIR/physics-series.npz): no measurement",
    )
    ap.add_argument(
        "--publish",
        type=Path,
        metavar="MD",
        help="also copy the report to MD and its figures to MD without .md/ (e.g. "
        "docs/report-example.md), image links rewritten",
    )
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra override of the U(1) physics spec (after the mode's)",
    )
    args = ap.parse_args(argv)
    if args.rerender:
        return rerender(args.rerender, args.publish)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    mode = MODES[name]()
    if args.overrides:
        mode = dataclasses.replace(
            mode,
            physics=dataclasses.replace(
                mode.physics, overrides=(*mode.physics.overrides, *args.overrides)
            ),
        )
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTION_NAMES)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {SECTION_NAMES}")
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    now = dt.datetime.now()
    out = args.out or BENCH / "results" / f"{now:%Y-%m-%d-%H%M}-{name}"
    out.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(line, flush=True)

    t_start, c_start = time.perf_counter(), time.process_time()
    results: dict[str, Any] = {
        "date": f"{now:%Y-%m-%d %H:%M}",
        "mode": name,
        "device": str(device),
        "machine": machine.describe(sys.argv if argv is None else ["bench/report.py", *argv]),
        "commands": commands(mode, args),
        "section_times": {},
        "errors": {},
    }
    log(f"report ({name}) → {out}")
    runners: dict[str, Callable[[], Any]] = {
        "frontend": lambda: frontend.run(
            _shipped_specs(mode.frontend_specs), mode.frontend_runs, log
        ),
        "throughput": lambda: throughput.run(mode.throughput, device, log),
        "physics": lambda: physics.run(mode.physics, device, log),
        "su3": lambda: su3.run(mode.su3, device, log),
    }
    for section in SECTION_NAMES:
        if section not in sections:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            results[section] = runners[section]()
        except Exception as exc:  # a failed section is reported, the others still run
            traceback.print_exc()
            results["errors"][section] = f"{type(exc).__name__}: {exc}"
        results["section_times"][section] = (
            time.perf_counter() - t0,
            time.process_time() - c0,
        )
    results["load_average_end"] = machine.load_average()
    save_series(results, out)
    results["wall_s"] = time.perf_counter() - t_start
    results["cpu_s"] = time.process_time() - c_start
    figs: dict[str, str] = {}
    try:
        figs = render.figures(results, out)
    except Exception as exc:
        traceback.print_exc()
        results["errors"]["figures"] = f"{type(exc).__name__}: {exc}"
    text = render.markdown(results, figs)
    (out / "report.md").write_text(text, encoding="utf-8")
    (out / "report.json").write_text(
        json.dumps(_jsonable(results), indent=1, allow_nan=False) + "\n", encoding="utf-8"
    )
    log(f"wrote {out / 'report.md'} ({results['wall_s'] / 60:.1f} min)")
    if args.publish:
        publish(text, figs, out, args.publish)
        log(f"published {args.publish}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
