"""Hybrid Monte Carlo for the Wilson action: leapfrog, Metropolis step, step-size tuning
(TensorFlow mirror of ``pt/hmc.py``).

``H = S + K`` per chain with ``K = ½ Σ p_a²``; ``dU/dt = P U`` (U1 ``dx/dt = p``) and
``dp/dt = -F`` with ``F = force(links, β)``.  One leapfrog step is kick–drift–kick,

    p ← p - (ε/2) β F₁(U);   U ← exp(ε P) U;   p ← p - (ε/2) β F₁(U)

with ``F₁`` the force at β = 1 (``n + 1`` force evaluations: the force of a step's last kick is
reused by the next step's first kick).  The two half kicks between steps are applied one after
the other, never merged into ``p - ε F``, so that the generalized leapfrog with networks that
output zeros reproduces this trajectory bit for bit.

``eps`` and ``beta`` are floats, 0-d tensors or one value per chain ``[B]``.  The steps run in a
``tf.while_loop`` (one loop body, not ``n`` unrolled copies, for XLA compile time).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .compile import compile_function
from .groups import GaugeGroup, group_of
from .lattice import action_and_force, planes, sin_charge, topological_charge
from .networks import lattice_laplacian

__all__ = [
    "LeapfrogFn",
    "TuneResult",
    "as_real",
    "compile_leapfrog",
    "fourier_filter",
    "fourier_leapfrog",
    "hamiltonian",
    "hmc_step",
    "leapfrog",
    "n_plaquettes",
    "steps_for_length",
    "tune_step_size",
]

#: ``(links, p, beta, eps, n_steps) -> (links, p, S_end, S_start)`` (actions at β = 1): the
#: integrator ``hmc_step`` uses; ``compile_leapfrog`` returns a compiled one.
LeapfrogFn = Callable[..., tuple[tf.Tensor, ...]]


def _chain(x: float | tf.Tensor, like: tf.Tensor) -> float | tf.Tensor:
    """A per-chain ``[B]`` tensor reshaped to broadcast against ``like``."""
    if isinstance(x, tf.Tensor | tf.Variable) and x.shape.rank == 1 and like.shape.rank > 1:
        return tf.reshape(x, [-1] + [1] * (like.shape.rank - 1))
    return x


def as_real(x: float | tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """``x`` as a tensor of ``dtype`` (a Python float converts directly, not via float32)."""
    if isinstance(x, tf.Tensor | tf.Variable):
        return tf.cast(x, dtype)
    return tf.convert_to_tensor(x, dtype=dtype)


#: Lattices of at most this many sites apply the Fourier filter as Hartley transforms by small
#: matmuls (``fourier_hartley``), larger ones through FFTs (mirror of ``pt/hmc.py``).
FOURIER_DENSE_MAX_VOLUME = 1024


@functools.lru_cache(maxsize=16)
def fourier_hartley(shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """``λ(k)`` on the full spectrum ``[*L]`` and per axis the Hartley matrix ``H_d[k, x] =
    cos(2πkx/L_d) + sin(2πkx/L_d)``, float64 (mirror of ``pt/hmc.py``'s ``fourier_hartley``)."""
    grids = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    lap = sum(
        (4 * np.sin(math.pi * g / n) ** 2 for g, n in zip(grids, shape, strict=True)),
        np.zeros(shape),
    )
    mats = []
    for n in shape:
        t = 2 * math.pi * np.outer(np.arange(n, dtype=np.float64), np.arange(n)) / n
        mats.append(np.cos(t) + np.sin(t))
    return (lap, *mats)


def fourier_filter(
    a: tf.Tensor, log_m2: tf.Tensor, lap: np.ndarray, shape: Sequence[int]
) -> tf.Tensor:
    """``K a`` for a field ``a`` ``[B, D, *L]`` of the links: Fourier acceleration (mirror of
    ``pt/hmc.py``'s ``fourier_filter``), ``K̂(k) = √((4D + m²)/(λ(k) + m²))``,
    ``m² = e^{log_m2}``, ``lap`` the Laplacian's eigenvalues ``λ`` on the half spectrum of the
    lattice ``shape``.  Up to ``FOURIER_DENSE_MAX_VOLUME`` sites as separable Hartley transforms
    by matmuls, ``K a = H (K̂/V) H a`` axis by axis (``K̂`` is even in every ``k_d`` apart),
    and so are 3D lattices of every size: TensorFlow has no gradient of ``irfft3d``."""
    if math.prod(shape) <= FOURIER_DENSE_MAX_VOLUME or len(shape) == 3:
        return fourier_filter_hartley(a, log_m2, lap, shape)
    return fourier_filter_fft(a, log_m2, lap, shape)


def fourier_filter_hartley(
    a: tf.Tensor, log_m2: tf.Tensor, lap: np.ndarray, shape: Sequence[int]
) -> tf.Tensor:
    """``fourier_filter`` by Hartley matmuls, ``K a = H (K̂/V) H a`` axis by axis."""
    full, *mats = fourier_hartley(tuple(int(n) for n in shape))
    n_dim = full.ndim
    m2 = tf.exp(log_m2)
    k = tf.sqrt((4 * n_dim + m2) / (tf.constant(full.astype(lap.dtype)) + m2)) / full.size
    x = tf.reshape(a, [-1, *shape])
    rotate = [0, n_dim, *range(1, n_dim)]  # the last axis first: n_dim rotations are none
    hs = [tf.constant(h.astype(lap.dtype)) for h in mats]
    for h in reversed(hs):
        x = tf.transpose(tf.tensordot(x, h, axes=[[n_dim], [0]]), rotate)
    x = x * k
    for h in reversed(hs):
        x = tf.transpose(tf.tensordot(x, h, axes=[[n_dim], [0]]), rotate)
    return tf.reshape(x, tf.shape(a))


def fourier_filter_fft(
    a: tf.Tensor, log_m2: tf.Tensor, lap: np.ndarray, shape: Sequence[int]
) -> tf.Tensor:
    """``fourier_filter`` through ``rfftnd``/``irfftnd`` (no gradient in 3D)."""
    n_dim = lap.ndim
    m2 = tf.exp(log_m2)
    k = tf.sqrt((4 * n_dim + m2) / (tf.constant(lap) + m2))
    rfft, irfft = (
        (tf.signal.rfft2d, tf.signal.irfft2d)
        if n_dim == 2
        else (tf.signal.rfft3d, tf.signal.irfft3d)
    )
    spectrum = rfft(a)
    return irfft(spectrum * tf.complex(k, tf.zeros_like(k)), fft_length=list(shape))


def n_plaquettes(links: tf.Tensor) -> int:
    """Number of plaquettes per chain: sites × D(D-1)/2."""
    d = int(links.shape[1])
    lattice = links.shape[2 : links.shape.rank - (2 if links.dtype.is_complex else 0)]
    return math.prod(int(n) for n in lattice) * len(planes(d))


def hamiltonian(links: tf.Tensor, p: tf.Tensor, beta: float | tf.Tensor) -> tf.Tensor:
    """``H = S(U) + ½ Σ p_a²`` per chain ``[B]``."""
    return action_and_force(links, beta)[0] + group_of(links).kinetic_energy(p)


def _leapfrog(
    links: tf.Tensor,
    p: tf.Tensor,
    beta: float | tf.Tensor,
    eps: float | tf.Tensor,
    n_steps: int | tf.Tensor,
    kinetic: Callable[[tf.Tensor], tf.Tensor] | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Leapfrog returning ``(links, p, S_end, S_start)`` (actions per unit β); ``kinetic``
    (``fourier_leapfrog``): kick with ``K (β F)`` and drift by ``ε K p``."""
    grp: GaugeGroup = group_of(links)
    e = _chain(eps, p)
    b = _chain(beta, p)
    half = 0.5 * e
    s_start, f = action_and_force(links, 1.0)

    def body(
        i: tf.Tensor, u: tf.Tensor, q: tf.Tensor, f: tf.Tensor, s: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        if kinetic is None:
            q = q - half * (b * f)
            u = grp.exp_update(u, q, e)
            s, f = action_and_force(u, 1.0)
            q = q - half * (b * f)
        else:
            q = q - half * kinetic(b * f)
            u = grp.exp_update(u, kinetic(q), e)
            s, f = action_and_force(u, 1.0)
            q = q - half * kinetic(b * f)
        return i + 1, u, q, f, s

    _, links, p, _, s_end = tf.while_loop(
        lambda i, *_: i < n_steps,
        body,
        (tf.constant(0), links, p, f, s_start),
        parallel_iterations=1,
    )
    return links, p, s_end, s_start


def leapfrog(
    links: tf.Tensor, p: tf.Tensor, beta: float | tf.Tensor, eps: float | tf.Tensor, n_steps: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Integrate ``n_steps`` leapfrog steps of size ``eps``; returns ``(links, p)``.
    ``n_steps = 0`` returns the inputs unchanged."""
    if n_steps == 0:
        return links, p
    out = _leapfrog(links, p, beta, eps, n_steps)
    return out[0], out[1]


def _tensor_arguments(
    compiled: LeapfrogFn, check: Callable[[tf.Tensor], None] | None = None
) -> LeapfrogFn:
    """``compiled(links, p, beta, eps, n_steps)`` called with ``β`` and ``ε`` as tensors of the
    momenta's dtype and the step count as an int32 tensor (so a new ε, β or count reuses the
    compiled function); ``check(links)`` first, if given."""

    def run(
        links: tf.Tensor,
        p: tf.Tensor,
        beta: float | tf.Tensor,
        eps: float | tf.Tensor,
        n_steps: int,
    ) -> tuple[tf.Tensor, ...]:
        if check is not None:
            check(links)
        rdt = p.dtype
        steps = tf.constant(int(n_steps), tf.int32)
        out: tuple[tf.Tensor, ...] = compiled(
            links, p, as_real(beta, rdt), as_real(eps, rdt), steps
        )
        return out

    return run


def compile_leapfrog(mode: str | bool = "xla") -> LeapfrogFn:
    """The integrator ``hmc_step`` uses (``integrator=`` argument), compiled: ``"xla"``
    (``tf.function(jit_compile=True)``, falling back to a plain ``tf.function`` with a warning
    if XLA refuses the graph), ``"graph"`` or ``"eager"``.  ``beta``, ``eps`` and ``n_steps``
    are passed as tensors (the loop count is dynamic), so step-size tuning, which changes all
    three, compiles once per dtype and shape.  The Metropolis test with its measurements is
    compiled too (the ``metropolis`` attribute, which ``hmc_step`` uses)."""
    compiled = compile_function(_leapfrog, mode, name="leapfrog")
    finish = compile_function(_metropolis, mode, name="metropolis")
    run = _tensor_arguments(compiled)

    def metropolis(
        links: tf.Tensor,
        new: tf.Tensor,
        p0: tf.Tensor,
        p1: tf.Tensor,
        s0_unit: tf.Tensor,
        s1_unit: tf.Tensor,
        beta: float | tf.Tensor,
        u: tf.Tensor,
        measure_charge: bool,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        b = as_real(beta, p0.dtype)
        out: tuple[tf.Tensor, dict[str, tf.Tensor]] = finish(
            links, new, p0, p1, s0_unit, s1_unit, b, u, measure_charge
        )
        return out

    run.compiled = compiled  # type: ignore[attr-defined]
    run.metropolis = metropolis  # type: ignore[attr-defined]
    return run


def fourier_leapfrog(
    m2: float,
    lattice_shape: Sequence[int],
    *,
    dtype: tf.DType = tf.float64,
    mode: str | bool = "xla",
) -> LeapfrogFn:
    """The Fourier-accelerated HMC integrator (``hmc { fourier = m² }``; mirror of
    ``pt/hmc.py``'s ``fourier_leapfrog``): kicks ``K F``, drifts ``ε K p``, ``K`` with the fixed
    mass² ``m2``; ``mode`` as ``compile_leapfrog``'s (``"eager"`` too)."""
    shape = tuple(int(n) for n in lattice_shape)
    if len(shape) not in (2, 3):
        raise ValueError("hmc.fourier: a lattice of dimension 2 or 3 only")
    np_dtype = tf.as_dtype(dtype).as_numpy_dtype
    lap = lattice_laplacian(shape).astype(np_dtype)
    log_m2 = tf.constant(np.full((1,), math.log(m2), np_dtype))

    def kinetic(a: tf.Tensor) -> tf.Tensor:
        return fourier_filter(a, log_m2, lap, shape)

    def integrate(
        links: tf.Tensor, p: tf.Tensor, beta: tf.Tensor, eps: tf.Tensor, n_steps: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        return _leapfrog(links, p, beta, eps, n_steps, kinetic)

    def u1_only(links: tf.Tensor) -> None:
        if links.dtype.is_complex:
            raise ValueError("hmc.fourier: U1 links only")

    return _tensor_arguments(compile_function(integrate, mode, name="Fourier leapfrog"), u1_only)


def hmc_step(
    links: tf.Tensor,
    beta: float | tf.Tensor,
    eps: float | tf.Tensor,
    n_steps: int,
    generator: tf.random.Generator | None = None,
    *,
    measure_charge: bool = True,
    integrator: LeapfrogFn | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """One HMC trajectory per chain with a per-chain Metropolis accept/reject.

    Returns ``(links, metrics)``, every metric a ``[B]`` tensor: ``accept_prob``
    ``min(1, e^{-ΔH})``, ``accepted`` 0/1, ``dH``, ``exp_minus_dH``, ``action`` and
    ``plaquette`` of the new configuration, and if ``measure_charge`` ``charge`` (U1 integer,
    SU(N) 4D clover) and for U1 ``sin_charge``.  A non-finite ``ΔH`` is rejected.
    ``integrator`` defaults to the eager leapfrog; ``compile_leapfrog()`` gives a compiled one.
    """
    gen = generator if generator is not None else tf.random.get_global_generator()
    grp = group_of(links)
    p0 = grp.random_momenta(links, gen)
    fn = integrator if integrator is not None else _leapfrog
    new, p1, s1_unit, s0_unit = fn(links, p0, beta, eps, n_steps)
    u = gen.uniform(tf.shape(links)[:1], dtype=p0.dtype)
    finish = getattr(fn, "metropolis", _metropolis)
    out: tuple[tf.Tensor, dict[str, tf.Tensor]] = finish(
        links, new, p0, p1, s0_unit, s1_unit, beta, u, measure_charge
    )
    return out


def _metropolis(
    links: tf.Tensor,
    new: tf.Tensor,
    p0: tf.Tensor,
    p1: tf.Tensor,
    s0_unit: tf.Tensor,
    s1_unit: tf.Tensor,
    beta: float | tf.Tensor,
    u: tf.Tensor,
    measure_charge: bool,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Accept ``new`` where ``u < e^{-ΔH}`` (per chain) and measure; see ``hmc_step``."""
    grp = group_of(links)
    h0 = beta * s0_unit + grp.kinetic_energy(p0)
    h1 = beta * s1_unit + grp.kinetic_energy(p1)
    dh = h1 - h0
    inf = tf.fill(tf.shape(dh), tf.constant(math.inf, dh.dtype))
    dh_safe = tf.where(tf.math.is_finite(dh), dh, inf)
    exp_mdh = tf.exp(-dh_safe)
    accepted = u < exp_mdh
    mask = tf.reshape(accepted, [-1] + [1] * (links.shape.rank - 1))
    out = tf.where(mask, new, links)
    s_unit = tf.where(accepted, s1_unit, s0_unit)
    metrics = {
        "accept_prob": tf.minimum(exp_mdh, 1.0),
        "accepted": tf.cast(accepted, dh.dtype),
        "dH": dh,
        "exp_minus_dH": exp_mdh,
        "action": beta * s_unit,
        "plaquette": 1.0 - s_unit / n_plaquettes(links),
    }
    if measure_charge:
        if not links.dtype.is_complex:
            metrics["charge"] = topological_charge(out)
            metrics["sin_charge"] = sin_charge(out)
        elif int(links.shape[1]) == 4:
            metrics["charge"] = topological_charge(out)
    return out, metrics


def steps_for_length(eps: float, traj_length: float) -> int:
    """Number of leapfrog steps ``n = ceil(τ / ε)`` (at least 1) for trajectory length ``τ``."""
    return max(1, math.ceil(traj_length / eps - 1e-9))


@dataclass(frozen=True)
class TuneResult:
    """Outcome of ``tune_step_size``: use ``eps`` and ``n_steps`` (``eps · n_steps = τ``)."""

    eps: float
    n_steps: int
    acceptance: float  #: mean acceptance probability over the final check trajectories
    links: tf.Tensor  #: the configurations after tuning (tuning doubles as thermalisation)
    trace: tuple[tuple[float, float], ...]  #: (ε, mean acceptance) per tuning trajectory


def tune_step_size(
    links: tf.Tensor,
    beta: float | tf.Tensor,
    *,
    target: float = 0.75,
    traj_length: float | None = 1.0,
    n_steps: int | None = None,
    eps0: float = 0.1,
    n_iter: int = 40,
    n_check: int = 10,
    generator: tf.random.Generator | None = None,
    integrator: LeapfrogFn | None = None,
) -> TuneResult:
    """Tune the HMC step size to a target mean acceptance probability (a fair baseline).

    Dual averaging on ``log ε`` (Hoffman & Gelman 2014, Alg. 5: γ = 0.05, t₀ = 10, κ = 0.75,
    shrinkage point ``log 10 ε₀``) driven by the batch mean of ``min(1, e^{-ΔH})``; with
    ``traj_length=τ`` every trial uses ``n = ceil(τ/ε)`` steps of size ``τ/n``, with
    ``traj_length=None`` and ``n_steps=n`` only ε is tuned.  The tuning trajectories evolve the
    chains; ``n_check`` trajectories at the final step size measure ``acceptance``.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target acceptance must lie in (0, 1), got {target}")
    if traj_length is None and n_steps is None:
        raise ValueError("give traj_length (fixed trajectory length) or n_steps (fixed steps)")

    def schedule(eps: float) -> tuple[float, int]:
        if traj_length is None:
            assert n_steps is not None
            return eps, n_steps
        n = steps_for_length(eps, traj_length)
        return traj_length / n, n

    gamma, t0, kappa = 0.05, 10.0, 0.75
    mu = math.log(10.0 * eps0)
    h_bar, log_eps_bar, log_eps = 0.0, math.log(eps0), math.log(eps0)
    trace: list[tuple[float, float]] = []
    for m in range(1, n_iter + 1):
        eps, n = schedule(math.exp(log_eps))
        links, met = hmc_step(
            links, beta, eps, n, generator, measure_charge=False, integrator=integrator
        )
        acc = float(tf.reduce_mean(met["accept_prob"]))
        trace.append((eps, acc))
        w = 1.0 / (m + t0)
        h_bar = (1.0 - w) * h_bar + w * (target - acc)
        log_eps = mu - math.sqrt(m) / gamma * h_bar
        log_eps = min(log_eps, math.log(1e3))
        eta = m**-kappa
        log_eps_bar = eta * log_eps + (1.0 - eta) * log_eps_bar
    eps, n = schedule(math.exp(log_eps_bar))
    accs = []
    for _ in range(n_check):
        links, met = hmc_step(
            links, beta, eps, n, generator, measure_charge=False, integrator=integrator
        )
        accs.append(float(tf.reduce_mean(met["accept_prob"])))
    acceptance = sum(accs) / len(accs) if accs else float("nan")
    return TuneResult(eps=eps, n_steps=n, acceptance=acceptance, links=links, trace=tuple(trace))
