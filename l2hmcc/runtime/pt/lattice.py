"""Lattice gauge fields: plaquettes, staples, Wilson action, force, topological charge, smoothing.

Shapes and conventions are those of docs/contracts.md (see also ``groups.py``): links
``[B, D, *L]`` real angles (U1) or ``[B, D, *L, N, N]`` complex matrices (SU(N)); direction μ
is axis 1 and shifts lattice axis ``2 + μ`` of a link tensor (axis ``1 + μ`` of a site field
``[B, *L, ...]``); the boundary is periodic.  The group is inferred from the links (real →
U1, complex → SU(N)).  ``f(x + μ̂)`` is ``torch.roll(f, -1, dims=1 + μ)`` on a site field.

* Plaquette ``U_μν(x) = U_μ(x) U_ν(x+μ̂) U_μ(x+ν̂)† U_ν(x)†``;
  U1: ``θ_μν(x) = x_μ(x) + x_ν(x+μ̂) - x_μ(x+ν̂) - x_ν(x)``.  Planes are ordered
  ``(0,1), (0,2), …, (0,D-1), (1,2), …`` (``planes(D)``).
* Wilson action ``S = β Σ_x Σ_{μ<ν} (1 - Re tr U_μν(x) / N)``; U1 ``S = β Σ (1 - cos θ_P)``.
  Dimensionless (lattice units); ``β = 2N/g²`` for SU(N), ``1/g²`` for U(1).
* Staple sum ``A_μ(x)`` such that ``S = const - (β/N) Re tr(U_μ(x) A_μ(x))`` as a function of
  the single link ``U_μ(x)``:
  ``A_μ(x) = Σ_{ν≠μ} [U_ν(x+μ̂) U_μ(x+ν̂)† U_ν(x)† + U_ν(x+μ̂-ν̂)† U_μ(x-ν̂)† U_ν(x-ν̂)]``.
* Force ``F_a(U) = d/dt S(exp(t T_a) U_μ(x))|_{t=0}`` (same shape as the momenta):
  ``F = (β / 2N) · components(U_μ(x) A_μ(x))`` (see ``GaugeGroup.algebra_components``);
  U1: ``F_μ(x) = ∂S/∂x_μ(x) = β Σ_ν ±[sin θ(x) - sin θ(x - ν̂)]``.  HMC: ``p ← p - ε F``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from .groups import TWO_PI, GaugeGroup, dagger, group_of, wrap

__all__ = [
    "action_and_force",
    "clover_field_strength",
    "force",
    "mean_plaquette",
    "planes",
    "plaquette_field",
    "plaquettes",
    "shift",
    "sin_charge",
    "smear",
    "staples",
    "stout",
    "topological_charge",
    "u1_action_and_force_halo",
    "wilson_action",
    "wilson_loops",
]


def planes(d: int) -> list[tuple[int, int]]:
    """The ``D(D-1)/2`` planes ``(μ, ν)``, ``μ < ν``, in the order used everywhere."""
    return [(mu, nu) for mu in range(d) for nu in range(mu + 1, d)]


def shift(field: Tensor, mu: int, n: int = 1) -> Tensor:
    """``f(x + n μ̂)`` for a site field ``[B, *L, ...]`` (periodic)."""
    return torch.roll(field, shifts=-n, dims=1 + mu)


def _ndim(links: Tensor) -> int:
    return links.shape[1]


def _n_colors(links: Tensor) -> int:
    return links.shape[-1] if links.is_complex() else 1


def _retr(m: Tensor) -> Tensor:
    """``Re tr M`` over the last two axes."""
    return torch.diagonal(m, dim1=-2, dim2=-1).real.sum(-1)


def _retr_prod(a: Tensor, b: Tensor) -> Tensor:
    """``Re tr(A B) = Σ_ij Re(A_ij B_ji)`` without forming the product."""
    p = a * b.transpose(-1, -2)
    return p.real.sum((-2, -1))


# -- plaquettes -----------------------------------------------------------------------------


def plaquette_field(links: Tensor, mu: int, nu: int) -> Tensor:
    """The plaquette of plane ``(μ, ν)`` at every site.

    U1: the angle ``θ_μν(x)`` ``[B, *L]`` (not wrapped; in ``(-4π, 4π)``).
    SU(N): the matrix ``U_μν(x)`` ``[B, *L, N, N]``.
    """
    u_mu, u_nu = links[:, mu], links[:, nu]
    if not links.is_complex():
        return u_mu + shift(u_nu, mu) - shift(u_mu, nu) - u_nu
    return (u_mu @ shift(u_nu, mu)) @ dagger(u_nu @ shift(u_mu, nu))


def plaquettes(links: Tensor) -> Tensor:
    """``Re tr U_μν(x) / N`` (U1: ``cos θ_μν(x)``) for all planes: ``[B, D(D-1)/2, *L]``."""
    d = _ndim(links)
    if not links.is_complex():
        return torch.stack([torch.cos(plaquette_field(links, m, n)) for m, n in planes(d)], 1)
    nc = _n_colors(links)
    out = []
    for mu, nu in planes(d):
        u_mu, u_nu = links[:, mu], links[:, nu]
        out.append(_retr_prod(u_mu @ shift(u_nu, mu), dagger(u_nu @ shift(u_mu, nu))) / nc)
    return torch.stack(out, 1)


def mean_plaquette(links: Tensor) -> Tensor:
    """Plaquette observable per chain ``[B]``: mean over sites and planes of ``Re tr U_μν / N``.

    U1: ``⟨cos θ_P⟩``; its exact 2D value is in ``common.exact``.
    """
    return plaquettes(links).flatten(1).mean(1)


def wilson_action(links: Tensor, beta: float | Tensor) -> Tensor:
    """``S = β Σ_x Σ_{μ<ν} (1 - Re tr U_μν(x) / N)`` per chain ``[B]`` (U1: ``β Σ (1 - cos θ_P)``).

    ``beta`` is a float, a 0-d tensor or one value per chain ``[B]``.
    """
    p = plaquettes(links).flatten(1)
    return beta * (p.shape[1] - p.sum(1))


# -- staples and force ----------------------------------------------------------------------


def _staple_terms(links: Tensor) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(μ, term)`` with ``A_μ = Σ term`` (SU(N)); 6 products per plane, shared."""
    d = _ndim(links)
    for mu, nu in planes(d):
        u_mu, u_nu = links[:, mu], links[:, nu]
        u_mu_up, u_nu_right = shift(u_mu, nu), shift(u_nu, mu)  # U_μ(x+ν̂), U_ν(x+μ̂)
        # M_μν(x) = U_μ(x+ν̂)† U_ν(x)† = (U_ν(x) U_μ(x+ν̂))†, and the same with μ ↔ ν.
        m_mn = dagger(u_nu @ u_mu_up)
        m_nm = dagger(u_mu @ u_nu_right)
        # upper staples: U_ν(x+μ̂) M_μν(x) for μ, U_μ(x+ν̂) M_νμ(x) for ν
        yield mu, u_nu_right @ m_mn
        yield nu, u_mu_up @ m_nm
        # lower staples, computed at y = x - ν̂ (resp. x - μ̂) and shifted back:
        # U_ν(y+μ̂)† U_μ(y)† U_ν(y) = M_νμ(y) U_ν(y)   for link μ at x = y + ν̂
        # U_μ(y+ν̂)† U_ν(y)† U_μ(y) = M_μν(y) U_μ(y)   for link ν at x = y + μ̂
        yield mu, shift(m_nm @ u_nu, nu, -1)
        yield nu, shift(m_mn @ u_mu, mu, -1)


