"""The generalized leapfrog: exact inverses, log-Jacobians against autograd, the involution,
zero networks = plain leapfrog, the MH test, and invariance of the U(1) plaquette distribution."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from l2hmcc.runtime.common.exact import u1_plaquette
from l2hmcc.runtime.pt.dynamics import (
    Dynamics,
    DynamicsConfig,
    acceptance_probability,
    compact_logdet,
    compact_shift,
)
from l2hmcc.runtime.pt.groups import SU2, SU3, U1, wrap
from l2hmcc.runtime.pt.hmc import hmc_step, leapfrog
from l2hmcc.runtime.pt.lattice import action_and_force, mean_plaquette
from l2hmcc.runtime.pt.networks import NetworkConfig

torch.set_num_threads(1)
F64 = torch.float64
TOL = 1e-12

# Untrained networks with O(1) outputs (head_init=1): the layers really transform the state.
RANDOM_NETS = NetworkConfig(hidden=(16, 16), activation="tanh", head_init=1.0)
CONV_NETS = NetworkConfig(
    conv_filters=(2, 4), conv_kernels=(3,), conv_pool=(1, 2), hidden=(8,), head_init=1.0
)

# `network local` (U1): gauge-invariant v-networks on the plaquettes, no x-networks.
LOCAL_NETS = NetworkConfig(
    kind="local",
    conv_filters=(4,),
    conv_kernels=(3,),
    hidden=(8,),
    activation="tanh",
    head_init=1.0,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make(grp, shape, net=RANDOM_NETS, seed=0, **cfg) -> Dynamics:
    torch.manual_seed(seed)
    cfg.setdefault("leapfrog", 3)
    cfg.setdefault("step_size", 0.2)
    return Dynamics(grp, shape, DynamicsConfig(**cfg), net, dtype=F64)


def link_diff(grp, a, b, compact=True) -> float:
    """Largest difference of two link tensors (U1 compact: as angles, modulo 2π)."""
    if grp is U1 and compact:
        return float(wrap(a - b).abs().max())
    return float((a - b).abs().max())


VARIANTS = [
    pytest.param(U1, (4, 4), {"x_update": "compact"}, RANDOM_NETS, id="u1-compact"),
    pytest.param(U1, (4, 4), {"x_update": "affine"}, RANDOM_NETS, id="u1-affine"),
    pytest.param(
        U1, (4, 4), {"mask": "random", "split_x": False}, CONV_NETS, id="u1-conv-random-mask"
    ),
    pytest.param(U1, (2, 2, 2), {"networks": "shared"}, RANDOM_NETS, id="u1-3d-shared"),
    pytest.param(U1, (4, 4), {}, LOCAL_NETS, id="u1-local"),
    pytest.param(
        U1,
        (2, 3, 2),
        {"networks": "shared"},
        replace(LOCAL_NETS, conv_filters=()),
        id="u1-3d-local",
    ),
    pytest.param(SU2, (2, 2, 2), {}, RANDOM_NETS, id="su2"),
    pytest.param(SU3, (2, 2, 2, 2), {"leapfrog": 2}, RANDOM_NETS, id="su3"),
]


# -- the compact map ---------------------------------------------------------------------------
def test_compact_map_is_2atan_of_scaled_tan_with_exact_inverse_and_logdet() -> None:
    x = torch.linspace(-math.pi + 1e-6, math.pi - 1e-6, 2001, dtype=F64)
    for es in (-1.3, -0.2, 0.0, 0.4, 2.0):
        e = torch.full_like(x, es)
        y = x + compact_shift(x, e)
        expected = 2 * torch.atan(math.exp(es) * torch.tan(x / 2))
        assert float((y - expected).abs().max()) < 1e-12
        back = y + compact_shift(y, -e)
        assert float((back - x).abs().max()) < 1e-13
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((xr + compact_shift(xr, e)).sum(), xr)
        assert float((torch.log(g) - compact_logdet(x, e)).abs().max()) < 1e-11
        # the inverse's log-derivative is minus the forward one
        assert float((compact_logdet(y, -e) + compact_logdet(x, e)).abs().max()) < 1e-12
    zero = torch.zeros_like(x)
    assert torch.equal(x + compact_shift(x, zero), x)  # s = 0 is the identity, bit for bit


# -- reversibility -----------------------------------------------------------------------------
@pytest.mark.parametrize(("grp", "shape", "cfg", "net"), VARIANTS)
def test_every_layer_is_exactly_invertible(grp, shape, cfg, net) -> None:
    dyn = make(grp, shape, net, **cfg)
    compact = cfg.get("x_update", "compact") == "compact"
    x = grp.random(3, shape, generator=gen())
    v = grp.random_momenta(x, gen(1))
    beta = torch.tensor(1.7, dtype=F64)
    eps = dyn.step_sizes().detach()
    with torch.no_grad():
        for k in range(dyn.config.leapfrog):
            f = action_and_force(x, beta)[1]
            ld0 = torch.zeros(3, dtype=F64)
            x1, v1, ld1, _, f1 = dyn._layer(k, eps[k], x, v, f, ld0, beta, inverse=False)
            assert link_diff(grp, x1, x, compact) > 1e-3  # the layer moved the links
            x2, v2, ld2, _, _ = dyn._layer(k, eps[k], x1, v1, f1, ld1, beta, inverse=True)
            assert link_diff(grp, x2, x, compact) < TOL
            assert float((v2 - v).abs().max()) < TOL
            assert float(ld2.abs().max()) < TOL  # −log|J| of the inverse cancels the forward


@pytest.mark.parametrize(("grp", "shape", "cfg", "net"), VARIANTS)
def test_merged_proposal_is_an_involution(grp, shape, cfg, net) -> None:
    dyn = make(grp, shape, net, **cfg)
    compact = cfg.get("x_update", "compact") == "compact"
    x = grp.random(3, shape, generator=gen(2))
    v = grp.random_momenta(x, gen(3))
    with torch.no_grad():
        x1, v1, ld1, _, _ = dyn.involution(x, v, 1.3)
        x2, v2, ld2, _, _ = dyn.involution(x1, v1, 1.3)
    assert link_diff(grp, x1, x, compact) > 1e-2
    assert link_diff(grp, x2, x, compact) < TOL
    assert float((v2 - v).abs().max()) < TOL
    assert float((ld1 + ld2).abs().max()) < TOL


@pytest.mark.parametrize(("grp", "shape", "cfg", "net"), VARIANTS)
def test_random_directions_forward_and_backward_are_inverse(grp, shape, cfg, net) -> None:
    dyn = make(grp, shape, net, directions="random", **cfg)
    compact = cfg.get("x_update", "compact") == "compact"
    x = grp.random(4, shape, generator=gen(4))
    v = grp.random_momenta(x, gen(5))
    with torch.no_grad():
        for first, second in ((False, True), (True, False)):
            x1, v1, ld1, _, _ = dyn.transport(x, v, 0.9, backward=first)
            x2, v2, ld2, _, _ = dyn.transport(x1, v1, 0.9, backward=second)
            assert link_diff(grp, x2, x, compact) < TOL
            assert float((v2 - v).abs().max()) < TOL
            assert float((ld1 + ld2).abs().max()) < TOL
        # per-chain directions: each chain takes the map its flag says
        d = torch.tensor([True, False, True, False])
        prop = dyn.propose(x, v, 0.9, d)
        xf, _, ldf, _, _ = dyn.transport(x, v, 0.9)
        xb, _, ldb, _, _ = dyn.transport(x, v, 0.9, backward=True)
        if grp is U1 and not compact:
            xf, xb = wrap(xf), wrap(xb)
        assert torch.equal(prop.x[0], xf[0]) and torch.equal(prop.x[1], xb[1])
        assert torch.equal(prop.logdet, torch.where(d, ldf, ldb))
    with pytest.raises(ValueError, match="forward_mask"):
        dyn.propose(x, v, 0.9)


# -- log-Jacobians -----------------------------------------------------------------------------
@pytest.mark.parametrize("x_update", ["compact", "affine"])
@pytest.mark.parametrize("backward", [False, True], ids=["merged", "backward"])
def test_u1_logdet_equals_autograd_jacobian(x_update, backward) -> None:
    dyn = make(U1, (4, 4), leapfrog=2, step_size=0.3, x_update=x_update)
    x = U1.random(1, (4, 4), generator=gen(6))
    v = U1.random_momenta(x, gen(7))
    n = x.numel()

    def fn(z: torch.Tensor) -> torch.Tensor:
        xx, vv = z[:n].reshape(x.shape), z[n:].reshape(v.shape)
        if backward:
            x1, v1, _, _, _ = dyn.transport(xx, vv, 1.5, backward=True)
        else:
            x1, v1, _, _, _ = dyn.involution(xx, vv, 1.5)
        return torch.cat([x1.flatten(), v1.flatten()])

    jac = torch.autograd.functional.jacobian(fn, torch.cat([x.flatten(), v.flatten()]))
    _, logabs = torch.linalg.slogdet(jac)
    with torch.no_grad():
        if backward:
            ld = dyn.transport(x, v, 1.5, backward=True)[2]
        else:
            ld = dyn.involution(x, v, 1.5)[2]
    assert abs(float(ld)) > 0.05  # a non-trivial Jacobian
    assert abs(float(logabs - ld)) < 1e-11


@pytest.mark.parametrize(
    ("grp", "shape"),
    [
        pytest.param(SU2, (2, 2), id="su2"),
        pytest.param(SU3, (2, 2), id="su3", marks=pytest.mark.slow),
    ],
)
def test_sun_logdet_equals_jacobian_in_local_algebra_coordinates(grp, shape) -> None:
    """Coordinates ``U = exp(Σ ω_a T_a) U₀`` around the start and ``U' = exp(Σ ω'_a T_a) U'₀``
    around the proposal: at ω = 0 the Haar density is 1 in both charts, so log|det ∂(ω',v')/∂(ω,v)|
    must equal Σ log|J| (only the v half steps contribute; the group updates have log|J| = 0)."""
    dyn = make(grp, shape, leapfrog=2, step_size=0.3)
    x = grp.random(1, shape, generator=gen(8))
    v = grp.random_momenta(x, gen(9))
    with torch.no_grad():
        x1, _, ld, _, _ = dyn.involution(x, v, 1.5)
    n = v.numel()

    def fn(z: torch.Tensor) -> torch.Tensor:
        w, vv = z[:n].reshape(v.shape), z[n:].reshape(v.shape)
        y, v2, _, _, _ = dyn.involution(grp.exp(w) @ x, vv, 1.5)
        # first order in ω' (all the Jacobian at ω' = 0 needs): the algebra part of y U'₀†
        w2 = grp.algebra_components(y @ x1.conj().transpose(-1, -2))
        return torch.cat([w2.flatten(), v2.flatten()])

    z0 = torch.cat([torch.zeros(n, dtype=F64), v.flatten()])
    jac = torch.autograd.functional.jacobian(fn, z0)
    _, logabs = torch.linalg.slogdet(jac)
    assert abs(float(ld)) > 0.01
    assert abs(float(logabs - ld)) < 1e-11


# -- zero networks are the plain leapfrog ------------------------------------------------------
@pytest.mark.parametrize(
    ("grp", "shape"), [(U1, (4, 4)), (SU2, (2, 2, 2)), (SU3, (2, 2, 2, 2))], ids=str
)
def test_zero_networks_equal_plain_leapfrog_bit_for_bit(grp, shape) -> None:
    zero = NetworkConfig(hidden=(8,), head_init=0.0)
    dyn = make(grp, shape, zero, leapfrog=3, step_size=0.1)
    x = grp.random(2, shape, generator=gen(10))
    v = grp.random_momenta(x, gen(11))
    beta = torch.tensor(2.0, dtype=F64)
    eps = float(dyn.step_sizes()[0].detach())
    with torch.no_grad():
        prop = dyn.propose(x, v, beta)
        fwd = dyn.transport(x, v, beta)
    # merged: M = B^N ∘ flip ∘ F^N = flip ∘ leapfrog^{2N} when the networks vanish
    x_lf, v_lf = leapfrog(x, v, beta, eps, 6)
    assert torch.equal(prop.x, x_lf)
    assert torch.equal(prop.v, -v_lf)
    x_lf3, v_lf3 = leapfrog(x, v, beta, eps, 3)
    assert torch.equal(fwd[0], x_lf3) and torch.equal(fwd[1], v_lf3)
    assert torch.equal(prop.logdet, torch.zeros(2, dtype=F64))


# -- the Metropolis–Hastings test --------------------------------------------------------------
def test_acceptance_formula_signs() -> None:
    h0 = torch.tensor([5.0, 5.0, 5.0, 5.0, 5.0, 5.0], dtype=F64)
    h1 = torch.tensor([4.0, 6.0, 6.0, 7.0, math.inf, math.nan], dtype=F64)
    ld = torch.tensor([0.0, 0.0, 0.5, -1.0, 0.0, 0.0], dtype=F64)
    a = acceptance_probability(h0, h1, ld)
    expected = [1.0, math.exp(-1.0), math.exp(-0.5), math.exp(-3.0), 0.0, 0.0]
    np.testing.assert_allclose(a.numpy(), expected, rtol=1e-15, atol=0)
    # log|J| > 0 (the proposal expands volume) raises A; a lower proposed H is always accepted
    assert a[2] > a[1]


def test_step_accepts_exactly_where_u_below_acceptance() -> None:
    dyn = make(U1, (4, 4), leapfrog=2, step_size=0.4)
    x = U1.random(64, (4, 4), generator=gen(12))
    v, _, u = dyn.draw(x, gen(13))
    with torch.no_grad():
        prop = dyn.propose(x, v, 2.0)
    x_new, accepted = dyn.accept(x, prop, u)
    assert torch.equal(accepted, u < prop.acceptance)
    assert 0 < int(accepted.sum()) < 64
    assert torch.equal(x_new[accepted], prop.x[accepted])
    assert torch.equal(x_new[~accepted], x[~accepted])
    metrics = dyn.metrics(x, x_new, prop, accepted)
    for key in (
        "accept_prob",
        "accepted",
        "dH",
        "sumlogdet",
        "plaquette",
        "charge",
        "sin_charge",
        "dQ",
    ):
        assert metrics[key].shape == (64,)
    assert metrics["step_sizes"].shape == (2,)
    # the integer charge stays an integer
    q = metrics["charge"]
    assert float((q - q.round()).abs().max()) < 1e-10


def test_sun_links_stay_in_the_group() -> None:
    dyn = make(SU3, (2, 2, 2, 2), leapfrog=2, step_size=0.3)
    x = SU3.random(2, (2, 2, 2, 2), generator=gen(14))
    g = gen(15)
    with torch.no_grad():
        for _ in range(20):
            x, _ = dyn.step(x, 5.5, g)
    eye = torch.eye(3, dtype=x.dtype)
    assert float((x @ x.conj().transpose(-1, -2) - eye).abs().max()) < 1e-12
    assert float((torch.linalg.det(x) - 1).abs().max()) < 1e-12


def test_masks_partition_the_links_and_alternate() -> None:
    dyn = make(U1, (4, 6), leapfrog=4)
    m = dyn.masks
    assert m.shape == (4, 2, 4, 6) and m.dtype == torch.bool
    assert int(m[0].sum()) == 24 and torch.equal(m[1], ~m[0]) and torch.equal(m[2], m[0])
    rnd = make(U1, (4, 6), leapfrog=4, mask="random")
    assert all(int(rnd.masks[k].sum()) == 24 for k in range(4))
    assert not torch.equal(rnd.masks[0], rnd.masks[1])
    assert torch.equal(make(U1, (4, 6), leapfrog=4, mask="random").masks, rnd.masks)
    rng = np.random.default_rng(0)  # the documented recipe (the TF runtime uses it too)
    for k in range(4):
        expected = torch.zeros(48, dtype=torch.bool)
        expected[torch.from_numpy(rng.permutation(48)[:24])] = True
        assert torch.equal(rnd.masks[k].flatten(), expected)


@pytest.mark.parametrize(
    ("shape", "cfg", "net"),
    [
        ((4, 4), {"x_update": "compact"}, RANDOM_NETS),
        ((4, 4), {"x_update": "affine"}, RANDOM_NETS),
        ((4, 6), {"mask": "random", "split_x": False}, CONV_NETS),
        ((2, 2, 2), {"networks": "shared", "mask": "random"}, RANDOM_NETS),
        ((4, 4), {}, NetworkConfig(hidden=(8,), embedding="raw", head_init=1.0)),
    ],
    ids=["compact", "affine", "conv-random-mask", "3d-shared", "raw"],
)
def test_u1_moved_half_updates_equal_the_masked_updates(shape, cfg, net) -> None:
    """U1 x updates on the moved links alone (``moved_links``: gathered, updated, scattered
    back, heads of those links only) give the masked updates of every link, and their
    gradients, to rounding."""
    dyn = make(U1, shape, net, **cfg)
    assert dyn.moved_links is not None and dyn.moved_links.shape[1] == 2
    for k in range(dyn.config.leapfrog):
        first, second = dyn.moved_links[k]
        assert torch.equal(first.sort().values, (~dyn.masks[k]).flatten().nonzero().squeeze(1))
        assert torch.equal(second.sort().values, dyn.masks[k].flatten().nonzero().squeeze(1))
    x = U1.random(3, shape, generator=gen())
    v = U1.random_momenta(x, gen(1))
    params = [p for p in dyn.parameters() if p.requires_grad]
    results = []
    for moved in (dyn.moved_links, None):
        dyn.moved_links = moved
        p = dyn.propose(x, v, 2.0)
        loss = (p.acceptance * (p.x - x).square().flatten(1).sum(1)).mean()
        results.append((p, torch.autograd.grad(loss, params)))
    (p1, g1), (p0, g0) = results
    assert float(p1.logdet.abs().max()) > 1e-2  # the networks really scale the links
    assert link_diff(U1, p1.x, p0.x, cfg.get("x_update") != "affine") < TOL
    for a, b in ((p1.v, p0.v), (p1.logdet, p0.logdet), (p1.h_prop, p0.h_prop)):
        assert float((a - b).abs().max()) < TOL
    for a, b in zip(g1, g0, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_moved_links_are_derived_not_saved() -> None:
    """``moved_links`` is rebuilt from the masks (not in the state_dict); ``None`` where the
    halves differ in size (odd checkerboard), which keeps the masked updates of every link."""
    dyn = make(U1, (4, 4))
    assert "moved_links" not in dyn.state_dict() and "masks" in dyn.state_dict()
    assert make(U1, (3, 3)).moved_links is None
    odd = make(U1, (3, 3))
    x = U1.random(2, (3, 3), generator=gen())
    y, w, ld, _, _ = odd.involution(x, U1.random_momenta(x, gen(1)), 1.0)
    y2, _, ld2, _, _ = odd.involution(y, w, 1.0)
    assert link_diff(U1, y2, x) < TOL and float((ld + ld2).abs().max()) < TOL


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="directions"):
        DynamicsConfig(directions="both")
    with pytest.raises(ValueError, match="leapfrog"):
        DynamicsConfig(leapfrog=0)
    with pytest.raises(ValueError, match="affine"):
        Dynamics(SU3, (2, 2, 2, 2), DynamicsConfig(x_update="affine"))


# -- the sampler is exact: the U(1) plaquette distribution is preserved ------------------------
def test_random_networks_preserve_the_u1_plaquette_distribution() -> None:
    """Chains thermalised with HMC (exact, part A) then moved by L2HMC with untrained networks
    (O(1) outputs, so the layers are far from leapfrog): ⟨cos θ_P⟩ must stay at its exact
    finite-volume value. Chains are independent: the error is the spread of chain means."""
    beta, shape, chains = 1.5, (4, 4), 512
    g = gen(16)
    x = U1.random(chains, shape, generator=g)
    for _ in range(30):
        x, _ = hmc_step(x, beta, 0.25, 4, g, measure_charge=False)
    dyn = make(U1, shape, leapfrog=2, step_size=0.35, seed=3)
    samples, acc = [], []
    with torch.no_grad():
        for _ in range(25):
            x, m = dyn.step(x, beta, g)
            samples.append(mean_plaquette(x))
            acc.append(m["accept_prob"].mean())
    per_chain = torch.stack(samples).mean(0).numpy()
    mean, err = per_chain.mean(), per_chain.std(ddof=1) / math.sqrt(chains)
    exact = u1_plaquette(beta, volume=16)
    assert 0.2 < float(torch.stack(acc).mean()) < 0.95  # the test is not vacuous
    assert abs(mean - exact) < 3 * err, (mean, err, exact)


def _drop_logdet(dyn: Dynamics) -> None:
    """Break the sampler on purpose: accept with ``exp(−ΔH)`` only, ignoring log|J|."""
    propose = dyn.propose

    def broken(*args, **kwargs):
        prop = propose(*args, **kwargs)
        return prop._replace(logdet=torch.zeros_like(prop.logdet))

    dyn.propose = broken  # type: ignore[method-assign]


@pytest.mark.parametrize("broken", [False, True], ids=["exact", "logdet-dropped"])
def test_expanding_networks_keep_links_uniform_and_a_missing_logdet_is_caught(broken) -> None:
    """Gauge invariance makes every link angle uniform: ⟨cos x⟩ = 0. x-networks whose s ≈ +0.3
    everywhere (the compact map pushes angles towards ±π) keep it so only with the log|J| term:
    the same test fails, by many σ, for a sampler that drops it (so the test has power)."""
    beta, shape, chains = 1.5, (4, 4), 512
    g = gen(16)
    x = U1.random(chains, shape, generator=g)
    for _ in range(30):
        x, _ = hmc_step(x, beta, 0.25, 4, g, measure_charge=False)
    net = NetworkConfig(hidden=(16, 16), activation="tanh", head_init=1.0, scale_s=0.3)
    dyn = make(U1, shape, net, leapfrog=2, step_size=0.35, seed=3)
    with torch.no_grad():
        for pair in dyn.xnets:
            for xnet in pair:
                xnet.hidden_layers[-1].bias.fill_(3.0)  # z ≈ 1 ...
                xnet.head_weight[: xnet.n_out] = 1.0  # ... so s ≈ 0.3 tanh(16) ≈ 0.3
    if broken:
        _drop_logdet(dyn)
    cos_x, plaq = [], []
    with torch.no_grad():
        for _ in range(60):
            x, m = dyn.step(x, beta, g)
            if not broken:
                assert float(m["sumlogdet"].abs().mean()) > 0.5
            cos_x.append(torch.cos(x).flatten(1).mean(1))
            plaq.append(mean_plaquette(x))

    def z_score(samples: list[torch.Tensor], exact: float) -> float:
        per_chain = torch.stack(samples).mean(0)
        err = float(per_chain.std()) / math.sqrt(chains)
        return (float(per_chain.mean()) - exact) / err

    z_cos = z_score(cos_x, 0.0)
    if broken:
        assert z_cos > 5.0, z_cos
    else:
        assert abs(z_cos) < 3.0, z_cos
        assert abs(z_score(plaq, u1_plaquette(beta, volume=16))) < 3.0
