"""`network local` in TensorFlow (tf.networks.LocalNet; mirror of tests/runtime/pt/test_local_network.py).

Exact properties in float64: the proposal commutes with gauge transformations, zero heads are
the ε-only sampler bit for bit, there are no x-networks, and the XLA modes (the whole proposal
one XLA function with the layers a loop; training with per-layer XLA executables and with one
XLA function per step) compute what eager does. The weights
and outputs agree with PyTorch's in tests/runtime/test_cross_framework.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from l2hmcc.runtime.common.config import (  # noqa: E402
    BetaSchedule,
    DynamicsConfig,
    LossConfig,
    NetworkConfig,
    TrainConfig,
)
from l2hmcc.runtime.tf.compile import compile_function  # noqa: E402
from l2hmcc.runtime.tf.dynamics import Dynamics  # noqa: E402
from l2hmcc.runtime.tf.groups import U1, wrap  # noqa: E402
from l2hmcc.runtime.tf.networks import LocalNet, periodic_pad  # noqa: E402
from l2hmcc.runtime.tf.trainer import Trainer  # noqa: E402

pytestmark = pytest.mark.tf

#: Two conv layers, the second 2 wide on 4 channels: the shape XLA on CPU miscomputes when the
#: padding's slices are fused into the convolution (see periodic_pad).
LOCAL = NetworkConfig(
    kind="local",
    conv_filters=(4, 3),
    conv_kernels=(3, 2),
    hidden=(8, 6),
    activation="tanh",
    head_init=1.0,
)


def make(shape, net=LOCAL, **cfg) -> Dynamics:
    cfg.setdefault("leapfrog", 3)
    cfg.setdefault("step_size", 0.25)
    return Dynamics(U1, shape, DynamicsConfig(**cfg), net, seed=0)


def links_and_momenta(shape, batch=4, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-math.pi, math.pi, (batch, len(shape), *shape))
    return tf.constant(x), tf.constant(rng.standard_normal(x.shape))


def gauge_transform(x, alpha):
    """``x_μ(n) + α(n) − α(n + μ̂)`` for site angles ``α`` ``[B, *L]``."""
    return tf.stack([x[:, mu] + alpha - tf.roll(alpha, -1, 1 + mu) for mu in range(x.shape[1])], 1)


def biggest(t) -> float:
    return float(tf.reduce_max(tf.abs(t)))


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2)], ids=["2d", "3d"])
def test_proposal_commutes_with_gauge_transformations(shape) -> None:
    net = LOCAL if len(shape) == 2 else NetworkConfig(kind="local", hidden=(5,), head_init=1.0)
    dyn = make(shape, net)
    x, v = links_and_momenta(shape, batch=3)
    alpha = tf.constant(np.random.default_rng(3).uniform(-math.pi, math.pi, (3, *shape)))
    p = dyn.propose(x, v, 2.0)
    pg = dyn.propose(gauge_transform(x, alpha), v, 2.0)
    assert biggest(wrap(p.x - x)) > 0.1  # the proposal moved the links
    assert biggest(wrap(pg.x - gauge_transform(p.x, alpha))) < 1e-12
    assert biggest(pg.v - p.v) < 1e-12
    assert biggest(pg.logdet - p.logdet) < 1e-12
    assert abs(float(p.logdet[0])) > 1e-3  # the networks really scale the momenta
    assert biggest(pg.acceptance - p.acceptance) < 1e-12


def test_zero_heads_are_the_eps_only_sampler_bit_for_bit() -> None:
    shape = (4, 6)
    zero = make(shape, NetworkConfig(kind="local", hidden=(4,), head_init=0.0))
    plain = make(shape, None)
    x, v = links_and_momenta(shape)
    a, b = zero.propose(x, v, 1.5), plain.propose(x, v, 1.5)
    for key, got, want in zip(a._fields, a, b, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=key)


def test_v_networks_only() -> None:
    dyn = make((4, 4), networks="shared", split_x=True)
    assert len(dyn.vnets) == 1 and isinstance(dyn.vnets[0], LocalNet) and not dyn.xnets
    keys = set(dyn.state_dict())
    assert not any(k.startswith("xnets.") for k in keys)
    assert {"vnets.0.head.weight", "vnets.0.convs.1.weight", "vnets.0.dense.1.bias"} <= keys


@pytest.mark.parametrize("shape", [(8, 8), (16, 16)])
def test_gathered_padding_is_the_periodic_padding(shape) -> None:
    a = np.random.default_rng(0).standard_normal((2, *shape, 3))
    for lo, hi in ((0, 1), (1, 1), (1, 2), (2, 2)):
        expected = np.pad(a, ((0, 0), (lo, hi), (lo, hi), (0, 0)), mode="wrap")
        np.testing.assert_array_equal(periodic_pad(tf.constant(a), lo, hi).numpy(), expected)


@pytest.mark.slow
def test_xla_proposal_and_gradients_equal_eager() -> None:
    """The whole proposal and its gradients as one XLA function, the layers a
    ``tf.while_loop`` over their stacked variables (the trainer's ``"xla"`` mode), on 16×16
    with 4 chains: the same numbers as eager to 1e-10."""
    shape = (16, 16)
    dyn = make(shape)
    x, v = links_and_momenta(shape)
    variables = [var for _, var in dyn.named_parameters()]

    def proposal_and_grads(x, v):
        with tf.GradientTape() as tape:
            p = dyn.propose(x, v, tf.constant(2.0, tf.float64))
            loss = -tf.reduce_mean(p.acceptance * tf.reduce_sum(tf.sin(p.x - x) ** 2, [1, 2, 3]))
        return p, tape.gradient(loss, variables)

    ref, ref_grads = proposal_and_grads(x, v)
    assert dyn.loop_layers(True)
    got, got_grads = compile_function(proposal_and_grads, "xla")(x, v)
    for key, a, b in zip(ref._fields, got, ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-10, err_msg=key)
    for (key, _), a, b in zip(dyn.named_parameters(), got_grads, ref_grads, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-10, err_msg=key)


def trainer(mode: str) -> Trainer:
    return Trainer(
        "U1",
        (8, 8),
        BetaSchedule("constant", 2.0),
        DynamicsConfig(leapfrog=2, step_size=0.1),
        LOCAL,
        LossConfig(plaquette=0.0, charge=1.0, form="plain"),
        TrainConfig(steps=2, chains=4, lr=0.01, precision="fp64", log_every=0, clip_norm=1.0),
        out_dir=None,
        log=None,
        compile_mode=mode,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "looped"), [("xla", False), ("xla-step", True)])
def test_xla_training_equals_eager(mode: str, looped: bool) -> None:
    """``train.compile``'s per-layer XLA executables, and one XLA function per train step with
    the layers a loop: two train steps as eager's to 1e-10."""
    ref, comp = trainer("eager"), trainer(mode)
    for tr in (ref, comp):
        tr.train()
    assert comp.compile_mode == mode and comp.model._loop is looped  # no fallback
    for key in ("loss", "accept_prob", "sumlogdet", "grad_norm"):
        np.testing.assert_allclose(
            comp.histories["train"][key], ref.histories["train"][key], rtol=1e-10, atol=1e-10
        )
    a, b = ref.model.state_dict(), comp.model.state_dict()
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-10, atol=1e-12, err_msg=key)
