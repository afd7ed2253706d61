"""Lattice gauge fields: plaquettes, staples, Wilson action, force, topological charge, smoothing
(TensorFlow mirror of ``pt/lattice.py``: same names, formulas and operation order).

Links ``[B, D, *L]`` real angles (U1) or ``[B, D, *L, N, N]`` complex matrices (SU(N)); direction
μ is axis 1 and shifts lattice axis ``2 + μ`` of a link tensor (axis ``1 + μ`` of a site field
``[B, *L, ...]``); periodic boundaries.  The group is inferred from the links.
``f(x + μ̂)`` is ``tf.roll(f, -1, axis=1 + μ)`` on a site field.

* Plaquette ``U_μν(x) = U_μ(x) U_ν(x+μ̂) U_μ(x+ν̂)† U_ν(x)†``;
  U1: ``θ_μν(x) = x_μ(x) + x_ν(x+μ̂) - x_μ(x+ν̂) - x_ν(x)``; planes ``(0,1), (0,2), …``.
* Wilson action ``S = β Σ_x Σ_{μ<ν} (1 - Re tr U_μν(x) / N)``; U1 ``S = β Σ (1 - cos θ_P)``.
* Staple sum ``A_μ(x)`` with ``S = const - (β/N) Re tr(U_μ(x) A_μ(x))`` in the single link:
  ``A_μ(x) = Σ_{ν≠μ} [U_ν(x+μ̂) U_μ(x+ν̂)† U_ν(x)† + U_ν(x+μ̂-ν̂)† U_μ(x-ν̂)† U_ν(x-ν̂)]``.
* Force ``F_a(U) = d/dt S(exp(t T_a) U_μ(x))|_{t=0}`` = ``(β/2N) components(U_μ(x) A_μ(x))``;
  U1: ``F_μ(x) = β Σ_ν ±[sin θ(x) - sin θ(x - ν̂)]``.  HMC: ``p ← p - ε F``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import tensorflow as tf

from .groups import TWO_PI, GaugeGroup, dagger, group_of, matmul, wrap

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
    "wilson_action",
    "wilson_loops",
]


def planes(d: int) -> list[tuple[int, int]]:
    """The ``D(D-1)/2`` planes ``(μ, ν)``, ``μ < ν``, in the order used everywhere."""
    return [(mu, nu) for mu in range(d) for nu in range(mu + 1, d)]


def shift(field: tf.Tensor, mu: int, n: int = 1) -> tf.Tensor:
    """``f(x + n μ̂)`` for a site field ``[B, *L, ...]`` (periodic)."""
    return tf.roll(field, shift=-n, axis=1 + mu)


def _ndim(links: tf.Tensor) -> int:
    return int(links.shape[1])


def _n_colors(links: tf.Tensor) -> int:
    return int(links.shape[-1]) if links.dtype.is_complex else 1


def _flat_sum(x: tf.Tensor) -> tf.Tensor:
    """Sum over everything but the batch axis: ``[B, ...] → [B]``."""
    return tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def _sites(links: tf.Tensor) -> int:
    """Number of lattice sites (static)."""
    lattice = links.shape[2 : links.shape.rank - (2 if links.dtype.is_complex else 0)]
    return math.prod(int(n) for n in lattice)


def _retr(m: tf.Tensor) -> tf.Tensor:
    """``Re tr M`` over the last two axes."""
    return tf.reduce_sum(tf.math.real(tf.linalg.diag_part(m)), axis=-1)


def _retr_prod(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``Re tr(A B) = Σ_ij Re(A_ij B_ji)`` without forming the product."""
    p = a * tf.linalg.matrix_transpose(b)
    return tf.reduce_sum(tf.math.real(p), axis=[-2, -1])


# -- plaquettes -----------------------------------------------------------------------------


def plaquette_field(links: tf.Tensor, mu: int, nu: int) -> tf.Tensor:
    """The plaquette of plane ``(μ, ν)`` at every site: U1 the angle ``θ_μν(x)`` ``[B, *L]``
    (not wrapped); SU(N) the matrix ``U_μν(x)`` ``[B, *L, N, N]``."""
    u_mu, u_nu = links[:, mu], links[:, nu]
    if not links.dtype.is_complex:
        return u_mu + shift(u_nu, mu) - shift(u_mu, nu) - u_nu
    return matmul(matmul(u_mu, shift(u_nu, mu)), dagger(matmul(u_nu, shift(u_mu, nu))))


