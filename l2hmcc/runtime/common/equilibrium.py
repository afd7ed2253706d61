"""Is a Markov chain's record in equilibrium? Burn-in from the data and drift tests (numpy only).

A measured phase (evaluation, the HMC baseline) reports its statistics only over the records
this module keeps, and says whether they look stationary:

* ``mser_burn_in(x)``: the burn-in ``d`` (at most half the records) that minimises
  ``MSER(d) = Σ_{t≥d} (x̄_t − x̄_d)² / (T − d)²`` over the chain-averaged series ``x̄_t``, the
  marginal standard error rule (White 1997): a drifting start makes the remaining mean
  uncertain, so it is cut while cutting it shrinks the error of the mean;
* ``check(x)``: that burn-in, then a drift test between the two halves of what is kept
  (``drift_z``); the record is ``equilibrated`` when ``drift_z < DRIFT_SIGMA`` (3). Fewer than
  ``2 × MIN_HALF`` kept records cannot be tested and count as not equilibrated;
* ``window_drift(a, b)``: the stop rule of thermalization, the same test between two
  consecutive windows of trajectories.

The test (``drift_z``): with ``PAIRED_CHAINS`` chains or more, the chains are independent
samples of the change ``d_c = mean(second part) − mean(first part)`` of each chain, so
``t = mean(d) / (std(d) / √C)`` is Student-t with ``C − 1`` degrees of freedom in equilibrium,
whatever the autocorrelation; ``drift_z`` is the standard-normal deviate of the same two-sided
probability. (An error from the autocorrelation time instead would see a steady drift as long
autocorrelation and hide it.) Fewer chains fall back to ``|m₂ − m₁| / √(e₁² + e₂²)`` with the
autocorrelation-corrected errors of ``autocorr.mean_error``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .autocorr import mean_error

__all__ = [
    "DRIFT_SIGMA",
    "MIN_HALF",
    "PAIRED_CHAINS",
    "THERMALIZED_SIGMA",
    "Equilibrium",
    "check",
    "mser_burn_in",
    "paired_z",
    "window_drift",
]

#: A measured record drifts when its halves differ by this many standard errors or more.
DRIFT_SIGMA = 3.0
#: Thermalization stops once two consecutive windows differ by less than this many errors
#: (stricter than ``DRIFT_SIGMA``: what follows is measured and checked again).
THERMALIZED_SIGMA = 2.0
#: Kept records per half below which the drift test cannot be made.
MIN_HALF = 4
#: Chains from which ``window_drift`` treats the chains as independent samples.
PAIRED_CHAINS = 4


def _series(x: ArrayLike) -> NDArray[np.float64]:
    """``x`` as ``[T, chains]`` float64 (a ``[T]`` series is one chain; more axes are folded
    into the chains)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return a[:, None]
    return a.reshape(a.shape[0], -1)


def mser_burn_in(x: ArrayLike, max_fraction: float = 0.5) -> int:
    """The MSER burn-in of ``x[T]`` or ``x[T, chains]`` (see the module docstring): at most
    ``max_fraction · T`` records; 0 for fewer than 4 records."""
    a = _series(x)
    t_len = a.shape[0]
    if t_len < 4:
        return 0
    s = a.mean(axis=1)
    # Suffix sums give Σ_{t≥d} x and Σ_{t≥d} x² for every d at once.
    tail = np.cumsum(s[::-1])[::-1]
    tail2 = np.cumsum((s**2)[::-1])[::-1]
    d_max = int(max_fraction * t_len)
    d = np.arange(d_max + 1)
    n = t_len - d
    sse = tail2[: d_max + 1] - tail[: d_max + 1] ** 2 / n
    mser = np.maximum(sse, 0.0) / n**2
    return int(np.argmin(mser))


@dataclass(frozen=True)
class Equilibrium:
    """The outcome of ``check``: burn-in, the halves' means, ``z`` and the verdict."""

    burn_in: int
    kept: int
    equilibrated: bool
    drift_z: float | None  #: ``|m₂ − m₁| / √(e₁² + e₂²)``; None when it cannot be computed
    halves: tuple[float, float] | None
    threshold: float
    reason: str | None  #: why the record is not equilibrated (None when it is)

    def as_dict(self, observable: str) -> dict[str, Any]:
        """The ``equilibrium`` block of ``summary.json``."""
        return {
            "observable": observable,
            "kept": self.kept,
            "drift_z": self.drift_z,
            "threshold": self.threshold,
            "halves": None if self.halves is None else list(self.halves),
            "reason": self.reason,
        }


