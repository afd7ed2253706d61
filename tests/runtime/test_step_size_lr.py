"""``train.step_size_lr_factor``: the step sizes ``log ε_k`` learn at ``lr × factor``, the
networks at ``lr``, in both frameworks.

Adam's first update of a parameter with a non-zero gradient is ``−lr · g/(|g| + 1e-8)``, i.e.
``lr`` in magnitude to within 1e-5 relative for |g| ≥ 1e-3: after one step (no clipping) every
moved step size moved by ``10 lr`` and no network weight by more than ``lr``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from l2hmcc.runtime.common.config import DynamicsConfig, LossConfig, NetworkConfig, TrainConfig

LR, FACTOR = 1e-3, 10.0
CONFIGS: dict[str, Any] = {
    "dynamics": DynamicsConfig(leapfrog=2, step_size=0.2),
    "network": NetworkConfig(hidden=(8,), head_init=0.1),
    "loss": LossConfig(plaquette=1.0, form="plain"),
    "train": TrainConfig(
        steps=1,
        chains=4,
        lr=LR,
        step_size_lr_factor=FACTOR,
        clip_norm=0,
        precision="fp64",
        compile=False,
    ),
}


def _check(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    d_eps = np.abs(after["log_step_size"] - before["log_step_size"])
    assert d_eps.max() == pytest.approx(FACTOR * LR, rel=1e-4)
    d_nets = max(float(np.abs(after[k] - before[k]).max()) for k in before if k != "log_step_size")
    assert LR / 2 < d_nets <= LR * (1 + 1e-4)


def test_pytorch_step_sizes_learn_at_their_own_rate() -> None:
    import torch

    from l2hmcc.runtime.pt.trainer import Trainer

    torch.manual_seed(0)
    tr = Trainer("U1", (4, 4), 2.0, **CONFIGS, log=None)
    assert [g["lr"] for g in tr.optimizer.param_groups] == [FACTOR * LR, LR]

    def params() -> dict[str, np.ndarray]:
        return {n: p.detach().numpy().copy() for n, p in tr.model.named_parameters()}

    before = params()
    metrics = tr.train_step(2.0)
    _check(before, params())
    assert float(metrics["lr"]) == pytest.approx(LR)  # the networks' rate is the one logged


@pytest.mark.tf
def test_tensorflow_step_sizes_learn_at_their_own_rate() -> None:
    pytest.importorskip("tensorflow")
    from l2hmcc.runtime.tf.trainer import Trainer

    tr = Trainer("U1", (4, 4), 2.0, **CONFIGS, log=None)

    def params() -> dict[str, np.ndarray]:
        return {n: v.numpy().copy() for n, v in tr.model.named_parameters()}

    before = params()
    tr.train_step(2.0)
    _check(before, params())
