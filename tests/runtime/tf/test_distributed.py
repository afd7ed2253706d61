"""Horovod + TensorFlow with the real Horovod (gloo, 2 processes via ``horovodrun``): gradients
computed inside the XLA-compiled step and averaged outside it; every rank ends with the same
parameters, equal to averaging the two ranks' gradients by hand."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from l2hmcc.runtime.tf.distributed import SingleProcess, backend_by_name  # noqa: E402

HERE = Path(__file__).parent
HOROVODRUN = shutil.which("horovodrun") or str(Path(sys.executable).parent / "horovodrun")

pytestmark = pytest.mark.tf


def test_backend_by_name() -> None:
    assert isinstance(backend_by_name("single"), SingleProcess)
    with pytest.raises(ValueError, match="unknown TensorFlow backend"):
        backend_by_name("mpi")


class _Rank(SingleProcess):
    """A single-process backend that seeds its chains like rank ``r`` of a job."""

    def __init__(self, rank: int) -> None:
        self.rank = rank


def _by_hand() -> dict[str, np.ndarray]:
    """One step of the 2-rank job computed in one process: each rank's gradients (its own
    chains and draws), averaged, applied once."""
    sys.path.insert(0, str(HERE))
    try:
        import hvd_train
    finally:
        sys.path.pop(0)
    ranks = [hvd_train.make(_Rank(r), "eager") for r in (0, 1)]
    grads = []
    for tr in ranks:
        v, d, _ = tr.model.draw(tr.x, tr.generator)
        _, _, g = tr._grads_fn(tr.x, v, tr._beta_tensor(1.5), d, None, None, None)
        grads.append(g)
    mean = [(a + b) / 2.0 for a, b in zip(*grads, strict=True)]
    ranks[0]._apply_fn(mean, tf.constant(0.05, tf.float64))
    return ranks[0].model.state_dict()


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.horovod
@pytest.mark.parametrize("mode", ["xla", "xla-step"])
def test_two_horovod_ranks_average_gradients_outside_xla(tmp_path, mode) -> None:
    """``xla``: graph-mode gradients with XLA layers, XLA update; ``xla-step``: the gradient
    function and the update function each one XLA function, the allreduce between them."""
    pytest.importorskip("horovod.tensorflow")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(HERE.parents[2]),
    }
    cmd = [
        HOROVODRUN,
        "-np",
        "2",
        "--gloo",
        sys.executable,
        str(HERE / "hvd_train.py"),
        str(tmp_path),
        mode,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (np.load(tmp_path / f"rank{r}.npz") for r in (0, 1))
    assert str(r0["compile_mode"]) == mode  # no fallback
    assert bool(r0["fused"]) is (mode == "xla-step")
    keys = [k for k in r0.files if k.startswith("param/")]
    for k in keys:
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)  # one model on every rank
    assert not np.allclose(r0["chains"], r1["chains"])  # each rank has its own chains
    expected = _by_hand()
    for k in keys:
        np.testing.assert_allclose(
            r0[k], expected[k[len("param/") :]], rtol=1e-10, atol=1e-12, err_msg=k
        )
