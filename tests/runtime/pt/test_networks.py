"""x/v networks: shapes, heads, masking (the triangular-Jacobian requirement), the seed's
U(1) architecture, initialisation, and the periodic conv helpers."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from l2hmcc.runtime.common.config import ACTIVATION_NAMES
from l2hmcc.runtime.pt import su_pairs
from l2hmcc.runtime.pt.groups import SU2, SU3, U1
from l2hmcc.runtime.pt.networks import (
    ACTIVATIONS,
    NetworkConfig,
    VNet,
    XNet,
    max_pool,
    new_pass,
    periodic_pad,
    seed_u1_network,
    tanh,
)

torch.set_num_threads(1)
F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


CASES = [(U1, (4, 4)), (U1, (4, 2, 2)), (SU2, (2, 2, 2)), (SU3, (2, 2, 2, 2))]
CONV = NetworkConfig(conv_filters=(3, 5), conv_kernels=(3, 2), conv_pool=(1, 2), hidden=(8, 8))


@pytest.mark.parametrize(("grp", "shape"), CASES, ids=lambda c: str(c))
def test_output_shapes_and_heads(grp, shape) -> None:
    cfg = NetworkConfig(hidden=(8, 8), activation="swish")
    x = grp.random(3, shape, generator=gen())
    v = grp.random_momenta(x, gen(1))
    mask = torch.rand(len(shape), *shape, generator=gen(2)) < 0.5
    xs, xt, xq = XNet(grp, shape, cfg, dtype=F64)(x, v, mask.to(F64))
    vs, vt, vq = VNet(grp, shape, cfg, dtype=F64)(x, v)
    for out in (xt, xq, vs, vt, vq):
        assert out is not None and out.shape == v.shape and out.dtype == F64
    if grp is U1:
        assert xs is not None and xs.shape == v.shape
    else:
        assert xs is None  # the SU(N) group update has no scaling


@pytest.mark.parametrize(
    ("grp", "shape", "cfg"),
    [
        (U1, (4, 4), CONV),
        (U1, (4, 4), NetworkConfig(hidden=(8,))),
        (U1, (4, 4), NetworkConfig(hidden=(8,), embedding="raw")),
        (SU2, (2, 2, 2), CONV),
    ],
    ids=["u1-conv", "u1-dense", "u1-raw", "su2-conv"],
)
def test_x_network_ignores_the_links_it_updates(grp, shape, cfg) -> None:
    """The output must not depend on the links outside the mask (exact, not approximate)."""
    net = XNet(grp, shape, cfg, dtype=F64)
    x = grp.random(2, shape, generator=gen())
    v = grp.random_momenta(x, gen(1))
    fixed = torch.rand(len(shape), *shape, generator=gen(2)) < 0.5
    other = grp.random(2, shape, generator=gen(3))
    keep = fixed if grp is U1 else fixed[..., None, None]
    x2 = torch.where(keep, x, other)  # same fixed links, different updated ones
    out1 = net(x, v, fixed.to(F64))
    out2 = net(x2, v, fixed.to(F64))
    for a, b in zip(out1, out2, strict=True):
        if a is not None:
            assert torch.equal(a, b)
    # ... while it does depend on the fixed links.
    x3 = torch.where(keep, other, x)
    assert not torch.equal(net(x3, v, fixed.to(F64))[1], out1[1])


@pytest.mark.parametrize(
    "cfg",
    [
        NetworkConfig(hidden=(8, 8), head_init=1.0),
        NetworkConfig(hidden=(8,), embedding="raw", head_init=1.0),
        dataclasses.replace(CONV, head_init=1.0),
    ],
    ids=["dense", "raw", "conv"],
)
def test_forward_moved_is_forward_at_the_moved_links(cfg) -> None:
    """U1 x-networks computed for the moved links alone give the full outputs' values there."""
    shape = (4, 6)
    net = XNet(U1, shape, cfg, dtype=F64)
    x = U1.random(3, shape, generator=gen())
    v = U1.random_momenta(x, gen(1))
    fixed = (torch.randperm(48, generator=gen(2)) < 24).reshape(2, *shape)
    held, moved = fixed.flatten().nonzero().squeeze(1), (~fixed).flatten().nonzero().squeeze(1)
    full = net(x, v, fixed.to(F64))
    part = net.forward_moved(x, v, fixed.to(F64), held, moved)
    for a, b in zip(full, part, strict=True):
        assert a is not None and b is not None and b.shape == (3, 24)
        assert torch.allclose(a.flatten(1)[:, moved], b, rtol=0, atol=1e-14)


