"""The CUDA counterpart of ``bench/bench_cost.py``: what an L2HMC trajectory costs against HMC on
a device, in one process, interleaved.

Not a test: figures depend on the device and its load. Times are wall seconds with the device
synchronised before and after each timed block (``--device cpu``: the same code on the CPU, a
dry run of this script, with process CPU time instead). Sections:

* **cost**: ``bench_cost.py``'s per-force and FLOP-floor figures on the device: U(1) 16×16, 8
  layers, ``network none`` (``Dynamics.compile_proposal``: one graph, CUDA graphs on CUDA)
  against the compiled HMC integrator per force evaluation, and ``hidden = [16]`` networks'
  added time against their FLOP floor at the device's matmul peak measured in the same run
  (fp32 and fp64 links; on CUDA also fp32 links with bf16 and fp16 networks under autocast,
  whose floor is the bf16/fp16 peak); the workload (``bench_cost.Case``), the FLOP count
  (``bench_cost.trajectory_net_flops``) and the round-robin medians are ``bench_cost.py``'s;
* **su3**: SU(3) L2HMC compiled against eager (``train.compile``; ``Dynamics.compile_proposal``
  on planar pairs): SU(3) ``--su3-shapes`` × ``--su3-chains`` chains, 4 layers,
  ``hidden = [16]`` (``bench_su3_compile.py``'s workload), trajectory and train step
  interleaved, ``--su3-precisions``, the first call (compilation) on its own.

The rows have ``bench_cost.py``'s layout (``section`` ``peak``/``cost``) plus ``su3`` rows, so
``bench/report.py`` renders either.

    .venv/bin/python bench/bench_cost_gpu.py [--device cuda] [--quick] [--json out.json]
    .venv/bin/python bench/bench_cost_gpu.py --device cpu --quick     # dry run on a CPU
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import functools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(ROOT / "bench")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import bench_cost  # noqa: E402  (sets an empty TORCHINDUCTOR_CACHE_DIR unless one is set)
import torch  # noqa: E402

LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Clock:
    """Seconds of a call: wall time with the device synchronised (CUDA), process CPU time on
    the CPU (one thread: the time other processes held the core is not counted)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.unit = "CPU s" if device.type == "cpu" else "s"

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, fn: Callable[[], Any], reps: int = 1) -> float:
        """Median seconds of ``reps`` calls."""
        ts = []
        for _ in range(reps):
            self.sync()
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            self.sync()
            ts.append(
                time.process_time() - c0 if self.device.type == "cpu" else time.perf_counter() - t0
            )
        return statistics.median(ts)

    def first(self, fn: Callable[[], Any]) -> float:
        """Wall seconds of one call (a first call: tracing and compilation)."""
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0


def matmul_peak(dtype: torch.dtype, device: torch.device, clock: Clock) -> float:
    """FLOP/s of the device's best ``n×n @ n×n`` (``n`` = 4096 on CUDA, 512 on a CPU; best
    of 5 runs of 5); ``bench_cost.matmul_peak`` on the CPU."""
    if device.type == "cpu":
        return bench_cost.matmul_peak(dtype)
    n = 4096
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    best = min(clock(lambda: [torch.mm(a, b) for _ in range(5)]) for _ in range(5)) / 5
    return 2 * n**3 / best


class DeviceCase(bench_cost.Case):
    """``bench_cost.Case`` on ``device`` (its chains, models and compiled proposals there);
    ``network_precision`` ``"bf16"``/``"fp16"``: the networks run under autocast."""

    def __init__(
        self, chains: int, precision: str, device: torch.device, network_precision: str | None
    ) -> None:
        super().__init__(chains, precision)
        self.x, self.v = self.x.to(device), self.v.to(device)
        self.beta, self.eps = self.beta.to(device), self.eps.to(device)
        for name, dyn in self.models.items():
            dyn.to(device)
            if network_precision is not None:
                dyn.autocast_dtype = LOW_PRECISION[network_precision]
            # compile again: the compile options follow the device (CUDA graphs on CUDA)
            self.compiled[name] = dyn.compile_proposal()


