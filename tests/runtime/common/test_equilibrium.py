"""``common.equilibrium``: the burn-in chosen from the data, the drift test between the halves
of what is kept, thermalization's window test, and the t → z conversion they share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from l2hmcc.runtime.common import equilibrium as eq


def ar1(rng: np.random.Generator, steps: int, chains: int, phi: float = 0.9) -> np.ndarray:
    """A stationary AR(1) series per chain (started from its stationary distribution)."""
    sigma = 0.01
    x = np.empty((steps, chains))
    x[0] = rng.standard_normal(chains) * sigma / math.sqrt(1 - phi**2)
    for t in range(1, steps):
        x[t] = phi * x[t - 1] + sigma * rng.standard_normal(chains)
    return 0.6 + x


@pytest.mark.parametrize(
    ("t", "dof", "p"),
    [(12.706, 1, 0.05), (4.303, 2, 0.05), (2.365, 7, 0.05), (3.499, 7, 0.01), (1.96, 10**6, 0.05)],
)
def test_student_t_tail_matches_the_tables(t: float, dof: int, p: float) -> None:
    # two-sided critical values of Student's t (standard tables, 3-4 digits)
    assert eq._t_two_sided(t, dof) == pytest.approx(p, rel=2e-3)


def test_normal_deviate_inverts_the_two_sided_tail() -> None:
    for z in (0.5, 1.96, 3.0, 6.0):
        assert eq._normal_deviate(math.erfc(z / math.sqrt(2))) == pytest.approx(z, abs=1e-9)


def test_burn_in_cuts_a_transient_and_keeps_a_stationary_record() -> None:
    rng = np.random.default_rng(0)
    stationary = ar1(rng, 200, 8)
    assert eq.mser_burn_in(stationary) < 40
    t = np.arange(200)[:, None]
    settling = stationary - 0.3 * np.exp(-t / 8.0)  # settles within ~40 trajectories
    assert 20 <= eq.mser_burn_in(settling) <= 100
    assert eq.mser_burn_in(settling, max_fraction=0.1) <= 20
    assert eq.mser_burn_in(stationary[:3]) == 0


def test_a_stationary_record_is_equilibrated_and_a_drifting_one_is_not() -> None:
    rng = np.random.default_rng(1)
    ok = eq.check(ar1(rng, 100, 8))
    assert ok.equilibrated and ok.reason is None and ok.drift_z is not None and ok.drift_z < 3
    # the evaluation: a slow climb that never levels off (0.34 -> 0.54)
    t = np.arange(100)[:, None]
    drifting = eq.check(ar1(rng, 100, 8) - 0.26 + 0.2 * t / 100)
    assert not drifting.equilibrated
    assert drifting.drift_z is None or drifting.drift_z >= 3
    assert drifting.reason is not None and "drifts from" in drifting.reason
    assert drifting.halves is not None and drifting.halves[1] > drifting.halves[0]


def test_false_alarms_are_rare_on_autocorrelated_equilibrium_records() -> None:
    # 3σ two-sided is 0.27 %; allow 2 % over 200 records of strongly autocorrelated chains
    rng = np.random.default_rng(2)
    alarms = sum(not eq.check(ar1(rng, 60, 8)).equilibrated for _ in range(200))
    assert alarms <= 4


def test_few_chains_use_the_autocorrelation_error() -> None:
    rng = np.random.default_rng(3)
    assert eq.check(ar1(rng, 200, 1, phi=0.5)).equilibrated
    t = np.arange(200)[:, None]
    assert not eq.check(ar1(rng, 200, 2, phi=0.5) + 0.001 * t).equilibrated


def test_too_few_records_are_not_called_equilibrated() -> None:
    result = eq.check(np.full((5, 8), 0.6))
    assert not result.equilibrated and result.drift_z is None
    assert result.reason is not None and "too few trajectories" in result.reason
    assert result.as_dict("plaquette")["observable"] == "plaquette"


def test_window_drift_is_the_paired_test_over_chains() -> None:
    rng = np.random.default_rng(4)
    a, b = ar1(rng, 10, 16), ar1(rng, 10, 16)
    z = eq.window_drift(a, b)
    assert z is not None and z < 3
    z_shift = eq.window_drift(a, b + 0.1)
    assert z_shift is not None and z_shift > 5
    assert eq.window_drift(np.full((10, 8), 0.5), np.full((10, 8), 0.5)) == 0.0