def staples(links: Tensor) -> Tensor:
    """Staple sums ``A_μ(x)`` for every link, same shape as the links.

    SU(N): complex ``[B, D, *L, N, N]`` with ``S = const - (β/N) Re tr(U_μ(x) A_μ(x))``.
    U1: complex ``[B, D, *L]`` with ``S = const - β Re(e^{i x_μ(x)} A_μ(x))``.
    """
    if not links.is_complex():
        # e^{ix} as 1×1 matrices: the SU(N) products are the U(1) ones.
        return _staple_sums(torch.polar(torch.ones_like(links), links)[..., None, None])[..., 0, 0]
    return _staple_sums(links)


def _staple_sums(links: Tensor) -> Tensor:
    acc: list[Tensor | None] = [None] * _ndim(links)
    for mu, term in _staple_terms(links):
        _accumulate(acc, mu, term)
    return torch.stack([a for a in acc if a is not None], 1)


def _accumulate(acc: list[Tensor | None], i: int, term: Tensor) -> None:
    """``acc[i] += term``, where ``None`` stands for a sum with no terms yet."""
    prev = acc[i]
    acc[i] = term if prev is None else prev + term


def _u1_force(links: Tensor, beta: float | Tensor) -> tuple[Tensor, Tensor]:
    """U1 ``(S, F)``: ``F_μ(y) = β Σ_{planes ∋ μ} ±[sin θ(y) - sin θ(y - ν̂)]``."""
    d = _ndim(links)
    f: list[Tensor | None] = [None] * d
    cos_sum = None
    for mu, nu in planes(d):
        theta = plaquette_field(links, mu, nu)
        s = torch.sin(theta)
        c = torch.cos(theta).flatten(1).sum(1)
        cos_sum = c if cos_sum is None else cos_sum + c
        # θ_μν(x) = x_μ(x) + x_ν(x+μ̂) - x_μ(x+ν̂) - x_ν(x)
        f_mu = s - shift(s, nu, -1)
        f_nu = shift(s, mu, -1) - s
        _accumulate(f, mu, f_mu)
        _accumulate(f, nu, f_nu)
    assert cos_sum is not None
    n_plaq = links[:, 0].numel() // links.shape[0] * len(planes(d))
    b = _per_chain_beta(beta, links)
    action = beta * (n_plaq - cos_sum)
    return action, b * torch.stack([t for t in f if t is not None], 1)