@pytest.mark.parametrize("grp", [SU2, SU3], ids=["su2", "su3"])
@pytest.mark.parametrize("planar", [False, True], ids=["complex", "pairs"])
def test_sun_forward_moved_is_forward_at_the_moved_links(grp, planar) -> None:
    """SU(N) x-networks (heads t, q) computed for the moved links alone, from complex links or
    planar pairs, give the full outputs' values there (``[B, M, N²−1]``), and the same
    gradients of a loss on those values."""
    shape = (2, 2, 2, 2)
    torch.manual_seed(0)
    net = XNet(grp, shape, NetworkConfig(hidden=(8, 6), head_init=1.0), dtype=F64)
    x = grp.random(3, shape, generator=gen())
    v = grp.random_momenta(x, gen(1))
    fixed = (torch.randperm(64, generator=gen(2)) < 32).reshape(4, *shape)
    held, moved = fixed.flatten().nonzero().squeeze(1), (~fixed).flatten().nonzero().squeeze(1)
    links = su_pairs.to_pairs(x) if planar else x
    full = net(links, v, fixed.to(F64))
    part = net.forward_moved(links, v, fixed.to(F64), held, moved)
    assert full[0] is None and part[0] is None
    g = grp.n_generators
    for a, b in zip(full[1:], part[1:], strict=True):
        assert a is not None and b is not None and b.shape == (3, 32, g)
        torch.testing.assert_close(b, a.flatten(1, -2)[:, moved], rtol=0, atol=1e-14)
    params = list(net.parameters())
    grads = [
        torch.autograd.grad(sum((t * t.detach()).sum() for t in ts if t is not None), params)
        for ts in ([a.flatten(1, -2)[:, moved] for a in full[1:]], part[1:])
    ]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_tanh_is_torch_tanh_to_rounding() -> None:
    """The expm1 form of tanh (the heads' squashing): equal to ``torch.tanh`` to a few ulps
    everywhere (saturated beyond the clamp), exactly 0 at 0, and the same derivative."""
    a = torch.cat(
        [torch.linspace(-60, 60, 20001, dtype=F64), torch.tensor([0.0, 1e-300, -1e-8], dtype=F64)]
    )
    a.requires_grad_(True)
    ours, ref = tanh(a), torch.tanh(a)
    err = (ours - ref).detach()
    assert float(err.abs().max()) <= 4e-16
    assert float((err / ref.detach().abs().clamp(min=1e-300)).abs().max()) <= 1e-15
    assert float(ours[20001]) == 0.0 and float(ours[20002]) == 1e-300
    (g,) = torch.autograd.grad(ours.sum(), a)
    (g_ref,) = torch.autograd.grad(ref.sum(), a)
    assert float((g - g_ref).abs().max()) <= 1e-15
    f32 = torch.linspace(-30, 30, 2001)
    assert float((tanh(f32) - torch.tanh(f32)).abs().max()) <= 2e-7
    half = torch.linspace(-30, 30, 11, dtype=torch.bfloat16)  # torch.tanh itself there
    assert torch.equal(tanh(half), torch.tanh(half))


def test_seed_u1_network_matches_the_seed_architecture() -> None:
    """l2hmc 0.13: flatten 7200 = 32·15·15 on 16×16, 60.2 M parameters with 8 layers and split
    x-networks (16 x-networks with the conv stack, 8 dense v-networks)."""
    cfg = seed_u1_network()
    x = XNet(U1, (16, 16), cfg, dtype=torch.float32)
    v = VNet(U1, (16, 16), cfg, dtype=torch.float32)
    assert x.conv_dense is not None and x.conv_dense.in_features == 7200
    assert x.conv_dense.out_features == 512 and x.x_layer.in_features == 512
    assert v.conv_dense is None and v.x_layer.in_features == 1024
    n_x = sum(p.numel() for p in x.parameters())
    n_v = sum(p.numel() for p in v.parameters())
    total = 16 * n_x + 8 * n_v
    assert abs(total - 60.2e6) / 60.2e6 < 2e-3, total


