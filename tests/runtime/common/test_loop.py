"""``common.loop.TrainerLoop`` without a framework: a numpy random walk stands in for the
L2HMC step (the real trainers run in tests/runtime/pt and tests/runtime/tf)."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from l2hmcc.runtime.common import checkpoint
from l2hmcc.runtime.common.checkpoint import StopFlag
from l2hmcc.runtime.common.config import (
    BetaSchedule,
    DynamicsConfig,
    LossConfig,
    TrainConfig,
)
from l2hmcc.runtime.common.history import History
from l2hmcc.runtime.common.loop import (
    CHECKPOINT_FORMAT,
    TrainerLoop,
    history_from_state,
    history_state,
)


class Backend:
    rank, world_size = 0, 1


class Walk(TrainerLoop):
    """Chains ``x`` ``[B]`` of integer charges taking ±1/0 steps; ``loss`` their mean."""

    checkpoint_suffix = ".pkl"

    def __init__(self, out_dir: Path | None, log: list[str], **train: Any) -> None:
        self.config = TrainConfig(**{"steps": 6, "chains": 3, "log_every": 2, **train})
        self.beta = BetaSchedule("linear", 1.0, 2.0)
        self.dynamics_config, self.network_config = DynamicsConfig(), None
        self.loss_config = LossConfig()
        self.out_dir, self.backend = out_dir, Backend()
        self._log, self._on_step = log.append, None
        self.step, self.stop_flag = 0, StopFlag()
        self.histories = {"train": History(), "eval": History(), "hmc": History()}
        self.rng = np.random.default_rng(0)
        self.x = np.zeros(3)

    def train_step(self, beta: float) -> dict[str, Any]:
        self.x = self.x + self.rng.integers(-1, 2, size=self.x.shape)
        return {"loss": np.float64(self.x.mean()), "beta": beta, "step_sizes": np.array([0.1])}

    def _reduce(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return metrics

    def _beta_tensor(self, beta: float) -> Any:
        return np.asarray(beta)

    def _hmc_integrator(self, fourier: float = 0.0) -> Any:
        return None

    def _scalar(self, value: float) -> Any:
        return np.asarray(value)

    def _flag(self, value: float) -> Any:
        return np.asarray(value)

    def _mean(self, value: Any) -> float:
        return float(np.mean(value))

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "x": self.x,
            "rng": self.rng.bit_generator.state,
            "histories": {k: history_state(h) for k, h in self.histories.items()},
            "configs": self._configs_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_format(state)
        self.step, self.x = state["step"], state["x"]
        self.rng.bit_generator.state = state["rng"]
        self.histories = {k: history_from_state(h) for k, h in state["histories"].items()}

    def _write_checkpoint(self, directory: Path, state: dict[str, Any]) -> Path:
        path = directory / checkpoint.checkpoint_name(self.step, self.checkpoint_suffix)
        checkpoint.atomic_write(path, lambda fh: pickle.dump(state, fh))
        checkpoint.prune(directory, self.checkpoint_suffix, self.config.keep_checkpoints)
        return path

    def _read_checkpoint(self, path: Path) -> dict[str, Any]:
        with open(path, "rb") as fh:
            state: dict[str, Any] = pickle.load(fh)
        return state


def test_history_state_round_trips_with_gaps_and_when_empty() -> None:
    h = History()
    h.append({"a": np.arange(3.0), "b": 1}, step=0)
    h.append({"a": np.ones(3)}, step=2)
    back = history_from_state(history_state(h))
    assert list(back) == ["a", "b"]
    np.testing.assert_array_equal(back["a"], h["a"])
    np.testing.assert_array_equal(back.steps("a"), [0, 2])
    np.testing.assert_array_equal(back.steps("b"), [0])
    assert len(history_from_state({"steps": {}})) == 0


def test_train_logs_checkpoints_and_stops_on_the_flag(tmp_path: Path) -> None:
    log: list[str] = []
    walk = Walk(tmp_path, log, checkpoint_every=4)
    original = walk.train_step

    def step_then_signal(beta: float) -> dict[str, Any]:
        if walk.step == 4:
            walk.stop_flag.set(15)
        return original(beta)

    walk.train_step = step_then_signal  # type: ignore[method-assign]
    hist = walk.train()
    assert walk.step == 5 and len(hist["loss"]) == 5 and "time_s" in hist
    np.testing.assert_allclose(hist["beta"], [1.0, 1.2, 1.4, 1.6, 1.8])
    assert [line.split(" beta=")[0] for line in log[:2]] == ["train 2/6", "train 4/6"]
    assert " loss=" in log[0] and " dQ=- " in log[0] and "eps=[0.1]" in log[0]
    assert log[-1] == "stopped by signal 15 at step 5"
    names = [p.name for p in checkpoint.list_checkpoints(tmp_path / "checkpoints", ".pkl")]
    assert names == ["ckpt-00000004.pkl", "ckpt-00000005.pkl"]


def test_resume_continues_like_an_uninterrupted_run(tmp_path: Path) -> None:
    full = Walk(tmp_path / "a", [])
    full.train()
    Walk(tmp_path / "b", []).train(steps=3)
    resumed = Walk(tmp_path / "b", [])
    assert resumed.resume() and resumed.step == 3
    resumed.train()
    for key in ("loss", "beta"):
        np.testing.assert_array_equal(full.histories["train"][key], resumed.histories["train"][key])
    np.testing.assert_array_equal(full.x, resumed.x)
    assert not Walk(tmp_path / "empty", []).resume() and not Walk(None, []).resume()


def test_a_checkpoint_of_another_format_is_refused(tmp_path: Path) -> None:
    walk = Walk(tmp_path, [])
    with pytest.raises(ValueError, match="checkpoint format 2, expected 1"):
        walk.load_state_dict(walk.state_dict() | {"format": 2})


def test_hmc_trajectories_record_charge_changes() -> None:
    walk = Walk(None, [])
    charges = [np.array([1.0, 0.0]), np.array([-1.0, 0.0]), np.array([-1.0, 2.0])]

    def hmc_step(i: int, beta: Any, eps: float, n: int, *_: Any, **__: Any) -> tuple[int, Any]:
        assert (eps, n) == (0.25, 4)
        return i + 1, {"charge": charges[i]}

    walk.hmc_module = ModuleType("hmc")
    walk.hmc_module.hmc_step = hmc_step
    walk.hmc_module.steps_for_length = lambda eps, length: round(length / eps)
    walk.lattice_module = ModuleType("lattice")
    walk.lattice_module.topological_charge = lambda x: np.zeros(2)
    walk.model = SimpleNamespace(has_charge=True)
    walk.group = SimpleNamespace(is_abelian=False)
    walk.x, walk.generator = 0, None
    hist = walk.run_hmc(3, step_size=0.25, traj_length=1.0)
    np.testing.assert_array_equal(hist["dQ"], [[1, 0], [2, 0], [0, 2]])
    assert list(hist) == ["charge", "time_s", "dQ", "step_size", "n_steps"]
    np.testing.assert_array_equal(hist["n_steps"], [4, 4, 4])