def u1_action_and_force_halo(links: Tensor, beta: float | Tensor) -> tuple[Tensor, Tensor]:
    """U1 ``action_and_force`` (the same formula and operation order) with ``sin θ(y − ν̂)`` and
    ``sin θ(y − μ̂)`` read from ``sin θ`` padded periodically by one site before ``y`` (a halo)
    instead of rolled.

    Why: in a compiled graph the halo copy is one materialised buffer, so the sine is evaluated
    once per site in vectorised code and the shifted reads are plain offsets. With rolls, and
    inductor's default options, the sines are recomputed at the rolled sites of the rolled
    links (nested modulo indices), which compiles to a scalar loop of ``sin``/``cos``: about
    half of a ``network local`` layer graph's time (``Dynamics`` uses this form there; the
    network-free proposal and HMC materialise every intermediate instead, ``hmc.COMPILE_OPTIONS``).
    """
    d = _ndim(links)
    f: list[Tensor | None] = [None] * d
    cos_sum = None
    for mu, nu in planes(d):
        theta = plaquette_field(links, mu, nu)
        c = torch.cos(theta).flatten(1).sum(1)
        cos_sum = c if cos_sum is None else cos_sum + c
        halo = torch.sin(theta)  # [B, *L] -> [B, ..., 1 + L_μ, ..., 1 + L_ν, ...]
        for axis in (1 + mu, 1 + nu):
            halo = torch.cat([halo.narrow(axis, halo.shape[axis] - 1, 1), halo], axis)
        l_mu, l_nu = theta.shape[1 + mu], theta.shape[1 + nu]
        s = halo.narrow(1 + mu, 1, l_mu).narrow(1 + nu, 1, l_nu)
        s_back_nu = halo.narrow(1 + mu, 1, l_mu).narrow(1 + nu, 0, l_nu)  # sin θ(y − ν̂)
        s_back_mu = halo.narrow(1 + mu, 0, l_mu).narrow(1 + nu, 1, l_nu)  # sin θ(y − μ̂)
        _accumulate(f, mu, s - s_back_nu)
        _accumulate(f, nu, s_back_mu - s)
    assert cos_sum is not None
    n_plaq = links[:, 0].numel() // links.shape[0] * len(planes(d))
    b = _per_chain_beta(beta, links)
    action = beta * (n_plaq - cos_sum)
    return action, b * torch.stack([t for t in f if t is not None], 1)


def _per_chain_beta(beta: float | Tensor, like: Tensor) -> float | Tensor:
    if isinstance(beta, Tensor) and beta.dim() == 1:
        return beta.reshape((-1,) + (1,) * (like.dim() - 1))
    return beta


def _group(links: Tensor) -> GaugeGroup:
    return group_of(links)


