"""Autocorrelation analysis of Markov-chain time series (numpy only).

Conventions:

* A series is ``x[T]`` (one chain) or ``x[T, C]`` (``C`` independent chains of the same
  process, time first).  Chains share the mean (estimated from all data); autocovariances are
  averaged over chains (Wolff 2004, "replica" analysis).
* ``ρ(t) = Γ(t) / Γ(0)`` with ``Γ(t) = ⟨(x_s - x̄)(x_{s+t} - x̄)⟩``.
* Integrated autocorrelation time ``τ_int = ½ + Σ_{t≥1} ρ(t)`` (so independent samples have
  ``τ_int = ½`` and ``var(x̄) = 2 τ_int Γ(0) / N``); AR(1) with coefficient φ has
  ``τ_int = (1 + φ) / (2 (1 - φ))``.
* Automatic window (Madras & Sokal 1988; Sokal's lectures): the smallest ``W ≥ 1`` with
  ``W ≥ c τ_int(W)``, ``c ≈ 4–6`` (default 5).  Statistical error
  ``δτ ≈ τ √(2(2W + 1)/N)`` with ``N = T`` (per chain, the estimates of ``C`` chains averaged:
  divided by ``√C``).
* Effective sample size ``N_eff = T C / (2 τ_int)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "AutocorrResult",
    "MeanError",
    "autocorrelation",
    "binned_error",
    "effective_sample_size",
    "integrated_autocorr_time",
    "jackknife",
    "mean_error",
]


def _as_2d(x: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"expected a series [T] or [T, chains], got shape {a.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"need at least 2 time steps, got {a.shape[0]}")
    return a


def autocorrelation(x: ArrayLike, max_lag: int | None = None) -> NDArray[np.float64]:
    """Normalised autocorrelation ``ρ(t)``, ``t = 0 … max_lag`` (default ``T - 1``), via FFT.

    ``Γ(t) = 1/(C (T - t)) Σ_c Σ_s (x_{s,c} - x̄)(x_{s+t,c} - x̄)`` (unbiased in the lag count).
    A constant series returns ``ρ = [1, 0, 0, …]``.
    """
    a = _as_2d(x)
    t_len = a.shape[0]
    max_lag = t_len - 1 if max_lag is None else min(int(max_lag), t_len - 1)
    d = a - a.mean()
    n_fft = 1 << (2 * t_len - 1).bit_length()
    f = np.fft.rfft(d, n=n_fft, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=n_fft, axis=0)[: max_lag + 1].sum(axis=1)
    acov /= a.shape[1] * (t_len - np.arange(max_lag + 1))
    if acov[0] <= 0.0:
        out = np.zeros(max_lag + 1)
        out[0] = 1.0
        return out
    return np.asarray(acov / acov[0], dtype=np.float64)


@dataclass(frozen=True)
class AutocorrResult:
    """``τ_int`` with its error, the window used, and the effective sample size."""

    tau: float
    tau_err: float
    window: int
    n_eff: float
    converged: bool  #: False if no window ``W ≥ c τ(W)`` was found below ``T/2``

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            "tau": self.tau,
            "tau_err": self.tau_err,
            "window": self.window,
            "n_eff": self.n_eff,
            "converged": self.converged,
        }


def integrated_autocorr_time(x: ArrayLike, c: float = 5.0) -> AutocorrResult:
    """``τ_int`` with the Madras–Sokal automatic window (see the module docstring).

    ``x`` is ``[T]`` or ``[T, chains]``.  If no window satisfies ``W ≥ c τ(W)`` for
    ``W < T/2`` the series is too short: the estimate at ``W = T/2`` is returned with
    ``converged = False``.  A constant series gives ``τ = inf``, ``n_eff = 0`` (a frozen
    charge has no effective samples).
    """
    a = _as_2d(x)
    t_len, n_chains = a.shape
    if not np.ptp(a) > 0.0:
        # A constant series (e.g. a frozen topological charge) carries no information.
        return AutocorrResult(tau=math.inf, tau_err=math.nan, window=0, n_eff=0.0, converged=False)
    rho = autocorrelation(a, max_lag=max(1, t_len // 2))
    taus = 0.5 + np.cumsum(rho[1:])
    windows = np.arange(1, len(rho))
    ok = np.nonzero(windows >= c * taus)[0]
    converged = ok.size > 0
    i = int(ok[0]) if converged else len(taus) - 1
    w = int(windows[i])
    tau = float(max(taus[i], 0.5 / (t_len * n_chains)))
    tau_err = tau * math.sqrt(2.0 * (2 * w + 1) / t_len) / math.sqrt(n_chains)
    return AutocorrResult(
        tau=tau,
        tau_err=tau_err,
        window=w,
        n_eff=t_len * n_chains / (2.0 * tau),
        converged=converged,
    )


def effective_sample_size(x: ArrayLike, c: float = 5.0) -> float:
    """``N_eff = T C / (2 τ_int)`` for ``x[T]`` or ``x[T, C]``."""
    return integrated_autocorr_time(x, c).n_eff


@dataclass(frozen=True)
class MeanError:
    """Mean with its naive error and the autocorrelation-corrected error."""

    mean: float
    err: float  #: ``√(2 τ_int var / N)``
    naive_err: float  #: ``√(var / N)`` (independent samples)
    tau: float
    tau_err: float
    n_eff: float


def mean_error(x: ArrayLike, c: float = 5.0) -> MeanError:
    """Mean of all samples of ``x[T]`` / ``x[T, C]`` with error ``σ √(2 τ_int / N)``."""
    a = _as_2d(x)
    n = a.size
    var = float(a.var(ddof=1)) if n > 1 else 0.0
    ac = integrated_autocorr_time(a, c)
    return MeanError(
        mean=float(a.mean()),
        err=math.sqrt(2.0 * ac.tau * var / n),
        naive_err=math.sqrt(var / n),
        tau=ac.tau,
        tau_err=ac.tau_err,
        n_eff=ac.n_eff,
    )


def binned_error(x: ArrayLike, bin_size: int) -> tuple[float, float]:
    """``(mean, error)`` from non-overlapping bins of ``bin_size`` steps along time.

    Bins of every chain are pooled; the error is the standard error of the bin means, which
    approaches the true error once ``bin_size ≫ τ_int``.  Trailing steps that do not fill a
    bin are dropped.
    """
    a = _as_2d(x)
    if bin_size < 1:
        raise ValueError(f"bin_size must be ≥ 1, got {bin_size}")
    n_bins = a.shape[0] // bin_size
    if n_bins * a.shape[1] < 2:
        raise ValueError(f"need at least 2 bins; T = {a.shape[0]}, bin_size = {bin_size}")
    b = a[: n_bins * bin_size].reshape(n_bins, bin_size, a.shape[1]).mean(axis=1).ravel()
    return float(a[: n_bins * bin_size].mean()), float(b.std(ddof=1) / math.sqrt(b.size))


def jackknife(
    x: ArrayLike,
    func: Callable[[NDArray[np.float64]], float] = np.mean,
    n_bins: int = 20,
) -> tuple[float, float]:
    """Jackknife ``(estimate, error)`` of ``func`` applied to samples along axis 0.

    ``x`` is ``[T, ...]``; it is cut into ``n_bins`` blocks of consecutive samples (blocks
    longer than ``τ_int`` make the error honest for correlated data) and ``func`` is evaluated
    on the data with one block left out.  ``func`` receives an array ``[T', ...]`` and returns
    a float, e.g. ``lambda a: a[:, 0].mean() / a[:, 1].mean()``.  The estimate is
    bias-corrected: ``n f(all) - (n - 1) mean_k f(leave-out k)``.
    """
    a = np.asarray(x, dtype=np.float64)
    n_bins = min(int(n_bins), a.shape[0])
    if n_bins < 2:
        raise ValueError("jackknife needs at least 2 blocks")
    edges = np.linspace(0, a.shape[0], n_bins + 1).astype(int)
    full = float(func(a))
    loo = np.array(
        [float(func(np.concatenate([a[: edges[k]], a[edges[k + 1] :]]))) for k in range(n_bins)]
    )
    mean_loo = loo.mean()
    err = math.sqrt((n_bins - 1) / n_bins * float(((loo - mean_loo) ** 2).sum()))
    return n_bins * full - (n_bins - 1) * float(mean_loo), err
