"""SU(N) link algebra on planar real (re, im) arrays: the form ``torch.compile`` fuses on CPU.

Inductor emits no fused code for complex operators, and with the matrix indices as the last
(contiguous) axes it cannot vectorise across lattice sites.  The compiled HMC integrator
(``hmc.compile_leapfrog``) and the compiled L2HMC layers (``Dynamics.compile_layers``)
therefore run SU(N) links as *planar* arrays: a link tensor ``[B, D, *L, N, N]`` complex
becomes ``[N, N, 2, B, D, *L]`` real (row, column, real/imaginary part first), so every
elementwise product of matrix entries is a contiguous, vectorisable loop over chains and
sites.  Matrix products are sums of broadcast products over the leading axes (``mm``); the
drift without gradients computes on the list of a matrix's entries instead (``entries``,
``mm_entries``, ``drift_moved_entries``).  The
compiled units stay small, each one graph reused many times: one plane's staple products (or
its staple terms with the periodic shifts as index inputs, ``plane_staples``), the drift
``U ← exp(εP) U`` (of all links, or of the links one masked x update moves), ``W = U A`` with
the kick (HMC) or the action and force (L2HMC), and an L2HMC network call on pair links
(``PAIR_UNITS``, ``compile_units``; the L2HMC layer adds its own in ``dynamics.LAYER_UNITS``).  Momenta and forces keep the standard layout
``[B, D, *L, N²-1]``.

Conventions and formulas are those of ``groups`` and ``lattice`` (same force, same exponential:
Cayley–Hamilton Taylor with scaling and squaring for SU(3), closed form for SU(2)).  In eager
mode these functions are correct but slower than the complex code; they exist for compilation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from .compile import maybe_compile
from .groups import (
    SU2,
    SU3,
    SpecialUnitary,
    _su2_quaternion,
    _su3_exp_coefficients,
)

__all__ = [
    "PAIR_UNITS",
    "action_and_force",
    "action_force_from_staples",
    "compile_units",
    "dag",
    "drift",
    "drift_links",
    "drift_moved",
    "drift_moved_entries",
    "entries",
    "exp_entries",
    "from_pairs",
    "links_view",
    "mm",
    "mm_entries",
    "plane_products",
    "plane_staples",
    "site_shifts",
    "stack_entries",
    "staple_sums",
    "staple_sums_shifted",
    "to_pairs",
    "w_kick",
]

PlaneFn = Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor, Tensor]]


def to_pairs(links: Tensor) -> Tensor:
    """Complex ``[B, D, *L, N, N]`` → planar real ``[N, N, 2, B, D, *L]`` (contiguous)."""
    r = torch.view_as_real(links)
    n = r.dim()
    return r.permute(n - 3, n - 2, n - 1, *range(n - 3)).contiguous()


def from_pairs(pairs: Tensor) -> Tensor:
    """Planar real ``[N, N, 2, B, D, *L]`` → complex ``[B, D, *L, N, N]``."""
    return torch.view_as_complex(links_view(pairs).contiguous())


def links_view(pairs: Tensor) -> Tensor:
    """Planar ``[N, N, 2, B, D, *L]`` → real ``[B, D, *L, N, N, 2]`` (a view; the layout of
    ``torch.view_as_real`` of the complex links, which the networks' embedding flattens)."""
    n = pairs.dim()
    return pairs.permute(*range(3, n), 0, 1, 2)


def _group(pairs: Tensor) -> SpecialUnitary:
    grp = SU3 if pairs.shape[0] == 3 else SU2
    assert isinstance(grp, SpecialUnitary)
    return grp


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product of planar pair arrays ``[N, N, 2, ...]``.

    A sum of ``N`` broadcast products (column ``k`` of ``a`` times row ``k`` of ``b``), all
    elementwise: inductor fuses the whole product into one loop over the sites.  (A
    broadcast-and-``sum`` over ``k`` is a reduction that it materialises in between: the SU(3)
    exponential ran 5× slower, 4⁴ × 4 chains fp64.)
    """
    ar, ai = a[:, :, 0], a[:, :, 1]
    br, bi = b[:, :, 0], b[:, :, 1]
    re: Tensor | None = None
    im: Tensor | None = None
    for k in range(a.shape[1]):
        xr, xi = ar[:, k : k + 1], ai[:, k : k + 1]
        yr, yi = br[k : k + 1], bi[k : k + 1]
        t_re, t_im = xr * yr - xi * yi, xr * yi + xi * yr
        re = t_re if re is None else re + t_re
        im = t_im if im is None else im + t_im
    assert re is not None and im is not None
    return torch.stack([re, im], 2)


#: A planar matrix as its entries: ``e[i][j] = (re, im)``, each a tensor over chains and sites.
Entries = list[list[tuple[Tensor, Tensor]]]


def entries(a: Tensor) -> Entries:
    """The entries of a planar pair array ``[N, N, 2, ...]`` (views)."""
    n = a.shape[0]
    return [[(a[i, j, 0], a[i, j, 1]) for j in range(n)] for i in range(n)]


def stack_entries(e: Entries) -> Tensor:
    """``entries``' inverse: a planar pair array ``[N, N, 2, ...]``."""
    return torch.stack([torch.stack([torch.stack(z) for z in row]) for row in e])


def mm_entries(a: Entries, b: Entries) -> Entries:
    """Matrix product of entry lists: every entry a sum of ``N`` complex products, written out.

    A unit that computes on entries and stacks only its results has every intermediate matrix
    as ``N²`` separate elementwise values that inductor keeps in one loop over the sites (a
    product of stacked ``[N, N, 2, …]`` arrays is a buffer written and read back between
    loops).  Without gradients the SU(3) drift of the moved half of 4⁴ × 4 chains, fp64, ran
    0.95 ms stacked, 0.52 ms on entries, compiled as fast; with gradients (the backward's saved
    intermediates) it compiled 1.5× longer and ran slower, and so did the plane unit in both
    modes (4× the compile time, 1.4× slower): those keep the stacked form.
    """
    n = len(a)
    out: Entries = []
    for i in range(n):
        row = []
        for j in range(n):
            re: Tensor | None = None
            im: Tensor | None = None
            for k in range(n):
                (xr, xi), (yr, yi) = a[i][k], b[k][j]
                t_re, t_im = xr * yr - xi * yi, xr * yi + xi * yr
                re = t_re if re is None else re + t_re
                im = t_im if im is None else im + t_im
            assert re is not None and im is not None
            row.append((re, im))
        out.append(row)
    return out


def dag_entries(a: Entries) -> Entries:
    """Hermitian conjugate of an entry list."""
    n = len(a)
    return [[(a[j][i][0], -a[j][i][1]) for j in range(n)] for i in range(n)]


def dag(a: Tensor) -> Tensor:
    """Hermitian conjugate of a planar pair array."""
    return torch.stack([a[:, :, 0].transpose(0, 1), -a[:, :, 1].transpose(0, 1)], 2)


def _shift(field: Tensor, mu: int, n: int = 1) -> Tensor:
    """``f(x + n μ̂)`` for a per-direction planar field ``[N, N, 2, B, *L]``."""
    return torch.roll(field, shifts=-n, dims=4 + mu)


def plane_products(
    u_mu: Tensor, u_nu: Tensor, u_mu_up: Tensor, u_nu_right: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four staple terms of plane (μ, ν) (``lattice._staple_terms``), shifts done by the caller.

    Inputs ``U_μ(x)``, ``U_ν(x)``, ``U_μ(x+ν̂)``, ``U_ν(x+μ̂)``; returns the upper staples of
    μ and ν and the lower staples of μ and ν *before* their shift by ``+ν̂`` / ``+μ̂``.
    """
    m_mn = dag(mm(u_nu, u_mu_up))
    m_nm = dag(mm(u_mu, u_nu_right))
    return mm(u_nu_right, m_mn), mm(u_mu_up, m_nm), mm(m_nm, u_nu), mm(m_mn, u_mu)


def staple_sums(pairs: Tensor, plane: PlaneFn = plane_products) -> Tensor:
    """Staple sums ``A_μ(x)`` as planar pairs ``[N, N, 2, B, D, *L]`` (``plane`` may be compiled)."""
    d = pairs.shape[4]
    acc: list[Tensor | None] = [None] * d

    def add(mu: int, t: Tensor) -> None:
        prev = acc[mu]
        acc[mu] = t if prev is None else prev + t

    for mu in range(d):
        for nu in range(mu + 1, d):
            u_mu, u_nu = pairs[:, :, :, :, mu], pairs[:, :, :, :, nu]
            up_mu, up_nu, lo_mu, lo_nu = plane(u_mu, u_nu, _shift(u_mu, nu), _shift(u_nu, mu))
            add(mu, up_mu)
            add(nu, up_nu)
            add(mu, _shift(lo_mu, nu, -1))
            add(nu, _shift(lo_nu, mu, -1))
    return torch.stack([a for a in acc if a is not None], 4)


def site_shifts(lattice_shape: tuple[int, ...], device: torch.device | str | None = None) -> Tensor:
    """``[2, D, |L|]`` int64: the flattened site index of ``x + μ̂`` (row 0) and of ``x − μ̂`` (row
    1) for every site ``x`` (periodic), so that ``f(x ± μ̂) = f.index_select(-1, idx)`` on a field
    whose last axis is the flattened lattice: a periodic shift that one compiled graph takes as an
    input for every direction (``torch.roll`` bakes its axis into the graph)."""
    sites = torch.arange(math.prod(lattice_shape), device=device).reshape(lattice_shape)
    return torch.stack(
        [
            torch.stack([torch.roll(sites, -n, mu).flatten() for mu in range(len(lattice_shape))])
            for n in (1, -1)
        ]
    )


def plane_staples(
    u_mu: Tensor, u_nu: Tensor, up_mu: Tensor, up_nu: Tensor, down_mu: Tensor, down_nu: Tensor
) -> tuple[Tensor, Tensor]:
    """One plane's contribution to the staple sums of ``μ`` and ``ν``, shifts included.

    ``u_μ``, ``u_ν`` ``[N, N, 2, B, |L|]`` (sites flattened); ``up_μ``/``down_μ`` the rows of
    ``site_shifts`` (``x ± μ̂``).  Returns ``(upper_μ + lower_μ(x − ν̂), upper_ν + lower_ν(x − μ̂))``
    with the terms of ``plane_products``.
    """
    upper_mu, upper_nu, lower_mu, lower_nu = plane_products(
        u_mu, u_nu, u_mu.index_select(-1, up_nu), u_nu.index_select(-1, up_mu)
    )
    return upper_mu + lower_mu.index_select(-1, down_nu), upper_nu + lower_nu.index_select(
        -1, down_mu
    )


def staple_sums_shifted(
    pairs: Tensor, shifts: Tensor, plane: Callable[..., tuple[Tensor, Tensor]] = plane_staples
) -> Tensor:
    """``staple_sums`` with the periodic shifts inside ``plane`` (``plane_staples``, which may be
    compiled: one graph for every plane, whatever the requires_grad of the sums so far, which
    are added outside); ``shifts`` from ``site_shifts``."""
    d = pairs.shape[4]
    flat = pairs.flatten(5)  # [N, N, 2, B, D, |L|]
    acc: list[Tensor | None] = [None] * d
    up, down = shifts[0], shifts[1]

    def add(mu: int, t: Tensor) -> None:
        prev = acc[mu]
        acc[mu] = t if prev is None else prev + t

    for mu in range(d):
        for nu in range(mu + 1, d):
            u_mu, u_nu = flat[:, :, :, :, mu], flat[:, :, :, :, nu]
            a_mu, a_nu = plane(u_mu, u_nu, up[mu], up[nu], down[mu], down[nu])
            add(mu, a_mu)
            add(nu, a_nu)
    return torch.stack([a for a in acc if a is not None], 4).view_as(pairs)


def _trailing(m: Tensor) -> Tensor:
    """``[N, N, ...]`` → ``[..., N, N]`` (a view)."""
    return m.movedim((0, 1), (-2, -1))


def _action_force_from_w(pairs: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
    grp = _group(pairs)
    nc = grp.n_colors
    w = mm(pairs, a)
    retr = sum(w[i, i, 0] for i in range(nc))
    assert isinstance(retr, Tensor)
    retr = retr.flatten(1).sum(1)
    d = pairs.shape[4]
    n_plaq = pairs[0, 0, 0, 0, 0].numel() * d * (d - 1) // 2
    s_unit = n_plaq - retr / (4 * nc)
    f = grp.components_from_re_im(_trailing(w[:, :, 0]), _trailing(w[:, :, 1]))
    return s_unit, f * (1.0 / (2 * nc))


def _chain(x: Any, like: Tensor) -> Any:
    """A per-chain ``[B]`` tensor shaped to broadcast against ``like``; anything else as is."""
    if isinstance(x, Tensor) and x.dim() == 1:
        return x.reshape((-1,) + (1,) * (like.dim() - 1))
    return x


def w_kick(
    pairs: Tensor, a: Tensor, p: Tensor, beta: Tensor, eps: Tensor, second: Tensor
) -> tuple[Tensor, Tensor]:
    """``W = U A``, ``F = (1/2N) components(W)``, ``k = (ε/2) β F``; returns
    ``(p - k - second·k, S/β)`` (``second`` 1 for two half kicks with the same force, else 0)."""
    s_unit, f = _action_force_from_w(pairs, a)
    k = (0.5 * _chain(eps, p)) * (_chain(beta, p) * f)
    return (p - k) - second * k, s_unit


def action_force_from_staples(
    pairs: Tensor, a: Tensor, beta: float | Tensor
) -> tuple[Tensor, Tensor]:
    """``(S [B], F)`` from the staple sums ``a`` (``staple_sums``): ``W = U A``,
    ``S = β (n_plaq − Re tr W / 4N)``, ``F = β (1/2N) components(W)``; ``beta`` a float, a 0-d
    tensor or one value per chain ``[B]``."""
    s_unit, f = _action_force_from_w(pairs, a)
    return beta * s_unit, _chain(beta, f) * f


def _cmul(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    return a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]


def _im_det3(re: Tensor, im: Tensor) -> Tensor:
    """``Im det`` of the 3×3 matrix with planar parts ``re``, ``im`` ``[3, 3, ...]``."""

    def e(i: int, j: int) -> tuple[Tensor, Tensor]:
        return re[i, j], im[i, j]

    def minor(i: int, j: int, k: int, m: int) -> tuple[Tensor, Tensor]:
        x, y = _cmul(e(1, i), e(2, j)), _cmul(e(1, k), e(2, m))
        return x[0] - y[0], x[1] - y[1]

    t0 = _cmul(e(0, 0), minor(1, 2, 2, 1))
    t1 = _cmul(e(0, 1), minor(0, 2, 2, 0))
    t2 = _cmul(e(0, 2), minor(0, 1, 1, 0))
    return t0[1] - t1[1] + t2[1]


def _eye_like(n: int, like: Tensor) -> Tensor:
    """Planar identity ``[N, N, 2, 1, …]`` broadcasting against ``like`` ``[N, N, 2, ...]``."""
    eye = torch.eye(n, dtype=like.dtype, device=like.device)
    eye = torch.stack([eye, torch.zeros_like(eye)], 2)
    return eye.reshape(n, n, 2, *([1] * (like.dim() - 3)))


def _su3_algebra_planar(p: Tensor) -> Tensor:
    """``Σ_a p_a iλ_a/2`` as a planar array ``[3, 3, 2, ...]`` from ``p`` ``[..., 8]``.

    Same entries as ``SpecialUnitary.algebra_re_im``, read from contiguous component planes.
    """
    c = (0.5 * p).movedim(-1, 0).contiguous()
    p1, p2, p3, p4, p5, p6, p7, p8 = c.unbind(0)
    p8 = p8 * (1.0 / 3.0**0.5)
    z = torch.zeros_like(p1)
    re = torch.stack([torch.stack(r) for r in ((z, p2, p5), (-p2, z, p7), (-p5, -p7, z))])
    im = torch.stack(
        [torch.stack(r) for r in ((p3 + p8, p1, p4), (p1, p8 - p3, p6), (p4, p6, -2.0 * p8))]
    )
    return torch.stack([re, im], 2)


def exp_pairs(p: Tensor, n_colors: int) -> Tensor:
    """``exp(Σ_a p_a T_a)`` as planar pairs ``[N, N, 2, ...]`` from ``p`` ``[..., N²-1]``."""
    if n_colors == 2:
        a0, a1, a2, a3 = _su2_quaternion(p).movedim(-1, 0).contiguous().unbind(0)
        re = torch.stack([torch.stack([a0, a2]), torch.stack([-a2, a0])])
        im = torch.stack([torch.stack([a3, a1]), torch.stack([a1, -a3])])
        return torch.stack([re, im], 2)
    grp = SU3
    assert isinstance(grp, SpecialUnitary)
    k = grp.EXP_SQUARINGS
    y = _su3_algebra_planar(p * (0.5**k))
    yr, yi = y[:, :, 0], y[:, :, 1]
    y2 = mm(y, y)
    s = 0.5 * (y2[0, 0, 0] + y2[1, 1, 0] + y2[2, 2, 0])
    delta = _im_det3(yr, yi)
    ar, ai, br, bi, cr, ci = _su3_exp_coefficients(s, delta, grp.EXP_ORDER)

    def scale(c_r: Tensor, c_i: Tensor, m: Tensor) -> Tensor:
        return torch.stack(
            [c_r * m[:, :, 0] - c_i * m[:, :, 1], c_r * m[:, :, 1] + c_i * m[:, :, 0]], 2
        )

    eye = _eye_like(3, y)
    e = scale(ar, ai, eye.expand_as(y)) + scale(br, bi, y) + scale(cr, ci, y2)
    for _ in range(k):
        e = mm(e, e) + e * 2.0
    return e + eye


def drift(pairs: Tensor, p: Tensor, eps: Tensor) -> Tensor:
    """``U ← exp(ε P) U`` on planar links; ``eps`` a 0-d tensor or one value per chain ``[B]``."""
    return mm(exp_pairs(_chain(eps, p) * p, pairs.shape[0]), pairs)


def drift_links(pairs: Tensor, p: Tensor, eps: Tensor, index: Tensor) -> Tensor:
    """``drift`` of the links ``index`` (into the link axes ``[D, *L]`` flattened) only, the
    others unchanged: the x update of one masked half of an L2HMC layer at half the work."""
    return drift_moved(pairs, p.flatten(1, -2).index_select(1, index), eps, index)


def drift_moved(pairs: Tensor, p: Tensor, eps: Tensor, index: Tensor) -> Tensor:
    """``drift_links`` with ``p`` ``[B, M, N²−1]`` given for the links ``index`` only (an
    x-network's heads at the moved links, ``LeapfrogNet.forward_moved``)."""
    flat = pairs.flatten(4)  # [N, N, 2, B, D·|L|]
    new = drift(flat.index_select(4, index), p, eps)
    return flat.index_copy(4, index, new).view_as(pairs)


def _su3_algebra_entries(p: Tensor) -> Entries:
    """``Σ_a p_a iλ_a/2`` as entries from ``p`` ``[..., 8]`` (those of
    ``SpecialUnitary.algebra_re_im``, read from contiguous component planes)."""
    c = (0.5 * p).movedim(-1, 0).contiguous()
    p1, p2, p3, p4, p5, p6, p7, p8 = c.unbind(0)
    p8 = p8 * (1.0 / 3.0**0.5)
    z = torch.zeros_like(p1)
    return [
        [(z, p3 + p8), (p2, p1), (p5, p4)],
        [(-p2, p1), (z, p8 - p3), (p7, p6)],
        [(-p5, p4), (-p7, p6), (z, -2.0 * p8)],
    ]


def _im_det3_entries(y: Entries) -> Tensor:
    """``Im det`` of the 3×3 matrix with entries ``y``."""

    def minor(i: int, j: int, k: int, m: int) -> tuple[Tensor, Tensor]:
        x, z = _cmul(y[1][i], y[2][j]), _cmul(y[1][k], y[2][m])
        return x[0] - z[0], x[1] - z[1]

    t0 = _cmul(y[0][0], minor(1, 2, 2, 1))
    t1 = _cmul(y[0][1], minor(0, 2, 2, 0))
    t2 = _cmul(y[0][2], minor(0, 1, 1, 0))
    return t0[1] - t1[1] + t2[1]


def exp_entries(p: Tensor, n_colors: int) -> Entries:
    """``exp(Σ_a p_a T_a)`` as entries from ``p`` ``[..., N²−1]`` (the formulas of
    ``groups``: SU(2) closed form, SU(3) Cayley–Hamilton Taylor with scaling and squaring)."""
    if n_colors == 2:
        a0, a1, a2, a3 = _su2_quaternion(p).movedim(-1, 0).contiguous().unbind(0)
        return [[(a0, a3), (a2, a1)], [(-a2, a1), (a0, -a3)]]
    grp = SU3
    assert isinstance(grp, SpecialUnitary)
    k = grp.EXP_SQUARINGS
    y = _su3_algebra_entries(p * (0.5**k))
    y2 = mm_entries(y, y)
    s = 0.5 * (y2[0][0][0] + y2[1][1][0] + y2[2][2][0])
    ar, ai, br, bi, cr, ci = _su3_exp_coefficients(s, _im_det3_entries(y), grp.EXP_ORDER)
    e: Entries = []
    for i in range(3):
        row = []
        for j in range(3):
            (yr, yi), (qr, qi) = y[i][j], y2[i][j]
            re = br * yr - bi * yi + (cr * qr - ci * qi)
            im = br * yi + bi * yr + (cr * qi + ci * qr)
            if i == j:
                re, im = ar + re, ai + im
            row.append((re, im))
        e.append(row)
    for _ in range(k):
        e2 = mm_entries(e, e)
        e = [
            [(e2[i][j][0] + 2.0 * e[i][j][0], e2[i][j][1] + 2.0 * e[i][j][1]) for j in range(3)]
            for i in range(3)
        ]
    return [
        [(e[i][j][0] + 1.0, e[i][j][1]) if i == j else e[i][j] for j in range(3)] for i in range(3)
    ]


def drift_moved_entries(pairs: Tensor, p: Tensor, eps: Tensor, index: Tensor) -> Tensor:
    """``drift_moved`` computed on entries (``exp_entries``, ``mm_entries``): the same values,
    faster compiled without gradients (``mm_entries``)."""
    flat = pairs.flatten(4)  # [N, N, 2, B, D·|L|]
    e = exp_entries(_chain(eps, p) * p, pairs.shape[0])
    new = stack_entries(mm_entries(e, entries(flat.index_select(4, index))))
    return flat.index_copy(4, index, new).view_as(pairs)


def _network(net: Callable[..., Any], links: Tensor, other: Tensor, mask: Tensor | None) -> Any:
    """``net(links, other, mask)``: an L2HMC network (an argument, so one graph serves all)."""
    return net(links, other, mask)


#: The units of the SU(N) L2HMC layer on pairs; ``compile_units`` gives compiled ones.
PAIR_UNITS: Mapping[str, Callable[..., Any]] = {
    "plane": plane_products,
    "plane_staples": plane_staples,
    "force": action_force_from_staples,
    "drift": drift,
    "drift_links": drift_links,
    "drift_moved": drift_moved,
    "drift_moved_entries": drift_moved_entries,
    "network": _network,
}


#: AOT autograd's partitioner settings while a unit compiles with gradients (the train step):
#: ``max_dist_from_bw = 0`` has the backward graph read the forward's saved intermediates
#: instead of recomputing chains of them (the default 1000 recomputes the drift's
#: exponential and the plane products in the backward kernels), so the backward kernels are
#: smaller, compile faster and run faster (docs/performance.md); same values.
UNIT_AUTOGRAD_CONFIG: Mapping[str, Any] = {"max_dist_from_bw": 0}


def compile_units(
    units: Mapping[str, Callable[..., Any]] = PAIR_UNITS, **compile_kwargs: Any
) -> dict[str, Callable[..., Any]]:
    """``units`` (``PAIR_UNITS`` or a superset) through ``torch.compile`` (``dynamic=False``
    unless given), each with the eager fallback of ``compile.maybe_compile``; a unit compiles at
    its first call, so unused ones cost nothing.  Small graphs, each reused: one plane's
    staples for every plane (the shifts are index inputs), the drift for every x update, forward
    and inverse (the sign of ``ε`` is an input), the force for every layer, the network call
    (embedding of the pair links included) for every network of its kind (x or v)."""
    kwargs: dict[str, Any] = {"dynamic": False, **compile_kwargs}
    return {
        name: maybe_compile(
            fn, True, name=f"SU(N) {name} unit", autograd_config=UNIT_AUTOGRAD_CONFIG, **kwargs
        )
        for name, fn in units.items()
    }


def action_and_force(
    pairs: Tensor,
    beta: float | Tensor = 1.0,
    units: Mapping[str, Callable[..., Any]] = PAIR_UNITS,
    shifts: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """``(S [B], F)`` for pair links, as ``lattice.action_and_force`` (same formula and order);
    ``units`` are ``PAIR_UNITS`` or compiled ones (``compile_units``).  With ``shifts``
    (``site_shifts``) the staple sums run through the ``plane_staples`` unit, shifts included."""
    if shifts is None:
        a = staple_sums(pairs, units["plane"])
    else:
        a = staple_sums_shifted(pairs, shifts, units["plane_staples"])
    return units["force"](pairs, a, beta)  # type: ignore[no-any-return]