def _t_two_sided(t: float, dof: int) -> float:
    """P(|T| ≥ t) for Student's t with ``dof`` degrees of freedom: the regularised incomplete
    beta ``I_x(dof/2, 1/2)`` at ``x = dof / (dof + t²)``, integrated numerically after
    ``u = x s^{1/a}`` (which leaves a smooth integrand on [0, 1])."""
    a, b = dof / 2.0, 0.5
    x = dof / (dof + t * t)
    s = np.linspace(0.0, 1.0, 4001)
    f = (1.0 - x * s ** (1.0 / a)) ** (b - 1.0)
    integral = float(np.sum((f[1:] + f[:-1]) * 0.5) * (s[1] - s[0]))
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return min(1.0, math.exp(a * math.log(x) - math.log(a) - log_beta) * integral)


def _normal_deviate(p: float) -> float:
    """The z with P(|Z| ≥ z) = ``p`` for a standard normal Z (bisection on erfc)."""
    if p <= 0.0:
        return math.inf
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if math.erfc(mid / math.sqrt(2.0)) > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def paired_z(first: ArrayLike, second: ArrayLike) -> float:
    """``drift_z`` of the change between ``first`` and ``second`` (``[T₁, C]``, ``[T₂, C]``,
    the same ``C ≥ 2`` chains): the paired t-test over chains as a standard-normal deviate."""
    d = _series(second).mean(axis=0) - _series(first).mean(axis=0)
    chains = d.size
    diff = abs(float(d.mean()))
    err = float(d.std(ddof=1) / math.sqrt(chains))
    if err == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    t = diff / err
    if t > 1e6:
        return math.inf
    return _normal_deviate(_t_two_sided(t, chains - 1))


def _z(m1: float, e1: float, m2: float, e2: float) -> float | None:
    if not (math.isfinite(e1) and math.isfinite(e2)):
        return None
    den = math.sqrt(e1**2 + e2**2)
    diff = abs(m2 - m1)
    if den == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / den


def check(x: ArrayLike, *, threshold: float = DRIFT_SIGMA, c: float = 5.0) -> Equilibrium:
    """Burn-in of ``x[T]``/``x[T, chains]`` from the data, then the drift test of the kept
    records' halves (see the module docstring)."""
    a = _series(x)
    burn = mser_burn_in(a)
    kept = a[burn:]
    n = kept.shape[0]
    if n < 2 * MIN_HALF:
        return Equilibrium(
            burn, n, False, None, None, threshold,
            f"too few trajectories to test ({n} kept, {2 * MIN_HALF} needed)",
        )  # fmt: skip
    half = n // 2
    first, second = kept[:half], kept[n - half :]
    halves = (float(first.mean()), float(second.mean()))
    if kept.shape[1] >= PAIRED_CHAINS:
        z: float | None = paired_z(first, second)
    else:
        e1, e2 = mean_error(first, c), mean_error(second, c)
        z = _z(e1.mean, e1.err, e2.mean, e2.err)
    if z is None:
        return Equilibrium(burn, n, False, None, halves, threshold, "no error estimate")
    if not z < threshold:
        reason = (
            f"drifts from {halves[0]:.4g} to {halves[1]:.4g} between the halves of the"
            f" {n} kept trajectories ({_zs(z)} standard errors ≥ {threshold:g})"
        )
        return Equilibrium(burn, n, False, _finite(z), halves, threshold, reason)
    return Equilibrium(burn, n, True, z, halves, threshold, None)


def _finite(z: float) -> float | None:
    return z if math.isfinite(z) else None


def _zs(z: float) -> str:
    return "∞" if not math.isfinite(z) else f"{z:.1f}"


def window_drift(a: ArrayLike, b: ArrayLike, c: float = 5.0) -> float | None:
    """``z`` between the windows ``a`` and ``b`` (``[W, chains]``, ``b`` following ``a`` on the
    same chains); None when no error can be estimated."""
    wa, wb = _series(a), _series(b)
    if wa.shape[1] >= PAIRED_CHAINS:
        return paired_z(wa, wb)
    if wa.shape[0] < 2 or wb.shape[0] < 2:
        return None
    ea, eb = mean_error(wa, c), mean_error(wb, c)
    return _z(ea.mean, ea.err, eb.mean, eb.err)