def action_and_force(links: Tensor, beta: float | Tensor) -> tuple[Tensor, Tensor]:
    """``(S [B], F)`` computed together (the force shares every product with the action).

    ``F`` has the momenta's shape: U1 ``[B, D, *L]``, SU(N) ``[B, D, *L, N²-1]``; see
    ``force``.  ``Σ_μ Re tr(U_μ A_μ)`` counts each plaquette four times, which gives ``S``.
    """
    if not links.is_complex():
        return _u1_force(links, beta)
    grp = _group(links)
    nc = grp.n_colors
    d = _ndim(links)
    w = links @ _staple_sums(links)
    retr = _retr(w).flatten(1).sum(1)
    n_plaq = links[:, 0].numel() // (links.shape[0] * nc * nc) * len(planes(d))
    action = beta * (n_plaq - retr / (4 * nc))
    f = grp.algebra_components(w) * (1.0 / (2 * nc))
    return action, _per_chain_beta(beta, f) * f


def force(links: Tensor, beta: float | Tensor) -> Tensor:
    """Analytic force ``F_a = d/dt S(exp(t T_a) U_μ(x))|_{t=0}``, shaped like the momenta.

    SU(N): ``F = (β/2N) components(U_μ(x) A_μ(x))``, i.e. ``F_a = -(β/N) Re tr(T_a U A)``;
    U1: ``F = ∂S/∂x``.  Twice differentiable (products, sines) for training.
    ``beta`` is a float, a 0-d tensor or one value per chain ``[B]``.
    """
    return action_and_force(links, beta)[1]


# -- topological charge ---------------------------------------------------------------------


def topological_charge(links: Tensor) -> Tensor:
    """Topological charge per chain ``[B]``.

    U1: ``Q = (1/2π) Σ_x wrap(θ_01(x))``, an integer to rounding (in D > 2 the sum runs over
    all (0,1) planes, i.e. it is the sum of the 2D charges of every (0,1) slice).
    SU(N), D = 4: the clover charge ``Q = (1/32π²) Σ_x ε_μνρσ tr F_μν F_ρσ``
    ``= (1/4π²) Σ_x tr(F₀₁F₂₃ - F₀₂F₁₃ + F₀₃F₁₂)`` with ``F`` from ``clover_field_strength``
    (not an integer on rough fields: smooth first, see ``stout``).
    """
    if not links.is_complex():
        return wrap(plaquette_field(links, 0, 1)).flatten(1).sum(1) / TWO_PI
    if _ndim(links) != 4:
        raise ValueError(f"the SU(N) clover charge needs D = 4, got D = {_ndim(links)}")
    f = {
        pl: clover_field_strength(links, *pl)
        for pl in ((0, 1), (2, 3), (0, 2), (1, 3), (0, 3), (1, 2))
    }
    q = _retr_prod(f[0, 1], f[2, 3]) - _retr_prod(f[0, 2], f[1, 3]) + _retr_prod(f[0, 3], f[1, 2])
    return q.flatten(1).sum(1) / (4.0 * math.pi**2)


def sin_charge(links: Tensor) -> Tensor:
    """U1 smooth charge ``Q_sin = (1/2π) Σ_x sin θ_01(x)`` per chain ``[B]``."""
    if links.is_complex():
        raise ValueError("sin_charge is defined for U1 links (real angles)")
    return torch.sin(plaquette_field(links, 0, 1)).flatten(1).sum(1) / TWO_PI


