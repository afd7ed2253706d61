"""What an L2HMC trajectory costs against HMC, measured in the report's run: the figures of
``bench/bench_cost.py`` (on a CPU) or ``bench/bench_cost_gpu.py`` (on CUDA), whose functions
this module calls (nothing is copied here):

* L2HMC per force evaluation against the compiled HMC integrator (U(1) 16×16, 8 layers,
  ``network none``), and ``hidden = [16]`` networks against their FLOP floor at the matmul peak
  measured in the same run (``section`` ``peak`` and ``cost`` rows);
* SU(3) compiled against eager, trajectory and train step (``su3`` rows);
* the seed side by side (``bench_cost.seed_section``: PyPI ``l2hmc`` 0.13.0 in
  ``bench/.seed-venv`` timed in rounds alternating with ours; without that venv, or on a device
  other than the CPU, a row saying that no side-by-side figure exists).

``Plan.dry_run`` runs everything with ``torch.compile`` disabled (the smoke report: seconds;
its "compiled" figures are eager and mean nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Plan:
    """Sizes of the cost figures (see ``bench/bench_cost.py`` and ``bench_cost_gpu.py``)."""

    chains: tuple[int, ...] = (64,)
    precisions: tuple[str, ...] = ("fp32",)
    network_precisions: tuple[str, ...] = ()  #: CUDA only: networks under autocast
    rounds: int = 3
    reps: int = 3
    su3_shapes: tuple[tuple[int, ...], ...] = ((4, 4, 4, 4),)
    su3_chains: int = 8
    su3_precisions: tuple[str, ...] = ("fp64",)
    seed: bool = True  #: the seed side by side when bench/.seed-venv exists (CPU only)
    seed_rounds: int = 3
    seed_reps: int = 2
    dry_run: bool = False


def _args(plan: Plan, device: torch.device) -> argparse.Namespace:
    return argparse.Namespace(
        device=str(device),
        chains=list(plan.chains),
        precisions=list(plan.precisions),
        network_precisions=list(plan.network_precisions),
        rounds=plan.rounds,
        reps=plan.reps,
        su3_shapes=[tuple(s) for s in plan.su3_shapes],
        su3_chains=plan.su3_chains,
        su3_precisions=list(plan.su3_precisions),
        no_seed=not plan.seed,
        seed_rounds=plan.seed_rounds,
        seed_reps=plan.seed_reps,
    )


def run(plan: Plan, device: torch.device, log: Any = print) -> dict[str, Any]:
    """The cost rows of this run (``rows``: ``bench_cost.py``'s layout) and the plan."""
    # bench_cost gives a process without TORCHINDUCTOR_CACHE_DIR a fresh cache when imported;
    # the report's other sections keep the cache they would have used
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = default_cache_dir()
    import bench_cost
    import bench_cost_gpu

    args = _args(plan, device)
    disabled = torch._dynamo.config.disable
    torch._dynamo.config.disable = disabled or plan.dry_run
    rows: list[dict[str, Any]] = []
    try:
        log(f"cost: per force and FLOP floor on {device}")
        if device.type == "cpu":
            rows += bench_cost.cost_section(args)
        else:
            rows += bench_cost_gpu.cost_section(args)
        log(f"cost: SU(3) compiled vs eager on {device}")
        rows += bench_cost_gpu.su3_section(args)
        if device.type == "cpu":
            log("cost: the seed side by side")
            rows += bench_cost.seed_section(args)
        else:
            rows.append(
                {
                    "section": "seed",
                    "figure": None,
                    "note": f"no side-by-side figure exists on {device}: the seed runs beside "
                    "ours on the CPU only (bench/bench_cost.py --sections seed)",
                }
            )
    finally:
        torch._dynamo.config.disable = disabled
        torch._dynamo.reset()
    return {"plan": dataclasses.asdict(plan), "device": str(device), "rows": rows}
