"""The report's cost figures (bench/reportlib/cost.py rows, bench_cost.py's layout) as markdown:
the per-force and FLOP-floor table, the SU(3) compiled-vs-eager table, and the seed side by side
when it ran in the report (else the sentence that no side-by-side figure exists)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from reportlib import render  # noqa: E402

COST_ROW = {
    "section": "cost",
    "chains": 64,
    "precision": "fp32",
    "hmc_ms_per_force": 0.137,
    "l2hmc_ms_per_force": 0.045,
    "l2hmc_over_hmc_per_force": 0.37,
    "net_added_ms": 35.8,
    "net_floor_ms": 4.65,
    "net_over_floor": 7.7,
    "net_over_computed_floor": 11.0,
    "cold_compile_s": {"hmc": 1.0, "none": 105.0, "hidden16": 20.0},
    "warm_compile_s": {"hmc": 0.5, "none": 8.0, "hidden16": 2.0},
    "load": 4.2,
}
SU3_ROW = {
    "section": "su3",
    "shape": [4, 4, 4, 4],
    "chains": 8,
    "precision": "fp64",
    "trajectory_eager_s": 0.258,
    "trajectory_compiled_s": 0.170,
    "trajectory_speedup": 1.52,
    "train_eager_s": 0.889,
    "train_compiled_s": 0.594,
    "train_speedup": 1.50,
    "trajectory_compiled_first_s": 37.7,
    "train_compiled_first_s": 92.9,
    "load": 5.0,
}
SEED_ROW = {
    "section": "seed",
    "unit": "train",
    "ours": "eager",
    "ours_s": 3.60,
    "seed_s": 4.30,
    "speedup": 1.21,
    "ours_first_call_s": 6.0,
    "seed_parameters": 60208720,
    "load": 9.0,
}


def _tp(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "device": "cpu",
        "plan": {"rounds": 1, "n_train": 1, "n_traj": 1, "hmc_traj": 1, "workloads": []},
        "results": [],
        "seed": {},
        "cost": {
            "device": "cpu",
            "plan": {"dry_run": False},
            "rows": [{"section": "peak", "precision": "fp32", "matmul_gflops": 87.0}, *rows],
        },
    }


def test_cost_tables_show_per_force_floor_and_su3() -> None:
    text = render._cost(_tp([COST_ROW, SU3_ROW])["cost"])
    assert "fp32 87 GFLOP/s" in text
    assert "| 64 | fp32 | 0.0450 | 0.1370 | 0.37 | 35.80 | 4.65 | 7.7× | 11.0× |" in text
    assert "| 4×4×4×4 ×8 | fp64 | 258.0 / 170.0 | 1.52× | 889.0 / 594.0 | 1.50× |" in text
    assert "Dry run" not in text


def test_a_dry_run_says_its_figures_mean_nothing() -> None:
    cost = _tp([COST_ROW])["cost"]
    cost["plan"]["dry_run"] = True
    assert "these figures mean nothing" in render._cost(cost)


def test_the_seed_side_by_side_when_it_ran() -> None:
    text = render._seed(_tp([SEED_ROW]))
    assert "run beside ours in this report" in text
    assert "| train step | eager | 3.600 | 4.300 | 1.21× |" in text
    assert "60208720 parameters" in text


def test_no_side_by_side_figure_without_the_seed() -> None:
    note = {"section": "seed", "figure": None, "note": "no side-by-side figure exists: x"}
    assert render._seed(_tp([note])).startswith("No side-by-side figure exists: x.")
    tp = _tp([])
    tp["cost"] = None
    assert render._seed(tp).startswith("No side-by-side figure exists")
