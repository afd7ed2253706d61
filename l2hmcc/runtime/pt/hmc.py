"""Hybrid Monte Carlo for the Wilson action: leapfrog, Metropolis step, step-size tuning.

Conventions (docs/contracts.md): ``H = S + K`` per chain with ``K = ½ Σ p_a²``; equations of
motion ``dU/dt = P U`` (U1 ``dx/dt = p``) and ``dp/dt = -F`` with ``F = force(links, β)``.
The leapfrog (velocity Verlet) is

    n times { p ← p - (ε/2) F(U);  U ← exp(ε P) U;  p ← p - (ε/2) F(U) }

(n + 1 force evaluations: the force at the end of a step is reused at the start of the next;
the two half kicks are not merged, so that the leapfrog equals an L2HMC transport with
vanishing networks bit for bit).  It is reversible (``p → -p`` retraces the trajectory) and volume
preserving, so the Metropolis test ``u < exp(-ΔH)`` per chain makes HMC exact.  Step sizes are
in units of molecular-dynamics time; the trajectory length is ``ε n``.

``eps`` may be a float, a 0-d tensor, or one step size per chain ``[B]``; ``beta`` likewise.
Nothing here calls ``.item()``: metrics stay tensors on the links' device (no host syncs),
except in ``tune_step_size`` which is a host-side loop by nature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from . import su_pairs
from .groups import GaugeGroup, group_of
from .lattice import action_and_force, planes, sin_charge, topological_charge
from .networks import lattice_laplacian

__all__ = [
    "LeapfrogFn",
    "TuneResult",
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

#: ``(links, p, beta, eps, n_steps) -> (links, p, S_end, S_start)``: the integrator used by
#: ``hmc_step``; ``compile_leapfrog`` returns a compiled one.
LeapfrogFn = Callable[[Tensor, Tensor, "float | Tensor", "float | Tensor", int], tuple[Tensor, ...]]

#: ``fourier_hartley``'s buffers ``(λ on the full spectrum, H_1, …, H_D)``, or ``None`` (the
#: filter through FFTs).
DenseFilter = tuple[Tensor, ...] | None


def _chain(x: float | Tensor, like: Tensor) -> float | Tensor:
    """A per-chain ``[B]`` tensor reshaped to broadcast against ``like``."""
    if isinstance(x, Tensor) and x.dim() == 1 and like.dim() > 1:
        return x.reshape((-1,) + (1,) * (like.dim() - 1))
    return x


#: Lattices of at most this many sites apply the Fourier filter as Hartley transforms by small
#: matmuls (``fourier_hartley``), larger ones through ``rfftn``/``irfftn``; measured on CPU
#: (U1 16×16 and 32×32 gain, 64×64 loses).
FOURIER_DENSE_MAX_VOLUME = 1024


def fourier_hartley(
    shape: tuple[int, ...], *, dtype: torch.dtype, device: Any = None
) -> DenseFilter:
    """The buffers of the Fourier filter by matmuls on a lattice ``shape`` (``fourier_filter``'s
    ``dense``): ``λ(k)`` on the full spectrum ``[*L]`` and per axis the Hartley matrix
    ``H_d[k, x] = cos(2πkx/L_d) + sin(2πkx/L_d)`` (symmetric, ``H_d² = L_d``).  ``None`` above
    ``FOURIER_DENSE_MAX_VOLUME`` sites."""
    if math.prod(shape) > FOURIER_DENSE_MAX_VOLUME:
        return None
    # float64 on the device itself (no host-to-device copy), then the model's dtype
    f64: dict[str, Any] = {"dtype": torch.float64, "device": device}
    grids = torch.meshgrid(*(torch.arange(n, **f64) for n in shape), indexing="ij")
    lap = sum(
        (4 * torch.sin(math.pi * g / n) ** 2 for g, n in zip(grids, shape, strict=True)),
        torch.zeros(shape, **f64),
    )
    mats = []
    for n in shape:
        t = 2 * math.pi * torch.outer(torch.arange(n, **f64), torch.arange(n, **f64)) / n
        mats.append(torch.cos(t) + torch.sin(t))
    return tuple(m.to(dtype=dtype) for m in (lap, *mats))


def fourier_filter(a: Tensor, log_m2: Tensor, lap: Tensor, dense: DenseFilter = None) -> Tensor:
    """``K a`` for a field ``a`` ``[B, D, *L]`` of the links (a force or momenta): Fourier
    acceleration.

    Per direction, ``K̂(k) = √((4D + m²)/(λ(k) + m²))`` with ``λ(k) = Σ_d 4 sin²(k_d/2)`` the
    lattice Laplacian's eigenvalues (``lap``, on ``rfftn``'s half spectrum) and ``m² =
    e^{log_m2}``: 1 for the highest momentum, ``√((4D + m²)/m²)`` for constant fields.  A layer
    kicks with ``K F`` and drifts by ``ε K v``: HMC with the momentum-space mass ``K⁻²`` in the
    variables where the kinetic energy is ``½Σv²``.  Both sub-steps stay shears (unit Jacobian,
    exact inverse), and ``K`` commutes with gauge transformations (U1 momenta and forces are
    invariant; a drift of the links by any field of momenta commutes with them).

    ``K̂`` is real: the spectrum is scaled as real pairs (``view_as_real``), which inductor fuses,
    instead of a product with a complex ``K̂ + 0i`` (the same values: ``a·k − b·0 = a·k``).

    ``dense`` (``fourier_hartley``, small lattices; ``lap`` is then unused): ``λ(k)`` is even
    in every ``k_d`` apart, so the separable Hartley functions ``Π_d cas(k_d x_d)`` (sums of the
    plane waves ``e^{i(±k_1 x_1 ± …)}``, one eigenvalue) diagonalise ``K``: ``K a = H (K̂/V) H a``
    with ``H = ⊗_d H_d``, applied axis by axis as real matmuls (``a @ H_d``, then the axes rotated
    by one), without complex tensors; the FFTs' values to rounding at less cost on small lattices."""
    if dense is not None:
        full, *mats = dense
        n_dim = full.dim()
        m2 = torch.exp(log_m2)
        k = torch.sqrt((4 * n_dim + m2) / (full + m2)) / full.numel()
        x = a.reshape(-1, *a.shape[2:])
        rotate = (0, n_dim, *range(1, n_dim))  # the last axis first: n_dim rotations are none
        # each rotation made contiguous: every product is then one plain matmul of
        # [B·D·V/L_d, L_d] rows (a strided batch of L_d × L_d products otherwise)
        for h in reversed(mats):
            x = (x @ h).permute(rotate).contiguous()
        x = x * k
        for h in reversed(mats):
            x = (x @ h).permute(rotate).contiguous()
        return x.reshape(a.shape)
    n_dim = lap.dim()
    m2 = torch.exp(log_m2)
    k = torch.sqrt((4 * n_dim + m2) / (lap + m2))
    dims = tuple(range(2, 2 + n_dim))
    spectrum = torch.view_as_real(torch.fft.rfftn(a, dim=dims)) * k[..., None]
    out: Tensor = torch.fft.irfftn(torch.view_as_complex(spectrum), s=a.shape[2:], dim=dims)
    return out