def plaquettes(links: tf.Tensor) -> tf.Tensor:
    """``Re tr U_μν(x) / N`` (U1: ``cos θ_μν(x)``) for all planes: ``[B, D(D-1)/2, *L]``."""
    d = _ndim(links)
    if not links.dtype.is_complex:
        return tf.stack([tf.cos(plaquette_field(links, m, n)) for m, n in planes(d)], 1)
    nc = _n_colors(links)
    out = []
    for mu, nu in planes(d):
        u_mu, u_nu = links[:, mu], links[:, nu]
        out.append(
            _retr_prod(matmul(u_mu, shift(u_nu, mu)), dagger(matmul(u_nu, shift(u_mu, nu)))) / nc
        )
    return tf.stack(out, 1)


def mean_plaquette(links: tf.Tensor) -> tf.Tensor:
    """Plaquette observable per chain ``[B]``: mean over sites and planes of ``Re tr U_μν / N``."""
    p = tf.reshape(plaquettes(links), [tf.shape(links)[0], -1])
    return tf.reduce_mean(p, axis=1)


def wilson_action(links: tf.Tensor, beta: float | tf.Tensor) -> tf.Tensor:
    """``S = β Σ_x Σ_{μ<ν} (1 - Re tr U_μν(x) / N)`` per chain ``[B]``; ``beta`` a float, a 0-d
    tensor or one value per chain ``[B]``."""
    p = tf.reshape(plaquettes(links), [tf.shape(links)[0], -1])
    n = _sites(links) * len(planes(_ndim(links)))
    return beta * (float(n) - tf.reduce_sum(p, axis=1))


# -- staples and force ----------------------------------------------------------------------


def _staple_terms(links: tf.Tensor) -> Iterator[tuple[int, tf.Tensor]]:
    """Yield ``(μ, term)`` with ``A_μ = Σ term`` (SU(N)); 6 products per plane, shared."""
    d = _ndim(links)
    for mu, nu in planes(d):
        u_mu, u_nu = links[:, mu], links[:, nu]
        m_mn = dagger(matmul(u_nu, shift(u_mu, nu)))
        m_nm = dagger(matmul(u_mu, shift(u_nu, mu)))
        yield mu, matmul(shift(u_nu, mu), m_mn)
        yield nu, matmul(shift(u_mu, nu), m_nm)
        yield mu, shift(matmul(m_nm, u_nu), nu, -1)
        yield nu, shift(matmul(m_mn, u_mu), mu, -1)


def _staple_sums(links: tf.Tensor) -> tf.Tensor:
    acc: list[tf.Tensor | None] = [None] * _ndim(links)
    for mu, term in _staple_terms(links):
        prev = acc[mu]
        acc[mu] = term if prev is None else prev + term
    return tf.stack([a for a in acc if a is not None], 1)


def staples(links: tf.Tensor) -> tf.Tensor:
    """Staple sums ``A_μ(x)`` for every link, same shape as the links.

    SU(N): complex ``[B, D, *L, N, N]`` with ``S = const - (β/N) Re tr(U_μ(x) A_μ(x))``.
    U1: complex ``[B, D, *L]`` with ``S = const - β Re(e^{i x_μ(x)} A_μ(x))``.
    """
    if not links.dtype.is_complex:
        phases = tf.complex(tf.cos(links), tf.sin(links))[..., None, None]
        return _staple_sums(phases)[..., 0, 0]
    return _staple_sums(links)


def _per_chain_beta(beta: float | tf.Tensor, like: tf.Tensor) -> float | tf.Tensor:
    if isinstance(beta, tf.Tensor | tf.Variable) and beta.shape.rank == 1:
        return tf.reshape(beta, [-1] + [1] * (like.shape.rank - 1))
    return beta


