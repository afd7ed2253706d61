"""`network local` (U1): gauge-invariant, translation-equivariant v-networks (pt.networks.LocalNet).

Exact properties, each to rounding in float64: the proposal commutes with gauge transformations
and lattice translations, its log-Jacobian equals autograd's, zero heads are the ε-only sampler
bit for bit, and there are no x-networks.
"""

from __future__ import annotations

import math

import pytest
import torch

from l2hmcc.runtime.pt.dynamics import Dynamics, DynamicsConfig
from l2hmcc.runtime.pt.groups import SU2, U1, wrap
from l2hmcc.runtime.pt.lattice import (
    action_and_force,
    plaquette_field,
    u1_action_and_force_halo,
)
from l2hmcc.runtime.pt.networks import LocalNet, NetworkConfig, _conv_taps, periodic_pad

torch.set_num_threads(1)
F64 = torch.float64

LOCAL = NetworkConfig(
    kind="local",
    conv_filters=(4, 3),
    conv_kernels=(3, 2),
    hidden=(8, 6),
    activation="tanh",
    head_init=1.0,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make(shape, net=LOCAL, **cfg) -> Dynamics:
    torch.manual_seed(0)
    cfg.setdefault("leapfrog", 3)
    cfg.setdefault("step_size", 0.25)
    return Dynamics(U1, shape, DynamicsConfig(**cfg), net, dtype=F64)


def gauge_transform(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``x_μ(n) + α(n) − α(n + μ̂)`` for site angles ``α`` ``[B, *L]``."""
    return torch.stack(
        [x[:, mu] + alpha - torch.roll(alpha, -1, 1 + mu) for mu in range(x.shape[1])], 1
    )


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2)], ids=["2d", "3d"])
def test_proposal_commutes_with_gauge_transformations(shape) -> None:
    dyn = (
        make(shape)
        if len(shape) == 2
        else make(shape, NetworkConfig(kind="local", hidden=(5,), head_init=1.0))
    )
    x = U1.random(3, shape, generator=gen(1))
    v = U1.random_momenta(x, gen(2))
    alpha = (torch.rand((3, *shape), dtype=F64, generator=gen(3)) * 2 - 1) * math.pi
    with torch.no_grad():
        p = dyn.propose(x, v, 2.0)
        pg = dyn.propose(gauge_transform(x, alpha), v, 2.0)
    assert float(wrap(p.x - x).abs().max()) > 0.1  # the proposal moved the links
    assert float(wrap(pg.x - gauge_transform(p.x, alpha)).abs().max()) < 1e-12
    assert float((pg.v - p.v).abs().max()) < 1e-12
    assert float((pg.logdet - p.logdet).abs().max()) < 1e-12
    assert abs(float(p.logdet[0])) > 1e-3  # the networks really scale the momenta
    assert float((pg.acceptance - p.acceptance).abs().max()) < 1e-12


def test_a_gauge_variant_network_fails_the_same_check() -> None:
    """The check above can fail: the seed's network reads the link angles themselves."""
    dyn = make((6, 4), NetworkConfig(hidden=(8,), head_init=1.0))
    x = U1.random(3, (6, 4), generator=gen(1))
    v = U1.random_momenta(x, gen(2))
    alpha = (torch.rand((3, 6, 4), dtype=F64, generator=gen(3)) * 2 - 1) * math.pi
    with torch.no_grad():
        p = dyn.propose(x, v, 2.0)
        pg = dyn.propose(gauge_transform(x, alpha), v, 2.0)
    assert float(wrap(pg.x - gauge_transform(p.x, alpha)).abs().max()) > 1e-3


def test_outputs_are_translation_equivariant() -> None:
    net = LocalNet(U1, (6, 4), LOCAL, dtype=F64)
    x = U1.random(2, (6, 4), generator=gen(4))
    shifted = torch.roll(x, shifts=(2, -1), dims=(2, 3))
    with torch.no_grad():
        outs, outs_shifted = net(x), net(shifted)
    for out, out_shifted in zip(outs, outs_shifted, strict=True):
        assert out is not None and out.shape == x.shape
        assert (
            float((torch.roll(out, shifts=(2, -1), dims=(2, 3)) - out_shifted).abs().max()) < 1e-13
        )


def test_link_features_read_the_two_plaquettes_through_each_link() -> None:
    """Without a conv stack the features of link (μ, n) in 2D are cos/sin of θ(n), θ(n − ν̂)."""
    net = LocalNet(U1, (5, 4), NetworkConfig(kind="local", hidden=(3,)), dtype=F64)
    x = U1.random(1, (5, 4), generator=gen(5))
    f = net.link_features(x)  # [B, D, *L, 2(D−1)·2]
    theta = plaquette_field(x, 0, 1)[0]
    n = (2, 1)
    below = {0: (2, 0), 1: (1, 1)}  # n − ν̂ for ν = 1 (link μ = 0) and ν = 0 (link μ = 1)
    for mu in (0, 1):
        m = below[mu]
        expected = [math.cos(theta[n]), math.sin(theta[n]), math.cos(theta[m]), math.sin(theta[m])]
        assert torch.allclose(f[0, mu, n[0], n[1]], torch.tensor(expected, dtype=F64), atol=1e-14)


def test_logdet_equals_autograd_jacobian() -> None:
    dyn = make((4, 4), leapfrog=2, step_size=0.3)
    x = U1.random(1, (4, 4), generator=gen(6))
    v = U1.random_momenta(x, gen(7))
    n = x.numel()

    def fn(z: torch.Tensor) -> torch.Tensor:
        x1, v1, _, _, _ = dyn.involution(z[:n].reshape(x.shape), z[n:].reshape(v.shape), 1.5)
        return torch.cat([x1.flatten(), v1.flatten()])

    jac = torch.autograd.functional.jacobian(fn, torch.cat([x.flatten(), v.flatten()]))
    _, logabs = torch.linalg.slogdet(jac)
    with torch.no_grad():
        ld = dyn.involution(x, v, 1.5)[2]
    assert abs(float(ld)) > 0.01  # a non-trivial Jacobian
    assert abs(float(logabs - ld)) < 1e-11


def test_zero_heads_are_the_eps_only_sampler_bit_for_bit() -> None:
    plain = make((4, 4), None)
    local = make((4, 4), NetworkConfig(kind="local", conv_filters=(4,), hidden=(8,), head_init=0.0))
    assert len(local.vnets) == 3 and len(local.xnets) == 0
    x = U1.random(2, (4, 4), generator=gen(8))
    v = U1.random_momenta(x, gen(9))
    with torch.no_grad():
        a, b = plain.propose(x, v, 3.0), local.propose(x, v, 3.0)
    assert torch.equal(a.x, b.x) and torch.equal(a.v, b.v)
    assert torch.equal(a.h_prop, b.h_prop) and float(b.logdet.abs().max()) == 0.0


def test_parameters_are_named_as_documented() -> None:
    net = LocalNet(U1, (4, 4), LOCAL, dtype=F64)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {
        "convs.0.weight": (4, 2, 3, 3),
        "convs.0.bias": (4,),
        "convs.1.weight": (3, 4, 2, 2),
        "convs.1.bias": (3,),
        "dense.0.weight": (8, 6),
        "dense.0.bias": (8,),
        "dense.1.weight": (6, 8),
        "dense.1.bias": (6,),
        "head.weight": (3, 6),
        "head.bias": (3,),
        "s_log_scale": (1,),
        "q_log_scale": (1,),
    }
    no_s = LocalNet(U1, (4, 4), NetworkConfig(kind="local", hidden=(4,), scale_s=0.0), dtype=F64)
    assert tuple(no_s.head.weight.shape) == (2, 4) and no_s.s_log_scale is None
    s, t, q = no_s(U1.random(1, (4, 4), generator=gen(10)))
    assert s is None and t is not None and q is not None


def test_rejects_su_n_and_pooling() -> None:
    with pytest.raises(ValueError, match="U1 only"):
        LocalNet(SU2, (2, 2, 2), NetworkConfig(kind="local"))
    with pytest.raises(ValueError, match="pool"):
        LocalNet(U1, (4, 4), NetworkConfig(kind="local", conv_filters=(2,), conv_pool=(2,)))
    with pytest.raises(ValueError, match=r"network\.kind"):
        NetworkConfig(kind="global")


def test_compiled_layers_equal_eager() -> None:
    dyn = make((4, 4))
    x = U1.random(2, (4, 4), generator=gen(11))
    v = U1.random_momenta(x, gen(12))
    with torch.no_grad():
        eager = dyn.propose(x, v, 2.5)
    dyn.compile_proposal(True)
    with torch.no_grad():
        compiled = dyn.propose(x, v, 2.5)
    assert float(wrap(compiled.x - eager.x).abs().max()) < 1e-12
    assert float((compiled.logdet - eager.logdet).abs().max()) < 1e-12


@pytest.mark.parametrize("shape", [(4, 6), (3, 4, 5)])
def test_halo_force_equals_action_and_force(shape) -> None:
    """``u1_action_and_force_halo`` (the force of ``network local`` layers) reads the shifted
    plaquette sines from a padded copy instead of rolling them: the same operations on the
    same values, so the same bits."""
    x = U1.random(3, shape, generator=gen(21))
    beta = torch.tensor([1.5, 2.0, 3.5], dtype=F64)
    for b in (beta, beta[0], 2.5):
        s_roll, f_roll = action_and_force(x, b)
        s_halo, f_halo = u1_action_and_force_halo(x, b)
        assert torch.equal(s_halo, s_roll) and torch.equal(f_halo, f_roll)
    assert make(shape)._halo_force and not make(shape, None)._halo_force


@pytest.mark.parametrize(("shape", "kernel"), [((5, 6), 3), ((5, 6), 2), ((3, 4, 5), 3)])
def test_conv_taps_equal_the_convolution(shape, kernel) -> None:
    """``_conv_taps`` (the conv inside compiled layer graphs) equals the module's convolution
    of the periodically padded input to rounding."""
    torch.manual_seed(1)
    conv = {2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[len(shape)](3, 4, kernel, dtype=F64)
    h = torch.randn(2, 3, *shape, dtype=F64)
    padded = periodic_pad(h, (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2)
    with torch.no_grad():
        out, expected = _conv_taps(conv, padded, shape), conv(padded)
    assert out.shape == (2, 4, *shape)
    assert float((out - expected).abs().max()) < 1e-13


@pytest.mark.slow
def test_compiled_layers_equal_eager_with_gradients() -> None:
    """The compiled training layer graph (``LOCAL_COMPILE_OPTIONS``, the halo force; the conv
    as taps runs in graphs without gradients, ``test_compiled_layers_equal_eager``) and its
    backward agree with eager to 1e-12 in fp64: the proposal and the gradients of a loss of it
    with respect to every parameter. One conv layer and one leapfrog layer keep the
    compile short (the training graphs of both directions with their backward)."""
    torch._dynamo.reset()
    net = NetworkConfig(
        kind="local", conv_filters=(3,), conv_kernels=(3,), hidden=(4,), head_init=1.0
    )
    eager, comp = make((4, 4), net, leapfrog=1), make((4, 4), net, leapfrog=1)
    comp.compile_proposal(True)
    x = U1.random(2, (4, 4), generator=gen(31))
    v = U1.random_momenta(x, gen(32))
    results = []
    for dyn in (eager, comp):
        prop = dyn.propose(x, v, 2.5)
        loss = (
            prop.acceptance * torch.cos(prop.x - x).sum((1, 2, 3))
        ).sum() + prop.v.square().sum()
        grads = torch.autograd.grad(loss, list(dyn.parameters()))
        results.append([t.detach() for t in prop] + list(grads))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
