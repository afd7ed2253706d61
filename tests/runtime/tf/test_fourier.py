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


@pytest.mark.parametrize("shape", [(6, 4), (5, 7), (3, 4, 2), (5, 3, 3)])
def test_hartley_filter_equals_the_ffts(shape) -> None:
    """The filter by Hartley matmuls (lattices up to ``FOURIER_DENSE_MAX_VOLUME`` sites) gives
    the FFTs' values to 1e-12 in float64; its gradient w.r.t. ``log m²`` is the FFTs' (2D,
    relative 1e-12; TensorFlow has no gradient of ``irfft3d``) and their central difference
    (relative 1e-7); odd and even extents, 2D and 3D."""
    from l2hmcc.runtime.tf import hmc
    from l2hmcc.runtime.tf.networks import lattice_laplacian

    rng = np.random.default_rng(2)
    a = tf.constant(rng.standard_normal((3, len(shape), *shape)))
    w = tf.constant(rng.standard_normal((3, len(shape), *shape)))
    lap = lattice_laplacian(shape)
    outs, grads = [], []
    for fft in (True, False):
        apply = hmc.fourier_filter_fft if fft else hmc.fourier_filter_hartley
        log_m2 = tf.Variable([math.log(0.7)], dtype=tf.float64)
        with tf.GradientTape() as tape:
            out = apply(a, log_m2, lap, shape)
            total = tf.reduce_sum(out * w)
        outs.append(out.numpy())
        if len(shape) == 2 or not fft:
            grads.append(float(tape.gradient(total, log_m2)[0]))
    assert np.abs(outs[0] - outs[1]).max() < 1e-12
    assert np.abs(outs[0] - a.numpy()).max() > 0.1
    h = 1e-5
    plus, minus = (
        float(
            tf.reduce_sum(
                hmc.fourier_filter_fft(
                    a, tf.constant([math.log(0.7) + s], dtype=tf.float64), lap, shape
                )
                * w
            )
        )
        for s in (h, -h)
    )
    central = (plus - minus) / (2 * h)
    assert abs(grads[-1] - central) < 1e-7 * abs(central) and abs(central) > 1e-3
    if len(shape) == 2:
        assert abs(grads[0] - grads[1]) < 1e-12 * abs(grads[0])


def test_a_3d_filter_has_a_gradient_beyond_the_dense_volume() -> None:
    """TensorFlow has no gradient of ``irfft3d``: a 3D lattice larger than
    ``FOURIER_DENSE_MAX_VOLUME`` still filters by Hartley matmuls, so training gets the mass's
    gradient (against a central difference, relative 1e-6)."""
    from l2hmcc.runtime.tf import hmc
    from l2hmcc.runtime.tf.networks import lattice_laplacian

    shape = (12, 10, 10)
    assert math.prod(shape) > hmc.FOURIER_DENSE_MAX_VOLUME
    rng = np.random.default_rng(3)
    a = tf.constant(rng.standard_normal((1, 3, *shape)))
    w = tf.constant(rng.standard_normal((1, 3, *shape)))
    lap = lattice_laplacian(shape)

    def total(log_m2: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(hmc.fourier_filter(a, log_m2, lap, shape) * w)

    log_m2 = tf.Variable([math.log(0.7)], dtype=tf.float64)
    with tf.GradientTape() as tape:
        value = total(log_m2)
    grad = tape.gradient(value, log_m2)
    assert grad is not None
    h = 1e-5
    central = float(
        total(tf.constant([math.log(0.7) + h], tf.float64))
        - total(tf.constant([math.log(0.7) - h], tf.float64))
    ) / (2 * h)
    assert abs(float(grad[0]) - central) < 1e-6 * abs(central) and abs(central) > 1e-3
