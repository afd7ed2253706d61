"""``common.driver.JobDriver`` without a framework: a numpy trainer and a one-process backend
stand in for PyTorch's or TensorFlow's (the real ones run in tests/test_targets_jobs*.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from l2hmcc.results import RunRecord, Summary
from l2hmcc.runtime.common.config import BetaSchedule, DynamicsConfig, TrainConfig
from l2hmcc.runtime.common.driver import STOPPED_EXIT_CODE, JobDriver
from l2hmcc.runtime.common.history import History
from l2hmcc.runtime.common.launch import detect
from l2hmcc.runtime.common.run import Evaluate, Experiment, Hmc, Lattice, Thermalize, parse_args

EXPERIMENT = Experiment("e", "", 3, "e.l2h", "ab" * 32, "numpy", "0.1.0")


class Backend:
    rank, world_size, comm = 0, 1, None

    def gather_objects(self, obj: Any) -> list[Any]:
        return [obj]

    def all_gather_chains(self, array: Any) -> Any:
        return array

    def after_resume(self) -> None: ...
    def barrier(self) -> None: ...
    def close(self) -> None: ...


class Group:
    name = "U1"


class StopFlag:
    def __init__(self, stop: bool) -> None:
        self.stop = stop

    def is_set(self) -> bool:
        return self.stop


class Model:
    def __init__(self, eps: list[float]) -> None:
        self.eps = eps


class Trainer:
    """What the driver reads of a trainer; each phase appends random-walk charges."""

    def __init__(self, eps: list[float], stop: bool = False) -> None:
        self.config = TrainConfig(steps=6, chains=2)
        self.dynamics_config = DynamicsConfig(leapfrog=2)
        self.beta = BetaSchedule(start=2.0)
        self.group, self.lattice_shape, self.dtype = Group(), (4, 4), np.float64
        self.step, self.x = 0, np.zeros((2, 2, 4, 4))
        self.histories = {"train": History(), "eval": History(), "hmc": History()}
        self.stop_flag, self.model = StopFlag(stop), Model(eps)
        self.rng = np.random.default_rng(0)

    def _phase(self, name: str, steps: int, chains: int, **extra: float) -> None:
        q = np.zeros(chains)
        for i in range(steps):
            q = q + self.rng.integers(-1, 2, size=chains)
            record = {"accept_prob": self.rng.random(chains), "plaquette": np.full(chains, 0.7)}
            record |= {"charge": q.copy(), "time_s": 1.0 if i == 0 else 0.01, **extra}
            self.histories[name].append(record, step=i if name != "train" else self.step)
            if name == "train":
                self.step += 1

    def train(self) -> None:
        self._phase("train", 2 if self.stop_flag.is_set() else 6, 2, loss=1.5)

    def evaluate(self, steps: int, beta: float, x: np.ndarray) -> None:
        self._phase("eval", steps, x.shape[0])

    def run_hmc(self, steps: int, beta: float, *, x: np.ndarray, **kw: Any) -> None:
        self._phase("hmc", steps, x.shape[0], step_size=0.2, n_steps=5)

    def resume(self) -> bool:
        return False

    def checkpoint_dir(self) -> None:
        return None


class Run(JobDriver):
    version_modules = ()
    distributed_targets = "numpy-mpi"

    def seed(self, seed: int) -> None: ...

    def cold_start(self, trainer: Any, lattice: Lattice) -> Any:
        return np.zeros_like(trainer.x)

    def chains_like(self, x: Any, chains: int) -> Any:
        return np.resize(x, (chains, *x.shape[1:]))

    def step_sizes(self, trainer: Any) -> list[float]:
        return list(trainer.model.eps)

    def tensorboard(self, histories: dict[str, History]) -> None:
        raise AssertionError("not asked for")


def _run(tmp_path: Path, *argv: str) -> Run:
    args = parse_args(["--out", str(tmp_path / "out"), "--no-plots", *argv], job_dir=tmp_path)
    return Run(EXPERIMENT, args, detect({}), Backend(), "cpu")


def test_phases_write_summary_and_run_record(tmp_path: Path) -> None:
    run = _run(tmp_path, "--eval-steps", "5")
    assert json.loads((run.out / "run.json").read_text())["status"] == "running"
    trainer = Trainer([0.2, 0.3])
    assert run.train(trainer, Lattice("U1", (4, 4)))
    run.evaluate(trainer, Evaluate(steps=8, chains=3))  # the command line's 5 wins
    run.hmc(trainer, Hmc(steps=4, chains=2, step_size=0.2))
    assert run.finish(trainer) == 0
    s = Summary.model_validate_json((run.out / "summary.json").read_text())
    assert (s.train.steps, s.train.final_loss, s.train.step_sizes) == (6, 1.5, [0.2, 0.3])
    assert (s.l2hmc.trajectories, s.l2hmc.chains) == (5, 3)
    assert s.hmc is not None and (s.hmc.trajectories, s.hmc.leapfrog_steps) == (4, 5)
    # forces per trajectory: 2 merged layers pass 5 states; HMC's 5 leapfrog steps 6
    assert (s.l2hmc.forces_per_trajectory, s.hmc.forces_per_trajectory) == (5, 6)
    record = RunRecord.model_validate_json((run.out / "run.json").read_text())
    assert record.status == "completed" and record.chain_seeds == [3]
    with np.load(run.out / "history" / "eval.npz") as h:
        assert h["accept_prob"].shape == (5, 3)


def test_a_signal_stops_after_training(tmp_path: Path) -> None:
    run = _run(tmp_path)
    trainer = Trainer([0.2], stop=True)
    assert not run.train(trainer, Lattice("U1", (4, 4), start="cold"))
    assert run.stopped(trainer) == STOPPED_EXIT_CODE == 143
    assert json.loads((run.out / "run.json").read_text())["status"] == "stopped"


def test_a_diverged_training_says_so_instead_of_a_json_traceback(tmp_path: Path) -> None:
    run = _run(tmp_path)
    trainer = Trainer([float("nan"), 0.2])
    run.train(trainer, Lattice("U1", (4, 4)))
    run.evaluate(trainer, Evaluate(steps=3, chains=2))
    run.hmc(trainer, Hmc(steps=3, chains=2, step_size=0.2))
    with pytest.raises(SystemExit, match=r"training diverged: step sizes \[nan, 0.2\]"):
        run.finish(trainer)
    assert (run.out / "history" / "train.npz").is_file()
    assert not (run.out / "summary.json").exists()


def test_overrides_and_a_launcher_with_more_ranks(tmp_path: Path) -> None:
    run = _run(tmp_path, "--train-steps", "9", "--no-compile", "--log-every", "2")
    config = run.train_config(TrainConfig(eras=2, steps_per_era=5, compile=True))
    assert (config.total_steps, config.compile, config.log_every) == (9, False, 2)
    args = parse_args(["--out", str(tmp_path / "o2")], job_dir=tmp_path)
    env = detect({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"})
    with pytest.raises(SystemExit, match="distributed target \\(numpy-mpi\\)"):
        Run(EXPERIMENT, args, env, Backend(), "cpu")


class ThermalizingTrainer(Trainer):
    """Records each ``thermalize`` call; the chains come back marked (+1)."""

    def __init__(self) -> None:
        super().__init__([0.2])
        self.calls: list[tuple[float, dict[str, Any]]] = []

    def thermalize(self, x: Any, beta: float, **kw: Any) -> tuple[Any, dict[str, Any]]:
        self.calls.append((beta, kw))
        eps = kw["step_size"] or 0.125
        record = {
            "beta": beta,
            "trajectories": 30,
            "max_trajectories": kw["max_trajectories"],
            "window": kw["window"],
            "step_size": eps,
            "leapfrog_steps": 8,
            "tuned": kw["step_size"] is None,
            "acceptance": 0.8,
            "plaquette_first_window": 0.5,
            "plaquette_last_window": 0.6,
            "drift_z": 0.5,
            "converged": len(self.calls) == 1,
        }
        return x + 1, record


def test_thermalization_before_training_and_once_before_measuring(tmp_path: Path, capsys) -> None:
    args = parse_args(["--out", str(tmp_path / "out"), "--no-plots"], job_dir=tmp_path)
    thermalize = Thermalize(max_trajectories=200, window=10)
    run = Run(EXPERIMENT, args, detect({}), Backend(), "cpu", thermalize=thermalize)
    trainer = ThermalizingTrainer()
    assert run.train(trainer, Lattice("U1", (4, 4)))
    assert trainer.x.min() == 1  # training started from the thermalized chains
    run.evaluate(trainer, Evaluate(steps=4, chains=2))
    run.hmc(trainer, Hmc(steps=3, chains=2, step_size=0.2))
    assert run.finish(trainer) == 0
    # at the first β before training, at the final β once for evaluation and HMC; the second
    # reuses the ε the first tuned at the same β
    assert [(b, kw["step_size"]) for b, kw in trainer.calls] == [(2.0, None), (2.0, 0.125)]
    record = RunRecord.model_validate_json((run.out / "run.json").read_text())
    assert [t.before for t in record.thermalization] == ["training", "measuring"]
    assert [t.converged for t in record.thermalization] == [True, False]
    assert "WARNING: thermalized at beta = 2" in capsys.readouterr().out


def test_thermalize_max_zero_on_the_command_line_turns_it_off(tmp_path: Path) -> None:
    args = parse_args(["--out", str(tmp_path / "out"), "--thermalize-max", "0"], job_dir=tmp_path)
    thermalize = Thermalize(max_trajectories=200, window=10)
    run = Run(EXPERIMENT, args, detect({}), Backend(), "cpu", thermalize=thermalize)
    trainer = ThermalizingTrainer()
    assert run.train(trainer, Lattice("U1", (4, 4)))
    run.evaluate(trainer, Evaluate(steps=4, chains=2))
    assert trainer.calls == []
    assert json.loads((run.out / "run.json").read_text())["thermalization"] == []


def test_a_resumed_run_keeps_the_thermalizations_and_their_tuned_step_size(
    tmp_path: Path,
) -> None:
    thermalize = Thermalize(max_trajectories=200, window=10)
    args = parse_args(["--out", str(tmp_path / "out"), "--no-plots"], job_dir=tmp_path)
    first = Run(EXPERIMENT, args, detect({}), Backend(), "cpu", thermalize=thermalize)
    trainer = ThermalizingTrainer()
    assert first.train(trainer, Lattice("U1", (4, 4)))  # thermalized before training, ε tuned
    args = parse_args(["--out", str(tmp_path / "out"), "--resume"], job_dir=tmp_path)
    again = Run(EXPERIMENT, args, detect({}), Backend(), "cpu", thermalize=thermalize)
    resumed = ThermalizingTrainer()
    resumed.resume = lambda: True  # type: ignore[method-assign]
    resumed.checkpoint_dir = lambda: tmp_path  # type: ignore[method-assign]
    assert again.train(resumed, Lattice("U1", (4, 4)))
    again.evaluate(resumed, Evaluate(steps=2, chains=2))
    assert [kw["step_size"] for _, kw in resumed.calls] == [0.125]  # measuring, ε reused
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [t["before"] for t in record["thermalization"]] == ["training", "measuring"]
