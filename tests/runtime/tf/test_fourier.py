"""`dynamics { fourier = m² }` in the TensorFlow runtime (the PyTorch twin and the cross-framework
cases are tests/runtime/pt/test_fourier.py and tests/runtime/test_cross_framework.py): the
per-layer mass² is a variable of the dynamics, saved and learned with the step sizes, and the
layer loop of the ``"xla-step"`` mode (``loop_layers``) applies every layer's own filter."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from l2hmcc.runtime.common.config import DynamicsConfig, NetworkConfig  # noqa: E402
from l2hmcc.runtime.tf.compile import compile_function  # noqa: E402
from l2hmcc.runtime.tf.dynamics import Dynamics  # noqa: E402
from l2hmcc.runtime.tf.groups import U1  # noqa: E402

LOCAL = NetworkConfig(kind="local", hidden=(4,), head_init=0.5, activation="tanh")


def links_and_momenta(shape, batch=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-math.pi, math.pi, (batch, len(shape), *shape))
    return tf.constant(x), tf.constant(rng.standard_normal(x.shape))


@pytest.mark.parametrize("net", [None, LOCAL], ids=["none", "local"])
def test_layer_loop_equals_the_unrolled_layers(net) -> None:
    shape = (6, 4)
    dyn = Dynamics(U1, shape, DynamicsConfig(leapfrog=3, step_size=0.2, fourier=0.6), net, seed=3)
    # distinct masses per layer, so that a loop reading the wrong layer's would show
    dyn.kinetic_log_m2.assign(np.log([0.3, 0.6, 1.2]))
    x, v = links_and_momenta(shape)
    beta = tf.constant(2.0, tf.float64)
    ref = dyn.propose(x, v, beta)
    assert dyn.loop_layers(True)
    got = compile_function(dyn.propose, "graph")(x, v, beta)
    for key, a, b in zip(ref._fields, got, ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12, err_msg=key)


def test_masses_are_variables_of_the_dynamics() -> None:
    dyn = Dynamics(U1, (4, 4), DynamicsConfig(leapfrog=2, fourier=0.5), None)
    names = [n for n, _ in dyn.named_parameters()]
    assert names == ["log_step_size", "kinetic_log_m2"]
    np.testing.assert_allclose(np.exp(dyn.state_dict()["kinetic_log_m2"]), [0.5, 0.5])
    x, v = links_and_momenta((4, 4))
    with tf.GradientTape() as tape:
        p = dyn.propose(x, v, 2.0)
        loss = tf.reduce_sum(p.acceptance) + tf.reduce_sum(tf.sin(p.x))
    grad = tape.gradient(loss, dyn.kinetic_log_m2)
    assert grad is not None and bool(np.all(np.abs(grad.numpy()) > 0))
    fixed = Dynamics(
        U1, (4, 4), DynamicsConfig(leapfrog=2, fourier=0.5, learnable_step_size=False), None
    )
    assert fixed.named_parameters() == [] and "kinetic_log_m2" in fixed.state_dict()
    state = dyn.state_dict()
    state["kinetic_log_m2"] = np.log([0.2, 0.9])
    fixed.load_state_dict(state)
    np.testing.assert_allclose(np.exp(fixed.kinetic_log_m2.numpy()), [0.2, 0.9])