def n_plaquettes(links: Tensor) -> int:
    """Number of plaquettes per chain: sites × D(D-1)/2."""
    d = links.shape[1]
    sites = links[0, 0].numel() // (links.shape[-1] ** 2 if links.is_complex() else 1)
    return sites * len(planes(d))


def hamiltonian(links: Tensor, p: Tensor, beta: float | Tensor) -> Tensor:
    """``H = S(U) + ½ Σ p_a²`` per chain ``[B]``."""
    grp = group_of(links)
    return action_and_force(links, beta)[0] + grp.kinetic_energy(p)


def _md_step(
    links: Tensor, p: Tensor, beta: float | Tensor, eps: float | Tensor, second: float | Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Drift ``U ← exp(ε P) U``, force, half kick ``p ← p - (ε/2) β F(U)``, and, when
    ``second`` is 1 (interior steps), the next step's opening half kick with the same force.

    Two half kicks rather than one full kick: the leapfrog then equals, bit for bit, a sequence
    of L2HMC layers with vanishing networks (``p - k - k`` and ``p - 2k`` differ in the last
    bit).  ``second`` is a float (eager) or a 0-d tensor (compiled); returns ``S/β`` too.
    """
    grp: GaugeGroup = group_of(links)
    e = _chain(eps, p)
    links = grp.exp_update(links, p, e)
    s_unit, f = action_and_force(links, 1.0)
    k = (0.5 * e) * (_chain(beta, p) * f)
    p = p - k
    if isinstance(second, Tensor):
        p = p - second * k
    elif second:
        p = p - k
    return links, p, s_unit


def _first_kick(
    links: Tensor, p: Tensor, beta: float | Tensor, eps: float | Tensor
) -> tuple[Tensor, Tensor]:
    """The opening half kick ``p ← p - (ε/2) β F(U)``; returns ``(p, S/β)``."""
    s_unit, f = action_and_force(links, 1.0)
    return p - (0.5 * _chain(eps, p)) * (_chain(beta, p) * f), s_unit


def _leapfrog(
    links: Tensor,
    p: Tensor,
    beta: float | Tensor,
    eps: float | Tensor,
    n_steps: int,
    first_kick: Callable[..., tuple[Tensor, Tensor]] = _first_kick,
    md_step: Callable[..., tuple[Tensor, Tensor, Tensor]] = _md_step,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Leapfrog returning ``(links, p, S_end/β, S_start/β)``; the actions come with the forces.

    Forces are evaluated at β = 1 and scaled by β, so the action per unit β (hence the
    plaquette) is known even at β = 0.
    """
    p, s_start = first_kick(links, p, beta, eps)
    s_unit = s_start
    for i in range(n_steps):
        links, p, s_unit = md_step(links, p, beta, eps, 1.0 if i < n_steps - 1 else 0.0)
    return links, p, s_unit, s_start


def leapfrog(
    links: Tensor, p: Tensor, beta: float | Tensor, eps: float | Tensor, n_steps: int
) -> tuple[Tensor, Tensor]:
    """Integrate ``n_steps`` leapfrog steps of size ``eps``; returns ``(links, p)``.

    Shapes: links ``[B, D, *L]`` / ``[B, D, *L, N, N]``, momenta as ``GaugeGroup.momentum_shape``.
    ``n_steps = 0`` returns the inputs unchanged.
    """
    if n_steps == 0:
        return links, p
    out = _leapfrog(links, p, beta, eps, n_steps)
    return out[0], out[1]


#: inductor options: materialise intermediate buffers instead of recomputing them inside
#: consumers; with periodic shifts (``torch.roll``) the recomputed producers end up in
#: scalar, unvectorised loops (measured: the U1 force 5× slower than eager without this,
#: 2.4× faster than eager with it).
COMPILE_OPTIONS: dict[str, object] = {"realize_opcount_threshold": 1}


def _leapfrog_pairs(
    links: Tensor,
    p: Tensor,
    beta: float | Tensor,
    eps: float | Tensor,
    n_steps: int,
    units: dict[str, Callable[..., Any]],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The leapfrog of ``_leapfrog`` on real-pair SU(N) links (``su_pairs``) with given units."""
    b = torch.as_tensor(beta, dtype=p.dtype, device=p.device)
    e = torch.as_tensor(eps, dtype=p.dtype, device=p.device)
    one, zero = (torch.tensor(v, dtype=p.dtype, device=p.device) for v in (1.0, 0.0))
    lr = su_pairs.to_pairs(links)
    p, s_start = units["w_kick"](lr, su_pairs.staple_sums(lr, units["plane"]), p, b, e, zero)
    s_unit = s_start
    for i in range(n_steps):
        lr = units["drift"](lr, p, e)
        a = su_pairs.staple_sums(lr, units["plane"])
        p, s_unit = units["w_kick"](lr, a, p, b, e, one if i < n_steps - 1 else zero)
    return su_pairs.from_pairs(lr), p, s_unit, s_start


def compile_leapfrog(
    *, pairs: bool = True, compile_complex: bool = False, **compile_kwargs: Any
) -> LeapfrogFn:
    """A ``torch.compile``-d integrator for ``hmc_step(..., integrator=...)``.

    The compiled units are one molecular-dynamics step (drift + force + kick), the opening
    half kick and, for real dtypes, the Metropolis test with the measurements (used by
    ``hmc_step`` through the ``metropolis`` attribute of the returned function); the loop over steps stays in Python, so the graphs stay small (seconds to
    compile) and do not depend on ``n_steps``.  ``compile_kwargs`` go to ``torch.compile``
    (default ``dynamic=False``, ``options=COMPILE_OPTIONS``).  If compilation fails at the
    first call, a warning is issued and the eager integrator is used from then on.  Real
    dtypes (U1) compile to fused vectorised kernels.  Inductor emits no fused code for complex
    operators (measured slower than eager on SU(3); docs/performance.md), so
    SU(N) links are integrated on real (re, im) pairs (``su_pairs``, ``pairs=True``, the
    default); with ``pairs=False`` complex links run the eager integrator, or the compiled
    complex one if ``compile_complex=True``.
    """
    import warnings

    kwargs: dict[str, Any] = {"dynamic": False, "options": dict(COMPILE_OPTIONS)}
    kwargs.update(compile_kwargs)
    first = torch.compile(_first_kick, **kwargs)
    step = torch.compile(_md_step, **kwargs)
    # SU(N): real-pair units, default inductor options (materialising every intermediate
    # costs more than recomputation for these small matrix products).
    pair_kwargs: dict[str, Any] = {"dynamic": False}
    pair_kwargs.update(compile_kwargs)
    pair_units: dict[str, Callable[..., Any]] = {
        "plane": torch.compile(su_pairs.plane_products, **pair_kwargs),
        "w_kick": torch.compile(su_pairs.w_kick, **pair_kwargs),
        "drift": torch.compile(su_pairs.drift, **pair_kwargs),
    }
    metropolis = torch.compile(_metropolis, **kwargs)
    state: dict[str, Any] = {"compiled": True}

    def run(
        links: Tensor, p: Tensor, beta: float | Tensor, eps: float | Tensor, n_steps: int
    ) -> tuple[Tensor, ...]:
        if state["compiled"] and links.is_complex() and pairs:
            try:
                return _leapfrog_pairs(links, p, beta, eps, n_steps, pair_units)
            except Exception as exc:
                warnings.warn(
                    f"torch.compile of the SU(N) leapfrog failed ({type(exc).__name__}: {exc}); "
                    "running eager",
                    RuntimeWarning,
                    stacklevel=2,
                )
                state["compiled"] = False
        if state["compiled"] and (compile_complex or not links.is_complex()):
            # Python floats would be baked into the graphs (one recompilation per new ε or β);
            # 0-d tensors are graph inputs.
            b = torch.as_tensor(beta, dtype=p.dtype, device=p.device)
            e = torch.as_tensor(eps, dtype=p.dtype, device=p.device)
            one, zero = (torch.tensor(v, dtype=p.dtype, device=p.device) for v in (1.0, 0.0))

            def step_t(
                links: Tensor, p: Tensor, beta: Tensor, eps: Tensor, second: float
            ) -> tuple[Tensor, Tensor, Tensor]:
                return step(links, p, beta, eps, one if second else zero)

            try:
                return _leapfrog(links, p, b, e, n_steps, first, step_t)
            except Exception as exc:  # compilation problems surface at the first call
                warnings.warn(
                    f"torch.compile of the leapfrog failed ({type(exc).__name__}: {exc}); "
                    "running eager",
                    RuntimeWarning,
                    stacklevel=2,
                )
                state["compiled"] = False
        return _leapfrog(links, p, beta, eps, n_steps)

    def finish(
        links: Tensor,
        new: Tensor,
        p0: Tensor,
        p1: Tensor,
        s0_unit: Tensor,
        s1_unit: Tensor,
        beta: float | Tensor,
        u: Tensor,
        measure_charge: bool,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        # real dtypes only: the SU(N) clover charge is complex arithmetic (no fused code)
        if state["compiled"] and not links.is_complex():
            b = torch.as_tensor(beta, dtype=p0.dtype, device=p0.device)
            try:
                out: tuple[Tensor, dict[str, Tensor]] = metropolis(
                    links, new, p0, p1, s0_unit, s1_unit, b, u, measure_charge
                )
                return out
            except Exception as exc:
                warnings.warn(
                    f"torch.compile of the Metropolis step failed ({type(exc).__name__}: "
                    f"{exc}); running eager",
                    RuntimeWarning,
                    stacklevel=2,
                )
                state["compiled"] = False
        return _metropolis(links, new, p0, p1, s0_unit, s1_unit, beta, u, measure_charge)

    run.metropolis = finish  # type: ignore[attr-defined]
    return run


def _fourier_first_kick(
    links: Tensor,
    p: Tensor,
    beta: Tensor,
    eps: Tensor,
    log_m2: Tensor,
    lap: Tensor,
    dense: DenseFilter = None,
) -> tuple[Tensor, Tensor]:
    """``_first_kick`` with the filtered force ``K F`` (``fourier_leapfrog``)."""
    s_unit, f = action_and_force(links, 1.0)
    kick = fourier_filter(_chain(beta, p) * f, log_m2, lap, dense)
    return p - (0.5 * _chain(eps, p)) * kick, s_unit


def _fourier_md_step(
    links: Tensor,
    p: Tensor,
    beta: Tensor,
    eps: Tensor,
    second: Tensor,
    log_m2: Tensor,
    lap: Tensor,
    dense: DenseFilter = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``_md_step`` with the drift ``ε K P`` and the kicks ``K F`` (``fourier_leapfrog``)."""
    grp: GaugeGroup = group_of(links)
    e = _chain(eps, p)
    links = grp.exp_update(links, fourier_filter(p, log_m2, lap, dense), e)
    s_unit, f = action_and_force(links, 1.0)
    k = (0.5 * e) * fourier_filter(_chain(beta, p) * f, log_m2, lap, dense)
    p = p - k - second * k
    return links, p, s_unit


def fourier_leapfrog(
    m2: float,
    lattice_shape: tuple[int, ...],
    *,
    dtype: torch.dtype,
    device: torch.device | str | None = None,
    compiled: bool = True,
    **compile_kwargs: Any,
) -> LeapfrogFn:
    """The Fourier-accelerated HMC integrator (``hmc { fourier = m² }``, U1 on a 2D or 3D
    lattice) for ``hmc_step(..., integrator=...)`` and ``tune_step_size``.

    The leapfrog with the kicks ``p ← p − (ε/2) K F`` and the drifts ``x ← x + ε K p``, ``K``
    the filter of ``fourier_filter`` with a fixed mass² ``m2``: each sub-step a shear (unit
    Jacobian), the whole reversible under ``p → −p``, and the exact flow
    (``ẋ = K p``, ``ṗ = −K F``) conserves ``H = S + ½Σp²`` (``K`` is symmetric), so the usual
    Metropolis test with ``½Σp²`` is exact and ``ΔH = O(ε²)``.  ``compiled``: the two units
    through ``torch.compile`` (``COMPILE_OPTIONS``), eager with a warning if that fails.
    """
    import warnings

    shape = tuple(int(n) for n in lattice_shape)
    if len(shape) not in (2, 3):
        raise ValueError("hmc.fourier: a lattice of dimension 2 or 3 only")
    lap = lattice_laplacian(shape, dtype=dtype, device=device)
    dense = fourier_hartley(shape, dtype=dtype, device=device)
    log_m2 = torch.full((1,), math.log(m2), dtype=dtype, device=device)
    units: dict[str, Callable[..., Any]] = {
        "first": _fourier_first_kick,
        "step": _fourier_md_step,
    }
    if compiled:
        kwargs: dict[str, Any] = {"dynamic": False, "options": dict(COMPILE_OPTIONS)}
        kwargs.update(compile_kwargs)
        units = {k: torch.compile(fn, **kwargs) for k, fn in units.items()}

    def integrate(
        links: Tensor, p: Tensor, beta: float | Tensor, eps: float | Tensor, n_steps: int
    ) -> tuple[Tensor, ...]:
        if links.is_complex():
            raise ValueError("hmc.fourier: U1 links only")
        b = torch.as_tensor(beta, dtype=p.dtype, device=p.device)
        e = torch.as_tensor(eps, dtype=p.dtype, device=p.device)
        one, zero = (torch.tensor(v, dtype=p.dtype, device=p.device) for v in (1.0, 0.0))

        def first(links: Tensor, p: Tensor, beta: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
            out: tuple[Tensor, Tensor] = units["first"](links, p, beta, eps, log_m2, lap, dense)
            return out

        def step(
            links: Tensor, p: Tensor, beta: Tensor, eps: Tensor, second: float
        ) -> tuple[Tensor, Tensor, Tensor]:
            out: tuple[Tensor, Tensor, Tensor] = units["step"](
                links, p, beta, eps, one if second else zero, log_m2, lap, dense
            )
            return out

        return _leapfrog(links, p, b, e, n_steps, first, step)

    def run(
        links: Tensor, p: Tensor, beta: float | Tensor, eps: float | Tensor, n_steps: int
    ) -> tuple[Tensor, ...]:
        nonlocal units
        try:
            return integrate(links, p, beta, eps, n_steps)
        except ValueError:
            raise
        except Exception as exc:  # compilation problems surface at the first call
            if units["first"] is _fourier_first_kick:
                raise
            warnings.warn(
                f"torch.compile of the Fourier leapfrog failed ({type(exc).__name__}: {exc});"
                " running eager",
                RuntimeWarning,
                stacklevel=2,
            )
            units = {"first": _fourier_first_kick, "step": _fourier_md_step}
            return integrate(links, p, beta, eps, n_steps)

    return run


def hmc_step(
    links: Tensor,
    beta: float | Tensor,
    eps: float | Tensor,
    n_steps: int,
    generator: torch.Generator | None = None,
    *,
    measure_charge: bool = True,
    integrator: LeapfrogFn | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """One HMC trajectory per chain with a per-chain Metropolis accept/reject.

    Returns ``(links, metrics)``; every metric is a ``[B]`` tensor:

    * ``accept_prob`` ``min(1, e^{-ΔH})``; ``accepted`` 0/1; ``dH`` ``H_end - H_start``
      (``exp_minus_dH`` for the Creutz equality ``⟨e^{-ΔH}⟩ = 1``);
    * ``action`` and ``plaquette`` (mean ``Re tr U_P / N``) of the new configuration;
    * ``charge`` (U1 integer charge; SU(N) 4D clover charge, unsmoothed) and, for U1,
      ``sin_charge``, if ``measure_charge``.

    A non-finite ``ΔH`` is rejected.  ``integrator`` defaults to the eager leapfrog; pass
    ``compile_leapfrog()`` to use the compiled one.
    """
    grp = group_of(links)
    p0 = grp.random_momenta(links, generator)
    fn = integrator if integrator is not None else _leapfrog
    new, p1, s1_unit, s0_unit = fn(links, p0, beta, eps, n_steps)
    u = torch.rand(links.shape[:1], dtype=p0.dtype, device=p0.device, generator=generator)
    finish = getattr(fn, "metropolis", _metropolis)
    return finish(links, new, p0, p1, s0_unit, s1_unit, beta, u, measure_charge)


def _metropolis(
    links: Tensor,
    new: Tensor,
    p0: Tensor,
    p1: Tensor,
    s0_unit: Tensor,
    s1_unit: Tensor,
    beta: float | Tensor,
    u: Tensor,
    measure_charge: bool,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Accept ``new`` where ``u < e^{-ΔH}`` (per chain) and measure; see ``hmc_step``."""
    grp = group_of(links)
    h0 = beta * s0_unit + grp.kinetic_energy(p0)
    h1 = beta * s1_unit + grp.kinetic_energy(p1)
    dh = h1 - h0
    dh_safe = torch.where(torch.isfinite(dh), dh, torch.full_like(dh, math.inf))
    exp_mdh = torch.exp(-dh_safe)
    accepted = u < exp_mdh
    mask = accepted.reshape((-1,) + (1,) * (links.dim() - 1))
    out = torch.where(mask, new, links)
    s_unit = torch.where(accepted, s1_unit, s0_unit)
    metrics = {
        "accept_prob": torch.clamp(exp_mdh, max=1.0),
        "accepted": accepted.to(dh.dtype),
        "dH": dh,
        "exp_minus_dH": exp_mdh,
        "action": beta * s_unit,
        "plaquette": 1.0 - s_unit / n_plaquettes(links),
    }
    if measure_charge:
        if not links.is_complex():
            metrics["charge"] = topological_charge(out)
            metrics["sin_charge"] = sin_charge(out)
        elif links.shape[1] == 4:
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
    links: Tensor  #: the configurations after tuning (tuning doubles as thermalisation)
    trace: tuple[tuple[float, float], ...]  #: (ε, mean acceptance) per tuning trajectory


def tune_step_size(
    links: Tensor,
    beta: float | Tensor,
    *,
    target: float = 0.75,
    traj_length: float | None = 1.0,
    n_steps: int | None = None,
    eps0: float = 0.1,
    n_iter: int = 40,
    n_check: int = 10,
    generator: torch.Generator | None = None,
    integrator: LeapfrogFn | None = None,
) -> TuneResult:
    """Tune the HMC step size to a target mean acceptance probability (a fair baseline).

    Dual averaging on ``log ε`` (Hoffman & Gelman 2014, Alg. 5: γ = 0.05, t₀ = 10, κ = 0.75,
    shrinkage point ``log 10 ε₀``) driven by the batch mean of ``min(1, e^{-ΔH})``.

    * ``traj_length=τ`` (default 1): the trajectory length is fixed; every trial uses
      ``n = ceil(τ/ε)`` steps of size ``τ/n``, and the result satisfies ``eps · n_steps = τ``.
    * ``traj_length=None`` with ``n_steps=n``: ``n`` is fixed and ``ε`` is tuned freely.

    The chains are evolved by the tuning trajectories (thermalisation), then ``n_check``
    trajectories at the final step size measure ``acceptance``.
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
        acc = float(met["accept_prob"].mean())
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
        accs.append(float(met["accept_prob"].mean()))
    acceptance = sum(accs) / len(accs) if accs else float("nan")
    return TuneResult(eps=eps, n_steps=n, acceptance=acceptance, links=links, trace=tuple(trace))
