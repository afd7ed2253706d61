"""τ_int, effective sample size and error estimators against processes with known answers."""

import math

import numpy as np
import pytest

from l2hmcc.runtime.common.autocorr import (
    autocorrelation,
    binned_error,
    effective_sample_size,
    integrated_autocorr_time,
    jackknife,
    mean_error,
)


def ar1(phi: float, n_steps: int, n_chains: int, seed: int) -> np.ndarray:
    """AR(1) x_t = φ x_{t-1} + √(1-φ²) ξ_t started in equilibrium: ρ(t) = φ^t."""
    rng = np.random.default_rng(seed)
    x = np.empty((n_steps, n_chains))
    x[0] = rng.standard_normal(n_chains)
    noise = rng.standard_normal((n_steps, n_chains)) * math.sqrt(1 - phi**2)
    for t in range(1, n_steps):
        x[t] = phi * x[t - 1] + noise[t]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_tau_int_of_ar1_matches_exact(phi: float) -> None:
    x = ar1(phi, 20000, 8, seed=1)
    exact = (1 + phi) / (2 * (1 - phi))
    res = integrated_autocorr_time(x)
    assert res.converged
    # the windowed estimator's bias is O(e^{-W/τ}) (≤ 1% at c = 5) on top of the statistical error
    assert abs(res.tau - exact) < 3 * res.tau_err + 0.01 * exact, (res, exact)
    assert res.tau_err < 0.05 * exact
    assert res.n_eff == pytest.approx(x.size / (2 * res.tau))


def test_autocorrelation_of_ar1_is_geometric() -> None:
    phi = 0.7
    rho = autocorrelation(ar1(phi, 50000, 4, seed=2), max_lag=5)
    np.testing.assert_allclose(rho, phi ** np.arange(6), atol=0.02)
    assert rho[0] == 1.0


def test_single_chain_and_chain_axis() -> None:
    x = ar1(0.5, 40000, 1, seed=3)
    assert integrated_autocorr_time(x[:, 0]).tau == pytest.approx(integrated_autocorr_time(x).tau)
    assert integrated_autocorr_time(x[:, 0]).tau == pytest.approx(1.5, rel=0.1)


def test_constant_series_has_no_effective_samples() -> None:
    res = integrated_autocorr_time(np.ones((100, 3)))
    assert math.isinf(res.tau) and res.n_eff == 0.0 and not res.converged


def test_frozen_chains_at_different_values_are_flagged() -> None:
    # each chain stuck at its own value: ρ(t) = 1 for all t, no window satisfies W ≥ c τ(W)
    x = np.repeat(np.arange(4.0)[None, :], 200, axis=0)
    res = integrated_autocorr_time(x)
    assert not res.converged and res.tau > 50


def test_short_series_is_rejected() -> None:
    with pytest.raises(ValueError):
        integrated_autocorr_time([1.0])


def test_mean_error_includes_autocorrelation() -> None:
    phi = 0.8  # τ = 4.5: the honest error is 3× the naive one
    x = ar1(phi, 20000, 4, seed=4)
    me = mean_error(x)
    assert me.err / me.naive_err == pytest.approx(3.0, rel=0.1)
    assert abs(me.mean) < 4 * me.err
    # binned errors with bins ≫ τ agree with the τ-corrected error
    _, berr = binned_error(x, 200)
    assert berr == pytest.approx(me.err, rel=0.2)
    assert effective_sample_size(x) == pytest.approx(me.n_eff)


def test_binned_error_of_white_noise_is_the_standard_error() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal(40000)
    mean, err = binned_error(x, 1)
    assert mean == pytest.approx(x.mean())
    assert err == pytest.approx(x.std(ddof=1) / 200.0)
    with pytest.raises(ValueError):
        binned_error(x[:3], 2)


def test_jackknife_ratio_matches_delta_method() -> None:
    rng = np.random.default_rng(6)
    a = 2.0 + rng.standard_normal(20000) * 0.1
    b = 4.0 + rng.standard_normal(20000) * 0.1
    est, err = jackknife(np.stack([a, b], 1), lambda d: d[:, 0].mean() / d[:, 1].mean(), 50)
    assert est == pytest.approx(0.5, abs=5 * err)
    # delta method for independent a, b: σ_r² = (σ_a/b)² + (a σ_b/b²)²
    delta = math.sqrt((0.1 / 4.0) ** 2 + (2.0 * 0.1 / 16.0) ** 2) / math.sqrt(20000)
    assert err == pytest.approx(delta, rel=0.3)
    # the jackknife of the mean is the standard error of the block means
    m, e = jackknife(a, n_bins=20)
    assert m == pytest.approx(a.mean())
    assert e == pytest.approx(a.reshape(20, -1).mean(1).std(ddof=1) / math.sqrt(20))
