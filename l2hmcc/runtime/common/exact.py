"""Exact reference values for the lattice observables (numpy only).

2D U(1) with the Wilson action ``S = β Σ_P (1 - cos θ_P)`` on a periodic lattice of ``V``
plaquettes.  Integrating the links, the wrapped plaquette angles are independent with weight
``e^{β cos φ}`` except for the constraint ``Σ_P φ_P ∈ 2πℤ``; the character expansion
``e^{β cos φ} = Σ_n I_n(β) e^{inφ}`` then gives (Wiese 1989; Bonati & Rossi 2019)

* ``Z = Σ_{n∈ℤ} I_n(β)^V`` and ``⟨cos θ_P⟩ = Σ_n I_n^{V-1} I_n' / Σ_n I_n^V`` with
  ``I_n' = dI_n/dβ = (I_{n-1} + I_{n+1}) / 2``; as ``V → ∞`` this tends to ``I₁(β)/I₀(β)``
  (the corrections are of relative size ``(I₁/I₀)^V``).
* The topological charge ``Q = (1/2π) Σ_P wrap(θ_P)``: with ``c_n(α)`` the Fourier
  coefficients of ``e^{β cos φ + iαφ}`` on ``[-π, π)``, ``⟨e^{iθQ}⟩ = Σ_n c_n(θ/2π)^V / Z`` and

      ⟨Q²⟩ = (1/4π²) Σ_n [V I_n^{V-1} b_n - V(V-1) I_n^{V-2} a_n²] / Σ_n I_n^V,
      a_n = Σ_{m≠n} I_m (-1)^{m-n} / (m-n),    b_n = Σ_m I_m J(m-n),
      J(0) = π²/3,  J(k) = 2 (-1)^k / k²,

  (``a_n = ∂_α c_n``, ``-b_n = ∂²_α c_n`` at ``α = 0``, from the Fourier coefficients of
  ``φ`` and ``φ²`` on ``[-π, π)``).

SU(3) strong coupling: ``⟨Re tr U_P⟩/3 = β/18 + β²/216 + O(β⁴)``; the next term of the
single-plaquette coefficient is ``-5β⁴/93312`` (the β³ term vanishes because the fourth
cumulant of ``Re tr U`` is zero), and closed surfaces contribute from ``O(u⁵)`` with
``u ≈ β/18``.

Modified Bessel functions ``I_n(x)`` of integer order are computed here from their power
series in log space (all terms positive, so no cancellation): relative accuracy ~1e-14 for
``0 ≤ x ≤ 50`` and any order; scipy is not needed at run time.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "bessel_i",
    "log_bessel_i",
    "su3_strong_coupling_plaquette",
    "u1_plaquette",
    "u1_plaquette_infinite_volume",
    "u1_q2",
    "u1_topological_susceptibility",
]

_MAX_X = 200.0


def log_bessel_i(n: ArrayLike, x: ArrayLike) -> NDArray[np.float64]:
    """``log I_n(x)`` for integer orders ``n`` (any sign) and ``0 ≤ x ≤ 200`` (broadcast).

    Series ``I_n(x) = Σ_k (x/2)^{2k+n} / (k! (k+n)!)`` summed relative to its first term:
    ``log I_n = n log(x/2) - log n! + log Σ_k r_k``, ``r_{k+1} = r_k (x/2)² / ((k+1)(k+1+n))``.
    ``I_{-n} = I_n``; ``log I_n(0) = -∞`` for ``n ≠ 0``.
    """
    n_arr = np.abs(np.asarray(n, dtype=np.int64))
    x_arr = np.asarray(x, dtype=np.float64)
    if np.any(x_arr < 0) or np.any(x_arr > _MAX_X):
        raise ValueError(f"log_bessel_i supports 0 ≤ x ≤ {_MAX_X}")
    n_b, x_b = np.broadcast_arrays(n_arr, x_arr)
    q = (x_b / 2.0) ** 2
    n_f = n_b.astype(np.float64)
    # enough terms for the ratio series: its terms peak near k ≈ x/2 and fall like 1/k!² after.
    k_max = int(40 + 2.0 * float(np.max(x_b, initial=0.0)))
    total = np.ones_like(x_b)
    r = np.ones_like(x_b)
    for k in range(k_max):
        r = r * q / ((k + 1.0) * (k + 1.0 + n_f))
        total = total + r
    lgam = np.vectorize(math.lgamma, otypes=[np.float64])(n_f + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lead = np.where(n_b == 0, 0.0, n_f * np.log(x_b / 2.0)) - lgam
    return np.asarray(lead + np.log(total), dtype=np.float64)


def bessel_i(n: ArrayLike, x: ArrayLike) -> NDArray[np.float64]:
    """Modified Bessel function ``I_n(x)`` of integer order (see ``log_bessel_i``)."""
    return np.exp(log_bessel_i(n, x))


def u1_plaquette_infinite_volume(beta: float) -> float:
    """``⟨cos θ_P⟩ = I₁(β)/I₀(β)`` for 2D U(1) in infinite volume."""
    lb = log_bessel_i([1, 0], beta)
    return float(np.exp(lb[0] - lb[1]))


def _orders(beta: float) -> NDArray[np.int64]:
    # I_n/I_0 ≲ (β/2)^n/n! is below 1e-30 for n > 2β + 40: more orders cannot contribute.
    n_max = int(2.0 * beta + 40)
    return np.arange(-n_max, n_max + 1)


def _check(beta: float, volume: int) -> None:
    if not beta > 0.0:
        raise ValueError(f"β must be > 0, got {beta}")
    if int(volume) != volume or volume < 1:
        raise ValueError(f"the number of plaquettes must be a positive integer, got {volume}")


def _log_weights(log_i: NDArray[np.float64], volume: int) -> NDArray[np.float64]:
    lw = volume * log_i
    lw = lw - lw.max()
    w = np.exp(lw)
    return np.asarray(w / w.sum(), dtype=np.float64)


def u1_plaquette(beta: float, volume: int | None = None) -> float:
    """Exact ``⟨cos θ_P⟩`` of 2D U(1) on a periodic lattice with ``volume`` plaquettes.

    ``volume=None`` gives the infinite-volume value ``I₁(β)/I₀(β)``.  For a lattice
    ``L_0 × L_1`` the number of plaquettes is ``L_0 L_1``.
    """
    if volume is None:
        return u1_plaquette_infinite_volume(beta)
    _check(beta, volume)
    if volume == 1:
        return 1.0  # a 1×1 torus has θ_P ≡ 0
    n = _orders(beta)
    log_i = log_bessel_i(n, beta)
    w = _log_weights(log_i, volume)
    ratio = 0.5 * (
        np.exp(log_bessel_i(n - 1, beta) - log_i) + np.exp(log_bessel_i(n + 1, beta) - log_i)
    )
    return float((w * ratio).sum())


def u1_q2(beta: float, volume: int) -> float:
    """Exact ``⟨Q²⟩`` of the 2D U(1) geometric charge on a periodic lattice of ``volume`` plaquettes."""
    _check(beta, volume)
    if volume <= 2:
        # V = 1: θ_P ≡ 0.  V = 2: θ_2 = -θ_1, so Q = 0 (the series below converges only
        # like Σ 1/n² there, so the exact value is returned directly).
        return 0.0
    n = _orders(beta)
    log_i = log_bessel_i(n, beta)
    i_m = np.exp(log_i - log_i.max())  # I_m up to a common factor that cancels in a/I, b/I
    k = n[None, :] - n[:, None]  # [n, m] → m - n
    sign = np.where(k % 2 == 0, 1.0, -1.0)
    with np.errstate(divide="ignore"):
        inv_k = np.where(k == 0, 0.0, 1.0 / np.where(k == 0, 1, k))
    a = (i_m[None, :] * sign * inv_k).sum(1)
    j = np.where(k == 0, math.pi**2 / 3.0, 2.0 * sign * inv_k**2)
    b = (i_m[None, :] * j).sum(1)
    w = _log_weights(log_i, volume)
    keep = w > 0.0  # orders whose weight underflows cannot contribute (and have I_n ≈ 0)
    v = float(volume)
    term = v * b[keep] / i_m[keep] - v * (v - 1.0) * (a[keep] / i_m[keep]) ** 2
    return float((w[keep] * term).sum() / (4.0 * math.pi**2))


def u1_topological_susceptibility(beta: float, volume: int) -> float:
    """``χ_Q = ⟨Q²⟩ / V`` (per plaquette) of 2D U(1), exact in finite volume."""
    return u1_q2(beta, volume) / volume


def su3_strong_coupling_plaquette(beta: float) -> float:
    """``⟨Re tr U_P⟩/3 ≈ β/18 + β²/216`` (neglected: ``-5β⁴/93312 + O(β⁵)``, see module doc)."""
    return beta / 18.0 + beta**2 / 216.0