def test_zero_heads_give_exact_zeros_and_default_heads_small() -> None:
    x = U1.random(4, (4, 4), generator=gen())
    v = U1.random_momenta(x, gen(1))
    zero = XNet(U1, (4, 4), NetworkConfig(hidden=(8,), head_init=0.0), dtype=F64)
    for out in zero(x, v, torch.ones(2, 4, 4, dtype=F64)):
        assert out is not None and torch.equal(out, torch.zeros_like(out))
    small = XNet(U1, (4, 4), NetworkConfig(hidden=(8,)), dtype=F64)
    for out in small(x, v, torch.ones(2, 4, 4, dtype=F64)):
        assert out is not None
        assert 0 < out.abs().max() < 0.1


def test_scale_zero_removes_the_head() -> None:
    cfg = NetworkConfig(hidden=(8,), scale_s=0.0, scale_q=0.0)
    net = VNet(U1, (4, 4), cfg, dtype=F64)
    x = U1.random(2, (4, 4), generator=gen())
    s, t, q = net(x, x)
    assert s is None and q is None and t is not None
    assert net.head_weight.shape[0] == 32  # only t's weights


def test_learnable_head_scales_multiply_the_tanh() -> None:
    net = VNet(U1, (4, 4), NetworkConfig(hidden=(8,), scale_s=2.0, head_init=1.0), dtype=F64)
    x = U1.random(2, (4, 4), generator=gen())
    s0 = net(x, x)[0]
    assert s0 is not None and s0.abs().max() <= 2.0
    with torch.no_grad():
        net.s_log_scale.fill_(torch.log(torch.tensor(1.5, dtype=F64)))
    s1 = net(x, x)[0]
    assert s1 is not None
    torch.testing.assert_close(s1, 1.5 * s0, rtol=1e-14, atol=0)


def test_config_validation_and_broadcast() -> None:
    cfg = NetworkConfig(conv_filters=[4, 8], conv_kernels=[3], conv_pool=[2], hidden=[16])
    assert cfg.conv_kernels == (3, 3) and cfg.conv_pool == (2, 2) and cfg.hidden == (16,)
    with pytest.raises(ValueError, match="activation"):
        NetworkConfig(activation="relu6")
    with pytest.raises(ValueError, match="conv_kernels"):
        NetworkConfig(conv_filters=(4, 8, 16), conv_kernels=(3, 3))
    with pytest.raises(ValueError, match="dropout"):
        NetworkConfig(dropout=1.0)
    with pytest.raises(ValueError, match="embedding"):
        XNet(SU3, (2, 2, 2, 2), NetworkConfig(embedding="cos_sin"))
    with pytest.raises(ValueError, match="dimension 1 to 3"):
        XNet(SU3, (2, 2, 2, 2), dataclasses.replace(CONV))
    with pytest.raises(ValueError, match="unknown fields"):
        NetworkConfig.from_dict({"hiden": [8]})


@pytest.mark.parametrize("act", ["relu", "tanh", "swish", "silu", "gelu", "elu", "leaky_relu"])
def test_activations_and_batch_norm_dropout(act) -> None:
    cfg = NetworkConfig(hidden=(8, 8), activation=act, batch_norm=True, dropout=0.1)
    net = XNet(U1, (4, 4), cfg, dtype=F64).eval()
    x = U1.random(3, (4, 4), generator=gen())
    out = net(x, x, torch.ones(2, 4, 4, dtype=F64))
    assert all(o is not None and torch.isfinite(o).all() for o in out)


def test_periodic_pad_and_max_pool_match_torch() -> None:
    h = torch.randn(3, 5, 7, 9, generator=gen())
    assert torch.equal(periodic_pad(h, 1, 2), F.pad(h, (1, 2, 1, 2), mode="circular"))
    assert torch.equal(periodic_pad(h, 3, 3), F.pad(h, (3, 3, 3, 3), mode="circular"))
    for p in (2, 3):
        assert torch.equal(max_pool(h, p), torch.nn.MaxPool2d(p)(h))
    h3 = torch.randn(2, 3, 5, 6, 4, generator=gen(1))
    assert torch.equal(max_pool(h3, 2), torch.nn.MaxPool3d(2)(h3))
    assert torch.equal(periodic_pad(h3, 1, 1), F.pad(h3, (1, 1) * 3, mode="circular"))


