"""Exactness of the runtime (issue 3's list), one body per property, run for PyTorch and
TensorFlow through the ``fw`` adapter (tests/runtime/conftest.py).

Reversibility of the leapfrog, of every generalized-leapfrog layer and of the proposal to 1e-12
(fp64); log-det against the log|det| of the autodiff Jacobian; zero networks = plain leapfrog
bit for bit; gauge invariance of the action, plaquettes and charges; group membership after
many updates; the force against central differences; Creutz equality ⟨e^{−ΔH}⟩ = 1;
equipartition; exact 2D U(1) plaquette on 16×16 at β = 1, 2, 3 within 3σ; an L2HMC step with
random networks preserves the U(1) plaquette distribution; SU(3) strong coupling.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from l2hmcc.runtime.common import exact
from l2hmcc.runtime.common.autocorr import mean_error
from l2hmcc.runtime.common.config import DynamicsConfig, NetworkConfig

TOL = 1e-12
# untrained networks with O(1) outputs (head_init=1): the layers really transform the state
RANDOM_NETS = NetworkConfig(hidden=(16, 16), activation="tanh", head_init=1.0)
CONV_NETS = NetworkConfig(
    conv_filters=(2, 4), conv_kernels=(3,), conv_pool=(1, 2), hidden=(8,), head_init=1.0
)
VARIANTS = [
    pytest.param("U1", (4, 4), {"x_update": "compact"}, RANDOM_NETS, id="u1-compact"),
    pytest.param("U1", (4, 4), {"x_update": "affine"}, RANDOM_NETS, id="u1-affine"),
    pytest.param(
        "U1", (4, 4), {"mask": "random", "split_x": False}, CONV_NETS, id="u1-conv-random-mask"
    ),
    pytest.param("SU2", (2, 2, 2), {"networks": "shared"}, RANDOM_NETS, id="su2-shared"),
    pytest.param("SU3", (2, 2, 2, 2), {"leapfrog": 2}, RANDOM_NETS, id="su3"),
]


def make(
    fw: Any, name: str, shape: tuple[int, ...], net: Any = RANDOM_NETS, seed: int = 0, **cfg: Any
) -> Any:
    cfg.setdefault("leapfrog", 3)
    cfg.setdefault("step_size", 0.2)
    return fw.make_dynamics(fw.group(name), shape, DynamicsConfig(**cfg), net, seed)


def link_diff(fw: Any, a: Any, b: Any, compact_angles: bool) -> float:
    """Largest difference of two link tensors (U1 compact: as angles, modulo 2π)."""
    d = fw.np(a) - fw.np(b)
    if compact_angles:
        d = d - 2 * math.pi * np.round(d / (2 * math.pi))
    return float(np.abs(d).max())


def run_hmc(
    fw: Any, links: Any, beta: float, eps: float, n: int, n_traj: int, g: Any, **kw: Any
) -> tuple[Any, dict[str, np.ndarray]]:
    hist: dict[str, list[np.ndarray]] = {}
    for _ in range(n_traj):
        links, met = fw.hmc.hmc_step(links, beta, eps, n, g, **kw)
        for k, v in met.items():
            hist.setdefault(k, []).append(fw.np(v))
    return links, {k: np.stack(v) for k, v in hist.items()}


# -- reversibility -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["U1", "SU2", "SU3"])
def test_leapfrog_is_reversible(fw, name) -> None:
    shape, beta, eps = {
        "U1": ((8, 8), 2.0, 0.1),
        "SU2": ((2, 2, 2, 2), 2.0, 0.1),
        "SU3": ((2, 2, 2, 2), 5.0, 0.05),
    }[name]
    grp = fw.group(name)
    g = fw.gen(1)
    links = grp.random(2, shape, generator=g)
    p = grp.random_momenta(links, g)
    l1, p1 = fw.hmc.leapfrog(links, p, beta, eps, 20)
    assert link_diff(fw, l1, links, False) > 0.1
    l2, p2 = fw.hmc.leapfrog(l1, -p1, beta, eps, 20)
    assert link_diff(fw, l2, links, False) < TOL
    assert float(np.abs(fw.np(p2) + fw.np(p)).max()) < TOL
    l0, p0 = fw.hmc.leapfrog(links, p, beta, eps, 0)
    assert l0 is links and p0 is p


@pytest.mark.parametrize(("name", "shape", "cfg", "net"), VARIANTS)
def test_every_layer_is_exactly_invertible(fw, name, shape, cfg, net) -> None:
    dyn = make(fw, name, shape, net, **cfg)
    grp = fw.group(name)
    compact = name == "U1" and cfg.get("x_update", "compact") == "compact"
    x = grp.random(3, shape, generator=fw.gen(0))
    v = grp.random_momenta(x, fw.gen(1))
    beta = fw.tensor(np.float64(1.7))
    eps = dyn.step_sizes()
    with fw.no_grad():
        for k in range(dyn.config.leapfrog):
            f = fw.lattice.action_and_force(x, beta)[1]
            ld0 = fw.tensor(np.zeros(3))
            x1, v1, ld1, _, f1 = dyn._layer(k, eps[k], x, v, f, ld0, beta, inverse=False)
            assert link_diff(fw, x1, x, compact) > 1e-3  # the layer moved the links
            x2, v2, ld2, _, _ = dyn._layer(k, eps[k], x1, v1, f1, ld1, beta, inverse=True)
            assert link_diff(fw, x2, x, compact) < TOL
            assert float(np.abs(fw.np(v2) - fw.np(v)).max()) < TOL
            assert float(np.abs(fw.np(ld2)).max()) < TOL


@pytest.mark.parametrize(("name", "shape", "cfg", "net"), VARIANTS)
def test_merged_proposal_is_an_involution(fw, name, shape, cfg, net) -> None:
    dyn = make(fw, name, shape, net, **cfg)
    grp = fw.group(name)
    compact = name == "U1" and cfg.get("x_update", "compact") == "compact"
    x = grp.random(3, shape, generator=fw.gen(2))
    v = grp.random_momenta(x, fw.gen(3))
    with fw.no_grad():
        x1, v1, ld1, _, _ = dyn.involution(x, v, 1.3)
        x2, v2, ld2, _, _ = dyn.involution(x1, v1, 1.3)
    assert link_diff(fw, x1, x, compact) > 1e-2
    assert link_diff(fw, x2, x, compact) < TOL
    assert float(np.abs(fw.np(v2) - fw.np(v)).max()) < TOL
    assert float(np.abs(fw.np(ld1) + fw.np(ld2)).max()) < TOL


@pytest.mark.parametrize(("name", "shape", "cfg", "net"), VARIANTS)
def test_random_directions_forward_and_backward_are_inverse(fw, name, shape, cfg, net) -> None:
    dyn = make(fw, name, shape, net, directions="random", **cfg)
    grp = fw.group(name)
    compact = name == "U1" and cfg.get("x_update", "compact") == "compact"
    x = grp.random(4, shape, generator=fw.gen(4))
    v = grp.random_momenta(x, fw.gen(5))
    with fw.no_grad():
        for first, second in ((False, True), (True, False)):
            x1, v1, ld1, _, _ = dyn.transport(x, v, 0.9, backward=first)
            x2, v2, ld2, _, _ = dyn.transport(x1, v1, 0.9, backward=second)
            assert link_diff(fw, x2, x, compact) < TOL
            assert float(np.abs(fw.np(v2) - fw.np(v)).max()) < TOL
            assert float(np.abs(fw.np(ld1) + fw.np(ld2)).max()) < TOL
        d = fw.tensor(np.array([True, False, True, False]))
        prop = dyn.propose(x, v, 0.9, d)
        xf, _, ldf, _, _ = dyn.transport(x, v, 0.9)
        xb, _, ldb, _, _ = dyn.transport(x, v, 0.9, backward=True)
        if name == "U1" and not compact:
            xf, xb = grp.project(xf), grp.project(xb)
    px = fw.np(prop.x)
    assert np.array_equal(px[0], fw.np(xf)[0]) and np.array_equal(px[1], fw.np(xb)[1])
    assert np.array_equal(fw.np(prop.logdet), np.where(fw.np(d), fw.np(ldf), fw.np(ldb)))
    with pytest.raises(ValueError, match="forward_mask"):
        dyn.propose(x, v, 0.9)


def test_compact_map_is_exact(fw) -> None:
    """``x + compact_shift(x, εs)`` is ``2 atan(e^{εs} tan(x/2))``, inverted by ``−εs``, with
    log-derivative ``compact_logdet``; ``s = 0`` is the identity bit for bit."""
    x = np.linspace(-math.pi + 1e-6, math.pi - 1e-6, 2001)
    xt = fw.tensor(x)
    dyn = fw.dynamics
    for es in (-1.3, -0.2, 0.0, 0.4, 2.0):
        e = fw.tensor(np.full_like(x, es))
        y = fw.np(xt + dyn.compact_shift(xt, e))
        assert np.abs(y - 2 * np.arctan(math.exp(es) * np.tan(x / 2))).max() < 1e-12
        yt = fw.tensor(y)
        back = fw.np(yt + dyn.compact_shift(yt, -e))
        assert np.abs(back - x).max() < 1e-13
        h = 1e-6
        deriv = (
            fw.np(dyn.compact_shift(fw.tensor(x + h), e))
            - fw.np(dyn.compact_shift(fw.tensor(x - h), e))
        ) / (2 * h) + 1.0
        assert np.abs(np.log(deriv) - fw.np(dyn.compact_logdet(xt, e))).max() < 1e-7
        assert (
            np.abs(fw.np(dyn.compact_logdet(yt, -e)) + fw.np(dyn.compact_logdet(xt, e))).max()
            < 1e-12
        )
    assert np.array_equal(fw.np(xt + dyn.compact_shift(xt, fw.tensor(np.zeros_like(x)))), x)


# -- log-Jacobians -----------------------------------------------------------------------------
@pytest.mark.parametrize("x_update", ["compact", "affine"])
@pytest.mark.parametrize("backward", [False, True], ids=["merged", "backward"])
def test_u1_logdet_equals_autodiff_jacobian(fw, x_update, backward) -> None:
    dyn = make(fw, "U1", (4, 4), leapfrog=2, step_size=0.3, x_update=x_update)
    grp = fw.group("U1")
    x = grp.random(1, (4, 4), generator=fw.gen(6))
    v = grp.random_momenta(x, fw.gen(7))
    shape = tuple(fw.np(x).shape)
    n = int(np.prod(shape))

    def fn(z: Any) -> Any:
        xx, vv = fw.reshape(z[:n], shape), fw.reshape(z[n:], shape)
        if backward:
            x1, v1, _, _, _ = dyn.transport(xx, vv, 1.5, backward=True)
        else:
            x1, v1, _, _, _ = dyn.involution(xx, vv, 1.5)
        return fw.flat(x1, v1)

    jac = fw.jacobian(fn, np.concatenate([fw.np(x).ravel(), fw.np(v).ravel()]))
    _, logabs = np.linalg.slogdet(jac)
    with fw.no_grad():
        out = dyn.transport(x, v, 1.5, backward=True) if backward else dyn.involution(x, v, 1.5)
    ld = float(fw.np(out[2])[0])
    assert abs(ld) > 0.05  # a non-trivial Jacobian
    assert abs(logabs - ld) < 1e-11


@pytest.mark.slow
@pytest.mark.parametrize(("name", "shape"), [("SU2", (2, 2)), ("SU3", (2, 2))])
def test_sun_logdet_equals_jacobian_in_local_algebra_coordinates(fw, name, shape) -> None:
    """Charts ``U = exp(Σ ω_a T_a) U₀`` at the start and ``U' = exp(Σ ω'_a T_a) U'₀`` at the
    proposal (Haar density 1 at ω = 0 in both): log|det ∂(ω', v')/∂(ω, v)| = Σ log|J|."""
    dyn = make(fw, name, shape, leapfrog=1, step_size=0.3)
    grp = fw.group(name)
    x = grp.random(1, shape, generator=fw.gen(8))
    v = grp.random_momenta(x, fw.gen(9))
    with fw.no_grad():
        x1, _, ld, _, _ = dyn.involution(x, v, 1.5)
    vshape = tuple(fw.np(v).shape)
    n = int(np.prod(vshape))

    def fn(z: Any) -> Any:
        w, vv = fw.reshape(z[:n], vshape), fw.reshape(z[n:], vshape)
        y, v2, _, _, _ = dyn.involution(fw.matmul(grp.exp(w), x), vv, 1.5)
        w2 = grp.algebra_components(fw.matmul(y, fw.dagger(x1)))
        return fw.flat(w2, v2)

    jac = fw.jacobian(fn, np.concatenate([np.zeros(n), fw.np(v).ravel()]))
    _, logabs = np.linalg.slogdet(jac)
    ld = float(fw.np(ld)[0])
    assert abs(ld) > 0.01
    assert abs(logabs - ld) < 1e-11


# -- zero networks are the plain leapfrog ------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "shape"), [("U1", (4, 4)), ("SU2", (2, 2, 2)), ("SU3", (2, 2, 2, 2))]
)
def test_zero_networks_equal_plain_leapfrog_bit_for_bit(fw, name, shape) -> None:
    dyn = make(
        fw, name, shape, NetworkConfig(hidden=(8,), head_init=0.0), leapfrog=3, step_size=0.1
    )
    grp = fw.group(name)
    x = grp.random(2, shape, generator=fw.gen(10))
    v = grp.random_momenta(x, fw.gen(11))
    beta = fw.tensor(np.float64(2.0))
    eps = dyn.step_sizes()[0]
    with fw.no_grad():
        prop = dyn.propose(x, v, beta)
        fwd = dyn.transport(x, v, beta)
        # merged: M = B^N ∘ flip ∘ F^N = flip ∘ leapfrog^{2N} when the networks vanish
        x_lf, v_lf = fw.hmc.leapfrog(x, v, beta, eps, 6)
        x_lf3, v_lf3 = fw.hmc.leapfrog(x, v, beta, eps, 3)
    assert np.array_equal(fw.np(prop.x), fw.np(x_lf))
    assert np.array_equal(fw.np(prop.v), -fw.np(v_lf))
    assert np.array_equal(fw.np(fwd[0]), fw.np(x_lf3))
    assert np.array_equal(fw.np(fwd[1]), fw.np(v_lf3))
    assert np.array_equal(fw.np(prop.logdet), np.zeros(2))


@pytest.mark.parametrize(("name", "shape"), [("U1", (4, 4)), ("SU2", (2, 2, 2))])
def test_network_free_layers_equal_plain_leapfrog_bit_for_bit(fw, name, shape) -> None:
    """``network none``: each layer drifts all links at once (no masked halves)."""
    dyn = make(fw, name, shape, None, leapfrog=3, step_size=0.1)
    grp = fw.group(name)
    x = grp.random(2, shape, generator=fw.gen(12))
    v = grp.random_momenta(x, fw.gen(13))
    beta = fw.tensor(np.float64(2.0))
    eps = dyn.step_sizes()[0]
    with fw.no_grad():
        prop = dyn.propose(x, v, beta)
        x_lf, v_lf = fw.hmc.leapfrog(x, v, beta, eps, 6)
    assert np.array_equal(fw.np(prop.x), fw.np(x_lf))
    assert np.array_equal(fw.np(prop.v), -fw.np(v_lf))


# -- gauge invariance, force, group membership -------------------------------------------------
@pytest.mark.parametrize(
    ("name", "shape"), [("U1", (4, 6)), ("SU2", (2, 2, 2, 4)), ("SU3", (2, 2, 2, 4))]
)
def test_gauge_invariance_of_action_plaquettes_and_charge(fw, name, shape) -> None:
    grp = fw.group(name)
    g = fw.gen(20)
    links = grp.random(2, shape, generator=g)
    omega = grp.random_element((2, *shape), generator=g)
    moved = grp.gauge_transform(links, omega)
    assert link_diff(fw, moved, links, False) > 0.1
    lat = fw.lattice
    for fn in (lambda u: lat.wilson_action(u, 1.3), lat.plaquettes, lat.topological_charge):
        np.testing.assert_allclose(fw.np(fn(moved)), fw.np(fn(links)), rtol=0, atol=1e-11)
    # the force transforms covariantly: its norm per link is invariant
    f0, f1 = fw.np(lat.force(links, 1.3)), fw.np(lat.force(moved, 1.3))
    if name != "U1":
        f0, f1 = np.linalg.norm(f0, axis=-1), np.linalg.norm(f1, axis=-1)
    np.testing.assert_allclose(np.abs(f1), np.abs(f0), rtol=0, atol=1e-11)


@pytest.mark.parametrize(
    ("name", "shape"), [("U1", (4, 4)), ("SU2", (2, 2, 2, 2)), ("SU3", (2, 2, 2, 2))]
)
def test_force_matches_central_differences_along_each_generator(fw, name, shape) -> None:
    grp = fw.group(name)
    links = grp.random(2, shape, generator=fw.gen(21))
    beta = 1.7
    force = fw.np(fw.lattice.force(links, beta))
    rng = np.random.default_rng(0)
    h = 1e-5
    for _ in range(3):
        site = tuple(int(rng.integers(0, n)) for n in force.shape[: -1 if name != "U1" else None])
        for a in range(grp.n_generators):
            idx = site + ((a,) if name != "U1" else ())
            dp = np.zeros(force.shape)
            dp[idx] = 1.0
            dpt = fw.tensor(dp)
            sp = fw.np(fw.lattice.wilson_action(grp.exp_update(links, dpt, h), beta))
            sm = fw.np(fw.lattice.wilson_action(grp.exp_update(links, dpt, -h), beta))
            fd = (sp - sm)[site[0]] / (2 * h)
            assert abs(fd - force[idx]) < 1e-7, (idx, fd, force[idx])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SU2", "SU3"])
def test_group_membership_after_many_updates(fw, name) -> None:
    """1000 updates ``U ← exp(ε P) U`` with ε = 0.2, then 20 L2HMC steps with random networks:
    ``U U† = 1`` and ``det U = 1`` to 1e-12 (no re-unitarization)."""
    grp = fw.group(name)
    g = fw.gen(22)
    u = grp.random(1, (2, 2), generator=g)
    update = fw.compiled(lambda u, p: grp.exp_update(u, p, 0.2))
    for _ in range(1000):
        u = update(u, grp.random_momenta(u, g))
    shape = (2, 2, 2, 2)
    dyn = make(fw, name, shape, leapfrog=2, step_size=0.3)
    x = grp.random(2, shape, generator=g)
    step = fw.stepper(dyn)
    for _ in range(20):
        x, _ = step(x, 5.5, g)
    for m in (fw.np(u), fw.np(x)):
        n = m.shape[-1]
        unit = m @ np.conj(np.swapaxes(m, -1, -2)) - np.eye(n)
        assert np.abs(unit).max() < 1e-12
        assert np.abs(np.linalg.det(m) - 1).max() < 1e-12


# -- HMC is exact --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "shape", "beta"), [("U1", (8, 8), 2.0), ("SU2", (2, 2, 2, 2), 2.0)]
)
def test_creutz_equality(fw, name, shape, beta) -> None:
    """⟨e^{−ΔH}⟩ = 1 in equilibrium; chains are independent, so the error is taken across them."""
    grp = fw.group(name)
    g = fw.gen(3)
    integ = fw.integrator()
    links = grp.random(32, shape, generator=g)
    links, _ = run_hmc(fw, links, beta, 0.2, 5, 30, g, integrator=integ)
    _, h = run_hmc(fw, links, beta, 0.2, 5, 60, g, measure_charge=False, integrator=integ)
    per_chain = h["exp_minus_dH"].mean(0)
    mean, err = per_chain.mean(), per_chain.std(ddof=1) / math.sqrt(per_chain.size)
    assert 0.3 < h["accept_prob"].mean() < 0.95  # large enough ΔH for the test to bite
    assert abs(mean - 1) < 3 * err, (mean, err)


def test_equipartition_of_momenta_and_configurational_temperature(fw) -> None:
    """After each HMC step the kept momenta are N(0, 1) per component, ⟨p²⟩ = 1; and the
    configurations satisfy ⟨|F|²⟩ = ⟨ΔS⟩ (integration by parts), which for 2D U(1) is
    ⟨Σ_l F_l²⟩ = 4β ⟨Σ_P cos θ_P⟩."""
    grp = fw.group("U1")
    g = fw.gen(4)
    beta, eps, n = 2.0, 0.25, 4
    integ = fw.integrator()
    links = grp.random(32, (8, 8), generator=g)
    links, _ = run_hmc(fw, links, beta, eps, n, 20, g, integrator=integ)
    hmc, lat = fw.hmc, fw.lattice
    p2, f2, cos = [], [], []
    for _ in range(60):
        p0 = grp.random_momenta(links, g)
        l1, p1 = hmc.leapfrog(links, p0, beta, eps, n)
        dh = fw.np(hmc.hamiltonian(l1, p1, beta) - hmc.hamiltonian(links, p0, beta))
        acc = fw.np(fw.uniform(32, g)) < np.exp(-dh)
        m = acc[:, None, None, None]
        new = np.where(m, fw.np(l1), fw.np(links))
        links = fw.tensor(new)
        p_kept = np.where(m, fw.np(p1), fw.np(p0))
        p2.append((p_kept**2).reshape(32, -1).mean(1))
        f2.append((fw.np(lat.force(links, beta)) ** 2).reshape(32, -1).sum(1))
        cos.append(4 * beta * fw.np(lat.plaquettes(links)).reshape(32, -1).sum(1))
    p2m = np.stack(p2).mean(0)
    assert abs(p2m.mean() - 1) < 3 * p2m.std(ddof=1) / math.sqrt(p2m.size)
    ratio = np.stack(f2).mean(0) / np.stack(cos).mean(0)
    assert abs(ratio.mean() - 1) < 3 * ratio.std(ddof=1) / math.sqrt(ratio.size), ratio.mean()


@pytest.mark.slow
@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_u1_16x16_reproduces_exact_plaquette(fw, beta) -> None:
    """⟨cos θ_P⟩ on 16×16 against the exact value I₁(β)/I₀(β) (finite-volume corrections
    < 1e-15 here) within 3σ, σ including τ_int; ⟨Q²⟩ against its exact value within 3σ."""
    grp = fw.group("U1")
    g = fw.gen(5 + int(beta))
    integ = fw.integrator()
    links = grp.random(32, (16, 16), generator=g)
    tuned = fw.hmc.tune_step_size(
        links, beta, target=0.8, n_iter=30, n_check=0, generator=g, integrator=integ
    )
    links, _ = run_hmc(fw, tuned.links, beta, tuned.eps, tuned.n_steps, 60, g, integrator=integ)
    _, h = run_hmc(fw, links, beta, tuned.eps, tuned.n_steps, 400, g, integrator=integ)
    ref = exact.u1_plaquette(beta, 256)
    assert ref == pytest.approx(exact.u1_plaquette(beta), abs=1e-15)
    plaq = mean_error(h["plaquette"])
    assert abs(plaq.mean - ref) < 3 * plaq.err, (plaq, ref)
    assert plaq.err < 1e-3
    q2 = mean_error(np.round(h["charge"]) ** 2)
    assert abs(q2.mean - exact.u1_q2(beta, 256)) < 3 * q2.err, (q2, exact.u1_q2(beta, 256))


@pytest.mark.slow
def test_su3_strong_coupling_plaquette(fw) -> None:
    """β = 0.5 on 4⁴ × 8 chains: ⟨P⟩ = β/18 + β²/216 = 0.029935; the neglected terms
    (-5β⁴/93312 ≈ -3·10⁻⁶ and O(u⁵)) are far below σ ≈ 2·10⁻⁴.  Tolerance: 3σ with τ_int;
    the O(β) term alone (0.027778) must be excluded at > 4σ."""
    beta = 0.5
    grp = fw.group("SU3")
    g = fw.gen(9)
    integ = fw.integrator()
    links = grp.random(8, (4, 4, 4, 4), generator=g)
    kw = {"measure_charge": False, "integrator": integ}
    links, _ = run_hmc(fw, links, beta, 1 / 3, 3, 10, g, **kw)
    _, h = run_hmc(fw, links, beta, 1 / 3, 3, 300, g, **kw)
    assert h["accept_prob"].mean() > 0.7
    plaq = mean_error(h["plaquette"])
    ref = exact.su3_strong_coupling_plaquette(beta)
    assert abs(plaq.mean - ref) < 3 * plaq.err, (plaq, ref)
    assert abs(plaq.mean - beta / 18) > 4 * plaq.err


# -- L2HMC is exact: the U(1) plaquette distribution is preserved ------------------------------
@pytest.mark.slow
def test_random_networks_preserve_the_u1_plaquette_distribution(fw) -> None:
    """Chains thermalised with HMC, then moved by L2HMC with untrained networks (O(1) outputs):
    ⟨cos θ_P⟩ stays at its exact finite-volume value (chains independent: error from the
    spread of chain means)."""
    beta, shape, chains = 1.5, (4, 4), 512
    grp = fw.group("U1")
    g = fw.gen(16)
    x = grp.random(chains, shape, generator=g)
    x, _ = run_hmc(fw, x, beta, 0.25, 4, 30, g, measure_charge=False, integrator=fw.integrator())
    dyn = make(fw, "U1", shape, leapfrog=2, step_size=0.35, seed=3)
    step = fw.stepper(dyn)
    samples, acc = [], []
    for _ in range(25):
        x, m = step(x, beta, g)
        samples.append(fw.np(m["plaquette"]))
        acc.append(fw.np(m["accept_prob"]).mean())
    per_chain = np.stack(samples).mean(0)
    mean, err = per_chain.mean(), per_chain.std(ddof=1) / math.sqrt(chains)
    ref = exact.u1_plaquette(beta, volume=16)
    assert 0.2 < float(np.mean(acc)) < 0.95  # the test is not vacuous
    assert abs(mean - ref) < 3 * err, (mean, err, ref)
