"""Lattice action, force, staples, charges, smoothing: exact identities that must hold."""

import math

import pytest
import torch

from l2hmcc.runtime.pt import lattice as lat
from l2hmcc.runtime.pt.groups import SU2, SU3, U1

torch.set_num_threads(1)
F64 = torch.float64
ALL = [U1, SU2, SU3]
SHAPES = {"U1": (4, 6), "SU2": (2, 3, 2, 3), "SU3": (2, 3, 2, 3)}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_links(grp, batch=2, shape=None, seed=0, dtype=F64):
    return grp.random(batch, shape or SHAPES[grp.name], dtype=dtype, generator=gen(seed))


def gauge_transform(grp, links, seed):
    omega = grp.random_element(
        (links.shape[0], *links.shape[2 : 2 + links.shape[1]]), generator=gen(seed)
    )
    return grp.gauge_transform(links, omega)


def perturb(grp, links, delta):
    """exp(Σ δ_a T_a) U (U1: x + δ) with δ shaped like the momenta."""
    return links + delta if grp is U1 else grp.exp(delta) @ links


def abelian_constant_field(shape, fluxes, n_colors=None):
    """U(1) links with constant field strength: plane (μ,ν) carries flux n, every plaquette
    has angle 2πn/(L_μ L_ν) (twist on the last μ-slice).  Embedded in SU(N) as
    diag(e^{iφ}, e^{-iφ}, 1, …) when n_colors is given."""
    d = len(shape)
    x = torch.zeros((1, d, *shape), dtype=F64)
    coords = torch.meshgrid(*[torch.arange(n, dtype=F64) for n in shape], indexing="ij")
    for (mu, nu), n in fluxes.items():
        lm, ln = shape[mu], shape[nu]
        x[0, nu] += 2 * math.pi * n * coords[mu] / (lm * ln)
        x[0, mu] += torch.where(coords[mu] == lm - 1, -2 * math.pi * n * coords[nu] / ln, 0.0)
    if n_colors is None:
        return x
    ph = torch.polar(torch.ones_like(x), x)
    diag = [ph, ph.conj()] + [torch.ones_like(ph)] * (n_colors - 2)
    return torch.diag_embed(torch.stack(diag, -1))


# -- gauge invariance ------------------------------------------------------------------------


@pytest.mark.parametrize("grp", ALL, ids=str)
def test_gauge_invariance(grp) -> None:
    links = random_links(grp)
    gl = gauge_transform(grp, links, seed=1)
    assert (gl - links).abs().max() > 0.1  # the transformation is not trivial
    torch.testing.assert_close(lat.plaquettes(gl), lat.plaquettes(links))
    torch.testing.assert_close(lat.wilson_action(gl, 1.3), lat.wilson_action(links, 1.3))
    torch.testing.assert_close(lat.wilson_loops(gl, 2, 1), lat.wilson_loops(links, 2, 1))
    # the force is covariant: its norm per link is invariant
    f, fg = lat.force(links, 1.3), lat.force(gl, 1.3)
    if grp is not U1:
        f, fg = f.square().sum(-1), fg.square().sum(-1)
    torch.testing.assert_close(fg, f)


@pytest.mark.parametrize("grp", ALL, ids=str)
def test_charge_gauge_invariance(grp) -> None:
    shape = (4, 4) if grp is U1 else (3, 2, 2, 3)
    links = random_links(grp, shape=shape, seed=2)
    gl = gauge_transform(grp, links, seed=3)
    torch.testing.assert_close(lat.topological_charge(gl), lat.topological_charge(links))
    if grp is U1:
        torch.testing.assert_close(lat.sin_charge(gl), lat.sin_charge(links))
    else:  # smearing is gauge covariant
        torch.testing.assert_close(
            lat.topological_charge(lat.stout(gl, 0.1, 2)),
            lat.topological_charge(lat.stout(links, 0.1, 2)),
        )


# -- force ------------------------------------------------------------------------------------