def test_raw_embedding_sees_wrapped_angles() -> None:
    """``raw`` feeds ``wrap(x)``: any representative of the same angles gives the same output."""
    net = VNet(U1, (4, 4), NetworkConfig(hidden=(8,), embedding="raw", head_init=1.0), dtype=F64)
    assert net.x_layer.in_features == 2 * 16  # D channels, not 2D
    x = U1.random(2, (4, 4), generator=gen())
    shifted = x + 2 * torch.pi * torch.randint(-2, 3, x.shape, generator=gen(1)).to(F64)
    for a, b in zip(net(x, x), net(shifted, x), strict=True):
        assert a is not None and b is not None
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="embedding"):
        VNet(SU2, (2, 2), NetworkConfig(embedding="raw"))


def test_unequal_hidden_widths_and_the_activation_registry() -> None:
    """The heads read the last hidden layer (width hidden[-1], not hidden[0])."""
    net = VNet(U1, (4, 4), NetworkConfig(hidden=(8, 4, 6)), dtype=F64)
    assert net.head_weight.shape == (3 * 32, 6)
    x = U1.random(2, (4, 4), generator=gen())
    assert all(o is not None and o.shape == x.shape for o in net(x, x))
    assert set(ACTIVATIONS) == set(ACTIVATION_NAMES)  # what the configs accept exists here


def _padded_conv_stack(net, links, mask):
    """The x-network's conv stack and dense layer as defined: every convolution of the input
    padded periodically by ``pads`` (``full``: k − 1 on each side), then pool, flatten in
    memory order, dense (the reference for ``circular_conv`` and the folded dense layer)."""
    h = net.embed(links, mask)
    if net.n_dim == 2:
        h = h.contiguous(memory_format=torch.channels_last)
    for conv, (lo, hi), pool in zip(net.convs, net.pads, net.config.conv_pool, strict=True):
        h = net.act(conv(periodic_pad(h, lo, hi)))
        if pool > 1:
            h = max_pool(h, pool)
    flat = h.permute(0, 2, 3, 1).flatten(1) if net.n_dim == 2 else h.flatten(1)
    return net.act(net.conv_dense(flat))


@pytest.mark.parametrize(
    ("shape", "padding", "kernels", "pool", "act", "dtype", "tol"),
    [
        ((8, 8), "full", (4, 3), (1, 1), "relu", F64, 1e-12),  # last output folded into dense
        ((8, 8), "full", (4, 3), (2, 1), "relu", F64, 1e-12),  # pool of 8 (+1 owed), then relu
        ((8, 8), "full", (4, 3), (2, 1), "swish", F64, 1e-12),  # swish before the pool
        ((8, 8), "full", (3, 4), (1, 2), "tanh", F64, 1e-12),  # 11 + 3 pooled: extended first
        ((8, 8), "same", (3, 4), (1, 1), "relu", F64, 1e-12),
        ((6, 4, 4), "full", (3, 2), (1, 1), "relu", F64, 1e-12),  # 3D: channels-first features
        ((16, 16), "full", (4, 4), (1, 1), "relu", torch.float32, 1e-5),
    ],
)
def test_circular_convs_and_folded_dense_are_the_padded_stack(
    shape, padding, kernels, pool, act, dtype, tol
) -> None:
    """``full`` padding: the runtime computes each conv output's distinct (periodic) values and
    folds the dense weight instead of extending the last output; ``circular_conv`` has its own
    backward. Values and the gradients of the links and every parameter equal the padded
    stack's to rounding (relative ``tol``)."""
    cfg = NetworkConfig(
        conv_filters=(3, 5),
        conv_kernels=kernels,
        conv_pool=pool,
        conv_padding=padding,
        hidden=(8,),
        activation=act,
        head_init=1.0,
    )
    torch.manual_seed(0)
    net = XNet(U1, shape, cfg, dtype=dtype)
    links = U1.random(3, shape, dtype=dtype, generator=gen())
    mask = (torch.rand(len(shape), *shape, generator=gen(1)) > 0.5).to(dtype)
    weights = torch.randn(3, net.conv_dense.out_features, generator=gen(2), dtype=dtype)
    results = []
    for fn in (_padded_conv_stack, lambda n, x, m: n._conv_dense_out(n.embed(x, m))):
        x = links.clone().requires_grad_(True)
        net.zero_grad()
        out = fn(net, x, mask)
        (out * weights).sum().backward()
        grads = [p.grad for p in (*net.convs.parameters(), *net.conv_dense.parameters())]
        results.append([out.detach(), x.grad, *grads])
    for ref, got in zip(*results, strict=True):
        assert got is not None and ref is not None and got.shape == ref.shape
        assert (got - ref).abs().max() <= tol * ref.abs().max()
    if padding == "full" and pool[-1] == 1:  # the dense layer reads the distinct values only
        h, extend = net._conv_stack(net.embed(links, mask))
        assert extend == kernels[-1] - 1
        assert h[0].numel() < net.conv_dense.in_features