def _u1_force(links: tf.Tensor, beta: float | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """U1 ``(S, F)``: ``F_μ(y) = β Σ_{planes ∋ μ} ±[sin θ(y) - sin θ(y - ν̂)]``."""
    d = _ndim(links)
    f: list[tf.Tensor | None] = [None] * d
    cos_sum = None
    for mu, nu in planes(d):
        theta = plaquette_field(links, mu, nu)
        s = tf.sin(theta)
        c = _flat_sum(tf.cos(theta))
        cos_sum = c if cos_sum is None else cos_sum + c
        f_mu = s - shift(s, nu, -1)
        f_nu = shift(s, mu, -1) - s
        prev_mu, prev_nu = f[mu], f[nu]
        f[mu] = f_mu if prev_mu is None else prev_mu + f_mu
        f[nu] = f_nu if prev_nu is None else prev_nu + f_nu
    assert cos_sum is not None
    n_plaq = _sites(links) * len(planes(d))
    b = _per_chain_beta(beta, links)
    action = beta * (float(n_plaq) - cos_sum)
    return action, b * tf.stack([t for t in f if t is not None], 1)


def action_and_force(links: tf.Tensor, beta: float | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(S [B], F)`` computed together (the force shares every product with the action).

    ``F`` has the momenta's shape: U1 ``[B, D, *L]``, SU(N) ``[B, D, *L, N²-1]``.
    ``Σ_μ Re tr(U_μ A_μ)`` counts each plaquette four times, which gives ``S``.
    """
    if not links.dtype.is_complex:
        return _u1_force(links, beta)
    grp: GaugeGroup = group_of(links)
    nc = grp.n_colors
    d = _ndim(links)
    w = matmul(links, _staple_sums(links))
    retr = _flat_sum(_retr(w))
    n_plaq = _sites(links) * len(planes(d))
    action = beta * (float(n_plaq) - retr / (4 * nc))
    f = grp.algebra_components(w) * (1.0 / (2 * nc))
    return action, _per_chain_beta(beta, f) * f


def force(links: tf.Tensor, beta: float | tf.Tensor) -> tf.Tensor:
    """Analytic force ``F_a = d/dt S(exp(t T_a) U_μ(x))|_{t=0}``, shaped like the momenta;
    SU(N): ``F = (β/2N) components(U_μ(x) A_μ(x))``; U1: ``F = ∂S/∂x``.  Twice
    differentiable (products, sines) for training."""
    return action_and_force(links, beta)[1]


# -- topological charge ---------------------------------------------------------------------


def topological_charge(links: tf.Tensor) -> tf.Tensor:
    """Topological charge per chain ``[B]``.

    U1: ``Q = (1/2π) Σ_x wrap(θ_01(x))``, an integer to rounding (D > 2: sum over all (0,1)
    slices).  SU(N), D = 4: clover ``Q = (1/32π²) Σ_x ε_μνρσ tr F_μν F_ρσ``
    ``= (1/4π²) Σ_x tr(F₀₁F₂₃ - F₀₂F₁₃ + F₀₃F₁₂)`` (not an integer on rough fields).
    Raises ``ValueError`` where the charge is undefined.
    """
    if not links.dtype.is_complex:
        return _flat_sum(wrap(plaquette_field(links, 0, 1))) / TWO_PI
    if _ndim(links) != 4:
        raise ValueError(f"the SU(N) clover charge needs D = 4, got D = {_ndim(links)}")
    f = {
        pl: clover_field_strength(links, *pl)
        for pl in ((0, 1), (2, 3), (0, 2), (1, 3), (0, 3), (1, 2))
    }
    q = _retr_prod(f[0, 1], f[2, 3]) - _retr_prod(f[0, 2], f[1, 3]) + _retr_prod(f[0, 3], f[1, 2])
    return _flat_sum(q) / (4.0 * math.pi**2)


def sin_charge(links: tf.Tensor) -> tf.Tensor:
    """U1 smooth charge ``Q_sin = (1/2π) Σ_x sin θ_01(x)`` per chain ``[B]``."""
    if links.dtype.is_complex:
        raise ValueError("sin_charge is defined for U1 links (real angles)")
    return _flat_sum(tf.sin(plaquette_field(links, 0, 1))) / TWO_PI


def clover_field_strength(links: tf.Tensor, mu: int, nu: int) -> tf.Tensor:
    """Hermitian traceless clover field strength ``F_μν(x)`` ``[B, *L, N, N]`` (SU(N)):
    ``C_μν(x)`` the four plaquettes of the (μ,ν) plane through x, counter-clockwise,
    ``F_μν = [(C - C†) - tr(C - C†)/N] / (8i)``."""
    u_mu, u_nu = links[:, mu], links[:, nu]
    p = plaquette_field(links, mu, nu)
    um_m = shift(u_mu, mu, -1)
    leaf2 = matmul(matmul(dagger(um_m), shift(p, mu, -1)), um_m)
    un_m = shift(u_nu, nu, -1)
    leaf4 = matmul(matmul(dagger(un_m), shift(p, nu, -1)), un_m)
    pm = shift(shift(p, mu, -1), nu, -1)
    v = matmul(shift(shift(u_mu, mu, -1), nu, -1), un_m)
    leaf3 = matmul(matmul(dagger(v), pm), v)
    c = p + leaf2 + leaf3 + leaf4
    a = c - dagger(c)
    nc = int(links.shape[-1])
    tr = tf.reduce_sum(tf.linalg.diag_part(a), axis=-1)
    eye = tf.eye(nc, dtype=links.dtype)
    a = a - (tr / nc)[..., None, None] * eye
    return a * tf.constant(-0.125j, dtype=a.dtype)


# -- smoothing -------------------------------------------------------------------------------


def stout(links: tf.Tensor, rho: float = 0.1, n_steps: int = 1) -> tf.Tensor:
    """Isotropic stout smearing (Morningstar & Peardon 2004), SU(N) and U1:
    ``U_μ(x) ← exp(-ρ Π(U_μ(x) A_μ(x))) U_μ(x)``, all links at once, ``n_steps`` times
    (one Wilson-flow Euler step of size ρ each)."""
    grp = group_of(links)
    for _ in range(n_steps):
        if not links.dtype.is_complex:
            f = force(links, 1.0)
            links = wrap(links - rho * f)
            continue
        f = force(links, 2.0 * grp.n_colors)
        links = grp.exp_update(links, f, -rho)
    return links


def smear(links: tf.Tensor, rho: float = 0.1, n_steps: int = 1) -> tf.Tensor:
    """Smoothing before measuring the clover charge: ``n_steps`` stout steps of ``ρ``."""
    return stout(links, rho=rho, n_steps=n_steps)


# -- Wilson loops ---------------------------------------------------------------------------


def _line(links: tf.Tensor, mu: int, length: int) -> tf.Tensor:
    """Parallel transporter from x to x + length·μ̂ at every site (U1: summed angle)."""
    u = links[:, mu]
    out = u
    for k in range(1, length):
        nxt = shift(u, mu, k)
        out = out + nxt if not links.dtype.is_complex else matmul(out, nxt)
    return out


def wilson_loops(links: tf.Tensor, r: int, t: int) -> tf.Tensor:
    """``⟨Re tr W(r×t)⟩ / N`` per chain ``[B]``, averaged over sites, planes and both
    orientations; ``r = t = 1`` is the plaquette."""
    d = _ndim(links)
    total = None
    count = 0
    sizes = [(r, t)] if r == t else [(r, t), (t, r)]
    for mu, nu in planes(d):
        for a, b in sizes:
            l_mu = _line(links, mu, a)
            l_nu = _line(links, nu, b)
            if not links.dtype.is_complex:
                ang = l_mu + shift(l_nu, mu, a) - shift(l_mu, nu, b) - l_nu
                w = tf.cos(ang)
            else:
                left = matmul(l_mu, shift(l_nu, mu, a))
                right = matmul(l_nu, shift(l_mu, nu, b))
                w = _retr_prod(left, dagger(right)) / _n_colors(links)
            m = tf.reduce_mean(tf.reshape(w, [tf.shape(w)[0], -1]), axis=1)
            total = m if total is None else total + m
            count += 1
    assert total is not None
    return total / count
