"""A shipped spec → the runtime's configs, exactly as a generated ``train.py`` gets them.

``driver.check`` (with ``--set`` overrides and the ``pytorch`` target's checks) and the
IR → config tables of ``l2hmcc.targets.sampler`` that the PyTorch targets render into
``train.py``; the report then drives the same ``Trainer`` in-process, so that it can interleave
the L2HMC and HMC measurements and time them in process CPU time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l2hmcc import driver
from l2hmcc.runtime.pt.dynamics import DynamicsConfig
from l2hmcc.runtime.pt.loss import LossConfig
from l2hmcc.runtime.pt.networks import NetworkConfig
from l2hmcc.runtime.pt.trainer import BetaSchedule, TrainConfig
from l2hmcc.targets import sampler

REPO = Path(__file__).resolve().parents[2]


class SpecError(Exception):
    """The spec (with its overrides) does not check clean."""


@dataclass(frozen=True)
class SpecConfigs:
    path: str
    overrides: tuple[str, ...]
    seed: int
    group: str
    shape: tuple[int, ...]
    start: str
    beta: BetaSchedule
    dynamics: DynamicsConfig
    network: NetworkConfig
    loss: LossConfig
    train: TrainConfig
    evaluate: dict[str, Any]
    hmc: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """The settings, for the report (plain values)."""
        from dataclasses import asdict

        return {
            "spec": self.path,
            "overrides": list(self.overrides),
            "seed": self.seed,
            "group": self.group,
            "shape": list(self.shape),
            "beta": asdict(self.beta),
            "dynamics": asdict(self.dynamics),
            "network": asdict(self.network),
            "loss": asdict(self.loss),
            "train": asdict(self.train),
            "evaluate": self.evaluate,
            "hmc": self.hmc,
        }


def load(path: Path | str, overrides: tuple[str, ...] = ()) -> SpecConfigs:
    outcome = driver.check(str(path), overrides, target="pytorch")
    shown = Path(path)
    if shown.is_absolute() and shown.is_relative_to(REPO):
        shown = shown.relative_to(REPO)
    if not outcome.ok or outcome.spec is None:
        text = "; ".join(f"{d.code}: {d.message}" for d in outcome.diagnostics if d.is_error)
        raise SpecError(f"{path} {' '.join(overrides)}: {text}")
    spec = outcome.spec
    return SpecConfigs(
        path=str(shown),
        overrides=tuple(overrides),
        seed=spec.experiment.seed,
        group=spec.lattice.group,
        shape=tuple(spec.lattice.shape),
        start=spec.lattice.start,
        beta=BetaSchedule(**dict(sampler.beta_kwargs(spec.lattice.beta))),
        dynamics=DynamicsConfig(**dict(sampler.dynamics_kwargs(spec))),
        network=NetworkConfig(**dict(sampler.network_kwargs(spec))),
        loss=LossConfig(**dict(sampler.loss_kwargs(spec))),
        train=TrainConfig(**dict(sampler.train_kwargs(spec))),
        evaluate=dict(sampler.evaluate_kwargs(spec)),
        hmc=dict(sampler.hmc_kwargs(spec)),
    )