def test_folded_dense_weight_is_reused_only_while_the_weight_is_unchanged() -> None:
    """Two calls with gradients share one fold (their weight gradients meet there): the
    gradients are the padded stack's; a changed weight (in place) is folded again, and so is
    any weight in a new pass (``new_pass``, called by every proposal)."""
    cfg = NetworkConfig(conv_filters=(3,), conv_kernels=(3,), conv_padding="full", hidden=(8,))
    torch.manual_seed(0)
    net = XNet(U1, (6, 6), cfg, dtype=F64)
    links = U1.random(2, (6, 6), dtype=F64, generator=gen())
    masks = [(torch.rand(2, 6, 6, generator=gen(i)) > 0.5).to(F64) for i in (1, 2)]
    grads = []
    for fn in (_padded_conv_stack, lambda n, x, m: n._conv_dense_out(n.embed(x, m))):
        x = links.clone().requires_grad_(True)
        net.zero_grad()
        first = fn(net, x, masks[0])
        second = fn(net, torch.sin(x), masks[1])
        (first.sum() + (second * second).sum()).backward()
        grads.append([x.grad, net.conv_dense.weight.grad, net.convs[0].weight.grad])
    for ref, got in zip(*grads, strict=True):
        assert (got - ref).abs().max() <= 1e-12 * ref.abs().max()
    with torch.no_grad():
        before = net._conv_dense_out(net.embed(links, masks[0]))
        net.conv_dense.weight.mul_(2.0)
        after = net._conv_dense_out(net.embed(links, masks[0]))
        expected = _padded_conv_stack(net, links, masks[0])
    assert not torch.allclose(before, after)
    assert (after - expected).abs().max() <= 1e-12 * expected.abs().max()
    # a write through .data keeps the version: a new pass (one per proposal) folds again
    net.conv_dense.weight.data.mul_(0.5)
    new_pass()
    with torch.no_grad():
        again = net._conv_dense_out(net.embed(links, masks[0]))
    assert (again - before).abs().max() <= 1e-12 * before.abs().max()


def test_the_seed_networks_conv_stack_is_the_padded_stack() -> None:
    """``seed_u1_network`` (16 → 19 → 22 → 25, pooled to 12 → 15; fp64): the circular
    convolutions, the pool of 22 with one row owed, the folded dense layer."""
    torch.manual_seed(0)
    net = XNet(U1, (16, 16), seed_u1_network(), dtype=F64)
    links = U1.random(2, (16, 16), dtype=F64, generator=gen())
    mask = (torch.rand(2, 16, 16, generator=gen(1)) > 0.5).to(F64)
    results = []
    for fn in (_padded_conv_stack, lambda n, x, m: n._conv_dense_out(n.embed(x, m))):
        x = links.clone().requires_grad_(True)
        net.zero_grad()
        out = fn(net, x, mask)
        (out * out).sum().backward()
        grads = [p.grad for p in (*net.convs.parameters(), *net.conv_dense.parameters())]
        results.append([out.detach(), x.grad, *grads])
    for ref, got in zip(*results, strict=True):
        assert (got - ref).abs().max() <= 1e-12 * ref.abs().max()
    h, extend = net._conv_stack(net.embed(links, mask))
    assert tuple(h.shape[1:]) == (32, 12, 12) and extend == 3  # 4 608 of the 7 200 features
