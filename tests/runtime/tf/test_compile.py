"""Compilation helpers of the TensorFlow runtime: modes, the XLA → graph fallback, the tracing
flag that picks XLA-friendly kernels, the XLA CPU flag."""

import os
import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from l2hmcc.runtime.tf import compile as tfc  # noqa: E402
from l2hmcc.runtime.tf.groups import SU3, matmul  # noqa: E402

pytestmark = pytest.mark.tf


def test_modes_normalize_and_reject_unknown() -> None:
    assert [tfc.normalize_mode(m) for m in (True, None, False, "jit", "function")] == [
        "xla",
        "eager",
        "eager",
        "xla",
        "graph",
    ]
    with pytest.raises(ValueError, match="compile mode"):
        tfc.normalize_mode("fast")


def test_xla_flag_is_set_unless_the_user_chose() -> None:
    assert "xla_cpu_use_fusion_emitters" in os.environ.get("XLA_FLAGS", "")
    old = os.environ.get("XLA_FLAGS")
    try:
        os.environ["XLA_FLAGS"] = "--xla_cpu_use_fusion_emitters=true"
        tfc.configure_xla()
        assert os.environ["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=true"
    finally:
        if old is None:
            del os.environ["XLA_FLAGS"]
        else:
            os.environ["XLA_FLAGS"] = old


def test_xla_flag_only_where_the_installed_xla_knows_it(tmp_path, monkeypatch) -> None:
    """XLA aborts on unknown flags in XLA_FLAGS: an older TensorFlow (whose libraries lack the
    flag's name) gets none; one that has it gets it."""
    old_lib = tmp_path / "libtensorflow_framework.so.2"
    old_lib.write_bytes(b"\x7fELF xla_cpu_use_thunk_runtime xla_cpu_enable_fast_math")
    new_lib = tmp_path / "libtensorflow_cc.so.2"
    new_lib.write_bytes(b"\x7fELF xla_cpu_use_fusion_emitters xla_cpu_use_thunk_runtime")
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    tfc.configure_xla([empty, old_lib])
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"
    tfc.configure_xla([old_lib, new_lib])
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_use_fusion_emitters=false"
    # this TensorFlow (2.21) knows it, which is why importing the module set it above
    assert tfc.xla_knows_flag(tfc.XLA_FLAG_NAME)
    assert not tfc.xla_knows_flag("xla_no_such_flag_anywhere_42")


def test_xla_tracing_flag_and_matmul_formulations_agree() -> None:
    seen = []

    def fn(a):
        seen.append(tfc.in_xla())
        return matmul(a, a)

    a = SU3.random(2, (2, 2), generator=tf.random.Generator.from_seed(0))
    out = {m: tfc.compile_function(fn, m)(a).numpy() for m in ("eager", "graph", "xla")}
    assert seen == [False, False, True] and not tfc.in_xla()
    np.testing.assert_allclose(out["xla"], out["eager"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out["graph"], out["eager"], rtol=0, atol=1e-15)


def test_xla_falls_back_to_a_plain_tf_function_with_a_warning() -> None:
    """``tf.linalg.expm`` has no XLA kernel for complex dtypes on CPU (the reason the SU(N)
    exponential is written out): the XLA function warns once and runs as a graph."""
    m = tf.constant(np.diag([0.1j, -0.3j, 0.2j]).astype(np.complex128))
    f = tfc.compile_function(tf.linalg.expm, "xla", name="expm")
    with pytest.warns(RuntimeWarning, match="XLA cannot compile 'expm'"):
        out = f(m)
    assert f.mode == "graph"
    np.testing.assert_allclose(np.diag(out.numpy()), np.exp([0.1j, -0.3j, 0.2j]), atol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(m)  # no second warning


def test_su3_exponential_compiles_under_xla_and_matches_eager() -> None:
    p = SU3.random_momenta(SU3.random(3, (2, 2), generator=tf.random.Generator.from_seed(1)))
    eager = SU3.exp(0.7 * p).numpy()
    xla = tfc.compile_function(lambda q: SU3.exp(0.7 * q), "xla")(p).numpy()
    np.testing.assert_allclose(xla, eager, rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape", [(8, 8), (16, 16)])
def test_conv_x_network_under_xla_equals_eager(shape) -> None:
    """A conv stack whose second layer is 2 wide on 4 channels, 4 chains: XLA on CPU computed
    its outputs 4e-3 to 6e-3 off eager when the periodic padding was slices and concat fused
    into the convolution (networks.periodic_pad)."""
    from l2hmcc.runtime.common.config import NetworkConfig
    from l2hmcc.runtime.tf import networks
    from l2hmcc.runtime.tf.groups import U1

    cfg = NetworkConfig(conv_filters=(4, 3), conv_kernels=(3, 2), hidden=(8,), head_init=0.5)
    net = networks.XNet(U1, shape, cfg, seed=1)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-3, 3, (4, 2, *shape)))
    v = tf.constant(rng.standard_normal((4, 2, *shape)))
    mask = tf.constant((rng.uniform(size=(2, *shape)) < 0.5).astype(np.float64))
    eager = net(x, v, mask)
    xla = tfc.compile_function(lambda a, b, c: net(a, b, c), "xla")(x, v, mask)
    for got, ref in zip(xla, eager, strict=True):
        assert float(np.abs(got.numpy() - ref.numpy()).max()) < 1e-10
