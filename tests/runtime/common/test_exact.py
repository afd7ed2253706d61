"""Exact reference values: Bessel functions against scipy, 2D U(1) against direct integrals."""

import math

import numpy as np
import pytest
from scipy import integrate, special

from l2hmcc.runtime.common import exact


def test_bessel_matches_scipy() -> None:
    n = np.arange(0, 61)[:, None]
    x = np.array([1e-6, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 5.5, 10.0, 15.0, 20.0])[None, :]
    ref = special.iv(n, x)
    got = exact.bessel_i(n, x)
    ok = ref > 1e-290  # below that scipy itself underflows
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-12, atol=0)
    # negative orders and log form, up to β = 50
    np.testing.assert_allclose(exact.bessel_i(-3, 50.0), special.iv(3, 50.0), rtol=1e-12)
    np.testing.assert_allclose(exact.log_bessel_i(2, 40.0), np.log(special.iv(2, 40.0)), rtol=1e-13)
    assert exact.bessel_i(0, 0.0) == 1.0 and exact.bessel_i(4, 0.0) == 0.0
    with pytest.raises(ValueError):
        exact.bessel_i(0, -1.0)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 3.0, 8.0])
def test_infinite_volume_plaquette_is_bessel_ratio(beta: float) -> None:
    assert exact.u1_plaquette(beta) == pytest.approx(
        special.iv(1, beta) / special.iv(0, beta), rel=1e-13
    )


def test_finite_volume_limits() -> None:
    beta = 1.7
    # V = 1 (1×1 torus): θ_P ≡ 0.  V = 2: θ₂ = -θ₁ gives I₁(2β)/I₀(2β) (Neumann's addition).
    assert exact.u1_plaquette(beta, 1) == 1.0
    assert exact.u1_plaquette(beta, 2) == pytest.approx(
        special.iv(1, 2 * beta) / special.iv(0, 2 * beta), rel=1e-13
    )
    # large V: the corrections are O((I₁/I₀)^V)
    r = special.iv(1, beta) / special.iv(0, beta)
    assert abs(exact.u1_plaquette(beta, 64) - r) < 10 * 64 * r**64
    assert exact.u1_plaquette(beta, 16) != pytest.approx(r, rel=1e-6)
    assert exact.u1_q2(beta, 2) == 0.0 and exact.u1_q2(beta, 1) == 0.0
    with pytest.raises(ValueError):
        exact.u1_plaquette(0.0, 4)


def _weight(beta: float):
    return lambda b, a: np.exp(beta * (np.cos(a) + np.cos(b) + np.cos(a + b)))


@pytest.mark.parametrize("beta", [0.4, 1.3, 3.0])
def test_three_plaquettes_against_quadrature(beta: float) -> None:
    """V = 3: φ₃ = wrap(-φ₁-φ₂); Q = ±1 exactly when |φ₁+φ₂| > π, else 0."""
    w = _weight(beta)
    pi = math.pi
    opts = {"epsabs": 1e-13, "epsrel": 1e-12}
    z = integrate.dblquad(w, -pi, pi, -pi, pi, **opts)[0]
    c = integrate.dblquad(
        lambda b, a: w(b, a) * (np.cos(a) + np.cos(b) + np.cos(a + b)) / 3, -pi, pi, -pi, pi, **opts
    )[0]
    q2 = integrate.dblquad(w, 0, pi, lambda a: pi - a, lambda a: pi, **opts)[0]
    q2 += integrate.dblquad(w, -pi, 0, lambda a: -pi, lambda a: -pi - a, **opts)[0]
    assert exact.u1_plaquette(beta, 3) == pytest.approx(c / z, rel=1e-11)
    assert exact.u1_q2(beta, 3) == pytest.approx(q2 / z, rel=1e-9)


def test_q2_limits() -> None:
    # small β: plaquette angles nearly uniform, ⟨Q²⟩ → V/12 (minus the constraint's O(1))
    v = 400
    assert exact.u1_q2(1e-3, v) == pytest.approx(v / 12, rel=0.01)
    # large β, large V: Gaussian angles of variance ≈ 1/β (+ O(1/β²)), ⟨Q²⟩ ≈ V/(4π²β)
    beta = 12.0
    approx = v / (4 * math.pi**2) * (1 / beta + 1 / (2 * beta**2))
    assert exact.u1_q2(beta, v) == pytest.approx(approx, rel=0.02)
    assert exact.u1_topological_susceptibility(beta, v) == pytest.approx(exact.u1_q2(beta, v) / v)


def test_su3_strong_coupling_series() -> None:
    assert exact.su3_strong_coupling_plaquette(0.5) == pytest.approx(0.5 / 18 + 0.25 / 216)