def cost_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``bench_cost.cost_section`` on ``args.device``, with low-precision networks on CUDA."""
    device = torch.device(args.device)
    clock = Clock(device)
    rows: list[dict[str, Any]] = []
    forces = {"hmc": bench_cost.LAYERS + 1, "none": 1 + 2 * bench_cost.LAYERS}
    forces["hidden16"] = forces["local"] = forces["none"]
    variants = [(p, None) for p in args.precisions]
    if device.type == "cuda":
        variants += [("fp32", n) for n in args.network_precisions]
    peaks: dict[str, float] = {}
    for precision, net_precision in variants:
        floor_dtype = net_precision or precision
        if floor_dtype not in peaks:
            dtype = LOW_PRECISION.get(floor_dtype) or bench_cost.DTYPES[floor_dtype]
            peaks[floor_dtype] = matmul_peak(dtype, device, clock)
            rows.append(
                {
                    "section": "peak",
                    "device": str(device),
                    "precision": floor_dtype,
                    "matmul_gflops": peaks[floor_dtype] / 1e9,
                    "load": bench_cost.load(),
                }
            )
            bench_cost.report_row(rows[-1])
        for chains in args.chains:
            r = bench_cost.interleaved_rounds(
                functools.partial(DeviceCase, chains, precision, device, net_precision),
                clock,
                args.rounds,
                args.reps,
            )
            case, med = r.case, r.median
            added = r.added("hidden16", "none")
            flops = bench_cost.trajectory_net_flops(case.models["hidden16"], chains)
            floor = flops / peaks[floor_dtype]
            computed = bench_cost.trajectory_net_flops(case.models["hidden16"], chains, True)
            row = {
                "section": "cost",
                "device": str(device),
                "time": clock.unit,
                "chains": chains,
                "precision": precision,
                "network_precision": net_precision,
                "compiled": case.compiled,
                "hmc_ms_per_force": 1e3 * med["hmc"] / forces["hmc"],
                "l2hmc_ms_per_force": 1e3 * med["none"] / forces["none"],
                "l2hmc_over_hmc_per_force": r.ratio("none", "hmc", forces["none"], forces["hmc"]),
                "traj_ms": {k: 1e3 * v for k, v in med.items()},
                "net_added_ms": 1e3 * added,
                "net_gflop": flops / 1e9,
                "net_floor_ms": 1e3 * floor,
                "net_over_floor": added / floor if floor > 0 else math.nan,
                "net_computed_gflop": computed / 1e9,
                "net_over_computed_floor": added / (computed / peaks[floor_dtype]),
                "cold_compile_s": r.cold,
                "warm_compile_s": r.warm,
                "load_cold": r.load_cold,
                "load": r.load,
            }
            rows.append(row)
            if net_precision:
                print(f"(networks in {net_precision} under autocast, links fp32)", flush=True)
            bench_cost.report_row(row)
    return rows


def su3_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """SU(3) L2HMC with ``train.compile`` against eager on ``args.device``: trajectory (draw,
    propose without gradients, accept) and train step, interleaved rounds."""
    from l2hmcc.runtime.common.config import DynamicsConfig, LossConfig, NetworkConfig
    from l2hmcc.runtime.pt.trainer import TrainConfig, Trainer

    device = torch.device(args.device)
    clock = Clock(device)
    rows = []
    for shape in args.su3_shapes:
        for precision in args.su3_precisions:

            def trainer(compiled: bool, shape: tuple[int, ...] = shape, p: str = precision) -> Any:
                torch.manual_seed(0)
                cfg = TrainConfig(
                    steps=10**6, chains=args.su3_chains, lr=1e-4, precision=p, compile=compiled
                )
                dyn = DynamicsConfig(leapfrog=4, step_size=0.01, directions="merged")
                net = NetworkConfig(hidden=(16,), activation="tanh")
                return Trainer(
                    "SU3",
                    shape,
                    6.0,
                    dyn,
                    net,
                    LossConfig(plaquette=0.1),
                    cfg,
                    log=None,
                    device=device,
                )

            trainers = {"eager": trainer(False), "compiled": trainer(True)}

            def trajectory(tr: Any) -> None:
                beta = tr._beta_tensor(6.0)
                tr.model.eval()
                v, d, u = tr.model.draw(tr.x, tr.generator)
                with torch.no_grad():
                    prop = tr.model.propose(tr.x, v, beta, d)
                tr.x = tr.model.accept(tr.x, prop, u)[0]

            def train(tr: Any) -> None:
                tr.train_step(6.0)

            units = {"trajectory": trajectory, "train": train}
            row: dict[str, Any] = {
                "section": "su3",
                "device": str(device),
                "time": clock.unit,
                "shape": list(shape),
                "chains": args.su3_chains,
                "precision": precision,
                "layers": 4,
                "hidden": [16],
            }
            for unit, fn in units.items():
                for mode, tr in trainers.items():
                    row[f"{unit}_{mode}_first_s"] = clock.first(lambda fn=fn, tr=tr: fn(tr))
                    fn(tr)
            times: dict[str, list[float]] = {}
            loads = []
            for _ in range(args.rounds):
                for unit, fn in units.items():
                    for mode, tr in trainers.items():
                        t = clock(lambda fn=fn, tr=tr: fn(tr), args.reps)
                        times.setdefault(f"{unit}_{mode}_s", []).append(t)
                loads.append(bench_cost.load())
            row.update({k: statistics.median(v) for k, v in times.items()})
            for unit in units:
                row[f"{unit}_speedup"] = statistics.median(
                    e / c
                    for e, c in zip(
                        times[f"{unit}_eager_s"], times[f"{unit}_compiled_s"], strict=True
                    )
                )
            row["load"] = statistics.median(loads)
            rows.append(row)
            report_su3(row)
    return rows


def report_su3(row: dict[str, Any]) -> None:
    cells = ", ".join(
        f"{u} {row[f'{u}_eager_s'] * 1e3:.1f} / {row[f'{u}_compiled_s'] * 1e3:.1f} ms "
        f"({row[f'{u}_speedup']:.2f}x; first compiled call {row[f'{u}_compiled_first_s']:.1f} s)"
        for u in ("trajectory", "train")
    )
    print(
        f"SU3 {'x'.join(map(str, row['shape']))} x{row['chains']} {row['precision']} on "
        f"{row['device']}, eager / compiled ({row['time']}): {cells} (load {row['load']:.1f})",
        flush=True,
    )


SECTIONS: dict[str, Callable[[argparse.Namespace], list[dict[str, Any]]]] = {
    "cost": cost_section,
    "su3": su3_section,
}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="--quick with torch.compile disabled (everything eager): the script's machinery "
        "in seconds, e.g. --device cpu on a login node; its figures mean nothing",
    )
    ap.add_argument("--chains", default="64,1024,8192", help="U(1) chains, comma-separated")
    ap.add_argument("--precisions", default="fp32,fp64")
    ap.add_argument("--network-precisions", default="bf16,fp16", help="CUDA only; '' for none")
    ap.add_argument("--su3-shapes", default="4,4,4,4;8,8,8,8", help="';'-separated lattices")
    ap.add_argument("--su3-chains", type=int, default=8)
    ap.add_argument("--su3-precisions", default="fp32,fp64")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--sections", default="cost,su3")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.quick = True
        torch._dynamo.config.disable = True
    if args.quick:
        args.chains, args.precisions, args.su3_shapes = "64", "fp32", "2,2,2,2"
        args.su3_precisions = "fp64"
        args.su3_chains, args.rounds, args.reps = 2, 2, 2
    args.chains = [int(c) for c in str(args.chains).split(",")]
    args.precisions = str(args.precisions).split(",")
    args.su3_precisions = str(args.su3_precisions).split(",")
    args.network_precisions = [p for p in str(args.network_precisions).split(",") if p]
    args.su3_shapes = [tuple(int(n) for n in s.split(",")) for s in args.su3_shapes.split(";")]
    args.sections = str(args.sections).split(",")
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {sorted(SECTIONS)}")
    if set(args.network_precisions) - set(LOW_PRECISION):
        ap.error(f"--network-precisions: choose from {sorted(LOW_PRECISION)}")
    return args


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_cost_gpu.py: torch sees no CUDA device (--device cpu: dry run)")
    if device.type == "cpu":
        torch.set_num_threads(1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"torch {torch.__version__}, device {device} ({name}), inductor cache "
        f"{os.environ.get('TORCHINDUCTOR_CACHE_DIR')}, load {bench_cost.load():.1f}",
        flush=True,
    )
    return [row for s in args.sections for row in SECTIONS[s](args)]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rows = run(args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
