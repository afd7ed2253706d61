"""The framework-neutral configs (``runtime/common/config.py``) are the PyTorch runtime's:
same classes or same fields, defaults and validation (docs/requests-6.md, R1), so one spec
builds the same sampler in both frameworks."""

from __future__ import annotations

import dataclasses

import pytest

from l2hmcc.runtime.common import config as common

torch = pytest.importorskip("torch")

from l2hmcc.runtime.pt import dynamics, loss, networks, trainer  # noqa: E402

PAIRS = [
    (common.NetworkConfig, networks.NetworkConfig),
    (common.DynamicsConfig, dynamics.DynamicsConfig),
    (common.LossConfig, loss.LossConfig),
    (common.TrainConfig, trainer.TrainConfig),
    (common.BetaSchedule, trainer.BetaSchedule),
]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=lambda c: c.__name__)
def test_same_fields_and_defaults(ours, theirs) -> None:
    if ours is theirs:
        return
    a = [(f.name, f.default, f.default_factory) for f in dataclasses.fields(ours)]
    b = [(f.name, f.default, f.default_factory) for f in dataclasses.fields(theirs)]
    assert a == b
    assert ours() == ours(**dataclasses.asdict(theirs())) or ours is common.BetaSchedule


BAD = [
    (common.NetworkConfig, networks.NetworkConfig, {"activation": "nope"}),
    (
        common.NetworkConfig,
        networks.NetworkConfig,
        {"conv_filters": (2, 3), "conv_kernels": (1, 2, 3)},
    ),
    (common.DynamicsConfig, dynamics.DynamicsConfig, {"directions": "both"}),
    (common.LossConfig, loss.LossConfig, {"plaquette": 0.0}),
    (common.TrainConfig, trainer.TrainConfig, {"optimizer": "lamb"}),
    (common.BetaSchedule, trainer.BetaSchedule, {"kind": "linear"}),
]


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), BAD)
def test_same_validation(ours, theirs, kwargs) -> None:
    with pytest.raises(ValueError) as mine:
        ours(**kwargs)
    with pytest.raises(ValueError) as ref:
        theirs(**kwargs)
    assert str(mine.value) == str(ref.value)


def test_same_schedules() -> None:
    cfg = dict(steps=20, lr_schedule="cosine", lr_final=0.1, warmup=3)
    ours, theirs = (
        common.lr_factor(common.TrainConfig(**cfg)),
        trainer.lr_factor(trainer.TrainConfig(**cfg)),
    )
    assert [ours(s) for s in range(22)] == [theirs(s) for s in range(22)]
    b = dict(kind="geometric", start=1.0, end=4.0)
    assert [common.BetaSchedule(**b).at(s, 9) for s in range(9)] == [
        trainer.BetaSchedule(**b).at(s, 9) for s in range(9)
    ]