@pytest.mark.parametrize("grp", ALL, ids=str)
def test_force_matches_autograd(grp) -> None:
    links = random_links(grp, seed=4)
    beta = torch.tensor([0.7, 2.3], dtype=F64)  # one β per chain
    delta = torch.zeros(grp.momentum_shape(links), dtype=F64, requires_grad=True)
    s = lat.wilson_action(perturb(grp, links, delta), beta)
    auto = torch.autograd.grad(s.sum(), delta)[0]
    torch.testing.assert_close(lat.force(links, beta), auto, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("grp", ALL, ids=str)
def test_force_matches_central_differences_along_each_generator(grp) -> None:
    links = random_links(grp, batch=1, seed=5)
    beta, h = 1.9, 1e-5
    f = lat.force(links, beta)
    mshape = grp.momentum_shape(links)
    sites = [(0, 0, 1), (1, 1, 0), (links.shape[1] - 1, 0, 2)]  # (μ, x₀, x₁) links to probe
    for mu, x0, x1 in sites:
        for a in range(grp.n_generators):
            delta = torch.zeros(mshape, dtype=F64)
            idx = (0, mu, x0, x1) + (0,) * (links.shape[1] - 2)
            if grp is U1:
                delta[idx] = h
            else:
                delta[(*idx, a)] = h
            fd = (
                lat.wilson_action(perturb(grp, links, delta), beta)
                - lat.wilson_action(perturb(grp, links, -delta), beta)
            ) / (2 * h)
            got = f[idx] if grp is U1 else f[(*idx, a)]
            assert abs(fd.item() - got.item()) < 1e-7, (mu, x0, x1, a, fd.item(), got.item())


@pytest.mark.parametrize("grp", ALL, ids=str)
def test_force_is_differentiable_again(grp) -> None:
    """Second derivative: d/dt [w · F(exp(tV) U)] by autograd equals central differences."""
    links = random_links(grp, seed=6)
    v = torch.randn(grp.momentum_shape(links), dtype=F64, generator=gen(7))
    w = torch.randn(grp.momentum_shape(links), dtype=F64, generator=gen(8))
    t = torch.zeros((), dtype=F64, requires_grad=True)
    val = (w * lat.force(perturb(grp, links, t * v), 1.1)).sum()
    auto = torch.autograd.grad(val, t)[0]
    h = 1e-5
    fd = (
        (w * lat.force(perturb(grp, links, h * v), 1.1)).sum()
        - (w * lat.force(perturb(grp, links, -h * v), 1.1)).sum()
    ) / (2 * h)
    assert abs(auto.item() - fd.item()) < 1e-6 * max(1.0, abs(fd.item()))


@pytest.mark.parametrize("grp", ALL, ids=str)
def test_action_and_force_agree_with_separate_calls(grp) -> None:
    links = random_links(grp, seed=9)
    s, f = lat.action_and_force(links, 2.5)
    torch.testing.assert_close(s, lat.wilson_action(links, 2.5))
    torch.testing.assert_close(f, lat.force(links, 2.5))


@pytest.mark.parametrize("grp", ALL, ids=str)
def test_staples_give_the_single_link_action(grp) -> None:
    """S(U') - S(U) = -(β/N) Re tr((U'_μ(x) - U_μ(x)) A_μ(x)) when only U_μ(x) changes."""
    links = random_links(grp, seed=10)
    beta = 1.6
    a = lat.staples(links)
    assert a.shape == links.shape
    idx = (1, 1, 1, 0) + (0,) * (links.shape[1] - 2)
    new = links.clone()
    if grp is U1:
        new[idx] = 0.37
        change = torch.polar(torch.ones((), dtype=F64), new[idx]) - torch.polar(
            torch.ones((), dtype=F64), links[idx]
        )
        expect = -beta * (change * a[idx]).real
    else:
        new[idx] = grp.random_element((), generator=gen(11))
        expect = -beta / grp.n_colors * torch.trace((new[idx] - links[idx]) @ a[idx]).real
    ds = lat.wilson_action(new, beta) - lat.wilson_action(links, beta)
    torch.testing.assert_close(ds[1], expect)
    assert ds[0] == 0


# -- plaquettes, loops, shapes ------------------------------------------------------------------


@pytest.mark.parametrize("grp", ALL, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cold_start_and_dtypes(grp, dtype) -> None:
    shape = (2, 3, 4)
    cold = grp.cold(2, shape, dtype=dtype)
    assert lat.plaquettes(cold).shape == (2, 3, *shape)
    assert torch.equal(lat.mean_plaquette(cold), torch.ones(2, dtype=dtype))
    assert torch.equal(lat.wilson_action(cold, 3.0), torch.zeros(2, dtype=dtype))
    hot = grp.random(2, shape, dtype=dtype, generator=gen(12))
    s, f = lat.action_and_force(hot, 3.0)
    assert s.dtype == dtype and f.dtype == dtype and f.shape == grp.momentum_shape(hot)
    assert (lat.mean_plaquette(hot).abs() < 0.5).all()


def test_wilson_loops_of_a_constant_abelian_field() -> None:
    shape = (8, 6)
    x = abelian_constant_field(shape, {(0, 1): 1})
    theta = 2 * math.pi / 48
    torch.testing.assert_close(lat.mean_plaquette(x), torch.tensor([math.cos(theta)], dtype=F64))
    for r, t in [(1, 1), (2, 1), (2, 3)]:
        torch.testing.assert_close(
            lat.wilson_loops(x, r, t), torch.tensor([math.cos(r * t * theta)], dtype=F64)
        )
    # the same field embedded in SU(3): Re tr / 3 = (2 cos(rtθ) + 1) / 3
    u = abelian_constant_field(shape, {(0, 1): 1}, n_colors=3)
    torch.testing.assert_close(
        lat.wilson_loops(u, 2, 3), torch.tensor([(2 * math.cos(6 * theta) + 1) / 3], dtype=F64)
    )
    links = random_links(SU3, seed=13)
    torch.testing.assert_close(lat.wilson_loops(links, 1, 1), lat.mean_plaquette(links))


# -- topological charge ------------------------------------------------------------------------


def test_u1_charge_is_an_integer_on_random_configurations() -> None:
    links = U1.random(64, (6, 6), generator=gen(14))
    q = lat.topological_charge(links)
    assert (q - q.round()).abs().max() < 1e-10
    assert q.round().unique().numel() >= 3  # rough configurations carry various charges
    assert lat.topological_charge(
        abelian_constant_field((6, 6), {(0, 1): 2})
    ).item() == pytest.approx(2)
    # Q_sin is smooth, not integer, and close to Q on a smooth field
    qs = lat.sin_charge(abelian_constant_field((16, 16), {(0, 1): 1}))
    assert qs.item() == pytest.approx(256 * math.sin(2 * math.pi / 256) / (2 * math.pi))
    with pytest.raises(ValueError):
        lat.sin_charge(SU2.cold(1, (2, 2)))


@pytest.mark.parametrize("grp", [SU2, SU3], ids=str)
@pytest.mark.parametrize(("n01", "n23"), [(1, 1), (2, -1)])
def test_clover_charge_of_constant_abelian_field_is_exact(grp, n01, n23) -> None:
    """F_μν = sin θ_μν diag(1, -1, 0…), so Q = 2 n₀₁ n₂₃ · sinc-factors exactly."""
    shape = (4, 5, 4, 6)
    u = abelian_constant_field(shape, {(0, 1): n01, (2, 3): n23}, n_colors=grp.n_colors)
    t01 = 2 * math.pi * n01 / 20
    t23 = 2 * math.pi * n23 / 24
    expect = 2 * n01 * n23 * (math.sin(t01) / t01) * (math.sin(t23) / t23)
    assert lat.topological_charge(u).item() == pytest.approx(expect, rel=1e-12)
    # a gauge transformation does not change it, smearing keeps the homogeneous field
    gu = gauge_transform(grp, u, seed=15)
    assert lat.topological_charge(gu).item() == pytest.approx(expect, rel=1e-10)
    assert lat.topological_charge(lat.stout(gu, 0.05, 1)).item() == pytest.approx(expect, rel=1e-10)


def test_clover_charge_needs_four_dimensions() -> None:
    with pytest.raises(ValueError, match="D = 4"):
        lat.topological_charge(SU3.cold(1, (2, 2, 2)))


@pytest.mark.parametrize("grp", ALL, ids=str)
def test_stout_lowers_the_action_and_stays_in_the_group(grp) -> None:
    links = random_links(grp, seed=16)
    s0 = lat.wilson_action(links, 1.0)
    sm = lat.smear(links, rho=0.05, n_steps=3)
    assert (lat.wilson_action(sm, 1.0) < s0).all()
    if grp is not U1:
        eye = torch.eye(grp.n_colors, dtype=sm.dtype)
        assert (sm.mH @ sm - eye).abs().max() < 1e-13
        assert (torch.linalg.det(sm) - 1).abs().max() < 1e-13