def clover_field_strength(links: Tensor, mu: int, nu: int) -> Tensor:
    """Hermitian traceless clover field strength ``F_μν(x)`` ``[B, *L, N, N]`` (SU(N)).

    ``C_μν(x)`` is the sum of the four plaquettes in the (μ,ν) plane that start and end at x
    (counter-clockwise), ``F_μν = [(C - C†) - tr(C - C†)/N] / (8i)``.  For a smooth field
    ``F_μν = a² g F^cont_μν + O(a⁴)``; for an abelian plaquette angle θ it equals ``sin θ``.
    """
    u_mu, u_nu = links[:, mu], links[:, nu]
    # leaf at x (upper right), then the others as plaquettes at x-μ̂, x-ν̂, x-μ̂-ν̂ transported
    p = plaquette_field(links, mu, nu)  # U_μν(y) at every y
    # U_μν(x-μ̂) starts at x-μ̂: transport to x by U_μ(x-μ̂)† · ... · U_μ(x-μ̂)
    um_m = shift(u_mu, mu, -1)
    leaf2 = dagger(um_m) @ shift(p, mu, -1) @ um_m
    # U_μν(x-ν̂) starts at x-ν̂: transport by U_ν(x-ν̂)
    un_m = shift(u_nu, nu, -1)
    leaf4 = dagger(un_m) @ shift(p, nu, -1) @ un_m
    # U_μν(x-μ̂-ν̂): path x → x-ν̂ → x-μ̂-ν̂, i.e. V = U_μ(x-μ̂-ν̂) U_ν(x-ν̂) from the corner
    pm = shift(shift(p, mu, -1), nu, -1)
    v = shift(shift(u_mu, mu, -1), nu, -1) @ un_m
    leaf3 = dagger(v) @ pm @ v
    c = p + leaf2 + leaf3 + leaf4
    a = c - dagger(c)
    nc = links.shape[-1]
    tr = torch.diagonal(a, dim1=-2, dim2=-1).sum(-1)
    eye = torch.eye(nc, dtype=links.dtype, device=links.device)
    a = a - (tr / nc)[..., None, None] * eye
    return a * (-0.125j)


# -- smoothing -------------------------------------------------------------------------------


def stout(links: Tensor, rho: float = 0.1, n_steps: int = 1) -> Tensor:
    """Isotropic stout smearing (Morningstar & Peardon 2004), SU(N) and U1.

    ``U_μ(x) ← exp(-ρ Π(U_μ(x) A_μ(x))) U_μ(x)`` applied to all links at once, ``n_steps``
    times, with ``Π`` the traceless anti-Hermitian projection: this is MP's
    ``exp(iQ) U`` with ``Ω = ρ Σ staples · U†``; one step of ``ρ`` is a Wilson-flow Euler step of
    size ``ρ``.  Stays in the group exactly (exponential map), differentiable, gauge covariant.
    """
    grp = _group(links)
    for _ in range(n_steps):
        if not links.is_complex():
            f = force(links, 1.0)
            links = wrap(links - rho * f)
            continue
        # force(β=2N) = components(U A): one Euler step of the flow.
        f = force(links, 2.0 * grp.n_colors)
        links = grp.exp_update(links, f, -rho)
    return links


def smear(links: Tensor, rho: float = 0.1, n_steps: int = 1) -> Tensor:
    """Smoothing before measuring the clover charge: ``n_steps`` stout steps of ``ρ``."""
    return stout(links, rho=rho, n_steps=n_steps)


# -- Wilson loops ---------------------------------------------------------------------------


def _line(links: Tensor, mu: int, length: int) -> Tensor:
    """Parallel transporter from x to x + length·μ̂ at every site (U1: summed angle)."""
    u = links[:, mu]
    out = u
    for k in range(1, length):
        nxt = shift(u, mu, k)
        out = out + nxt if not links.is_complex() else out @ nxt
    return out


def wilson_loops(links: Tensor, r: int, t: int) -> Tensor:
    """``⟨Re tr W(r×t)⟩ / N`` per chain ``[B]``, averaged over sites, planes and both orientations.

    ``W`` is the ``r × t`` rectangle ``x → x+rμ̂ → x+rμ̂+tν̂ → x+tν̂ → x``; ``r = t = 1`` is the
    plaquette.  In 2D U(1) at infinite volume ``⟨W⟩ = (I₁(β)/I₀(β))^{r t}``.
    """
    d = _ndim(links)
    total = None
    count = 0
    sizes = [(r, t)] if r == t else [(r, t), (t, r)]
    for mu, nu in planes(d):
        for a, b in sizes:
            l_mu = _line(links, mu, a)
            l_nu = _line(links, nu, b)
            if not links.is_complex():
                ang = l_mu + shift(l_nu, mu, a) - shift(l_mu, nu, b) - l_nu
                w = torch.cos(ang)
            else:
                left = l_mu @ shift(l_nu, mu, a)
                right = l_nu @ shift(l_mu, nu, b)
                w = _retr_prod(left, dagger(right)) / _n_colors(links)
            m = w.flatten(1).mean(1)
            total = m if total is None else total + m
            count += 1
    assert total is not None
    return total / count
