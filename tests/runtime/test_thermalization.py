"""``TrainerLoop.thermalize`` in both frameworks (the ``fw`` fixture): from a hot start the
chains reach the exact 2D U(1) plaquette and the drift test stops the windows; a cap too small
for the step size stops it unconverged; ``step_size=None`` tunes ε first."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from l2hmcc.runtime.common import exact
from l2hmcc.runtime.common.config import BetaSchedule, DynamicsConfig, LossConfig, TrainConfig

BETA = 3.0
SHAPE = (8, 8)


def trainer(fw: Any) -> Any:
    """An ε-only U(1) trainer on a hot start (8 chains, fp64, eager)."""
    module = importlib.import_module(f"l2hmcc.runtime.{fw.name}.trainer")
    extra = {"compile_mode": "eager"} if fw.name == "tf" else {}
    return module.Trainer(
        "U1",
        SHAPE,
        BetaSchedule(start=BETA),
        DynamicsConfig(leapfrog=2, step_size=0.1),
        None,
        LossConfig(),
        TrainConfig(steps=1, chains=8, precision="fp64", seed=5, compile=False),
        log=None,
        **extra,
    )


def plaquette(fw: Any, tr: Any, x: Any) -> float:
    return float(np.mean(fw.np(tr.lattice_module.mean_plaquette(x))))


def test_hot_start_reaches_the_exact_plaquette_and_stops(fw: Any) -> None:
    tr = trainer(fw)
    hot = plaquette(fw, tr, tr.x)
    x, record = tr.thermalize(
        tr.x, BETA, max_trajectories=300, window=10, step_size=0.1, traj_length=1.0
    )
    exact_value = exact.u1_plaquette(BETA, SHAPE[0] * SHAPE[1])
    assert abs(hot) < 0.2 < exact_value
    assert record["converged"] and record["drift_z"] < 2.0
    assert 20 <= record["trajectories"] < 300 and record["trajectories"] % 10 == 0
    assert (record["step_size"], record["leapfrog_steps"], record["tuned"]) == (0.1, 10, False)
    # 8 chains × 64 plaquettes × 10 trajectories: σ ≈ 0.006; 5σ
    assert record["plaquette_last_window"] == pytest.approx(exact_value, abs=0.03)
    assert plaquette(fw, tr, x) == pytest.approx(exact_value, abs=0.06)


def test_the_cap_stops_an_unsettled_thermalization(fw: Any) -> None:
    tr = trainer(fw)
    _, record = tr.thermalize(
        tr.x, BETA, max_trajectories=25, window=10, step_size=0.01, traj_length=0.05
    )
    # 2 windows fit under the cap; tiny steps from a hot start still climb
    assert record["trajectories"] == 20 and not record["converged"]
    assert record["plaquette_last_window"] > record["plaquette_first_window"]
    assert record["drift_z"] is None or record["drift_z"] >= 2.0


def test_a_tuned_step_size_counts_its_trajectories(fw: Any) -> None:
    tr = trainer(fw)
    _, record = tr.thermalize(tr.x, BETA, max_trajectories=60, window=10, traj_length=1.0)
    # tuning: min(40, 60 // 2) + min(10, 60 // 10) = 36 trajectories, then two windows
    assert record["tuned"] and record["trajectories"] == 56
    assert record["step_size"] * record["leapfrog_steps"] == pytest.approx(1.0)
