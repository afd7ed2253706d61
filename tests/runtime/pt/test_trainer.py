"""Trainer: schedules, a tiny training run that learns, evaluation and the HMC baseline,
checkpoints (atomic, keep K, resume = uninterrupted run), the signal stop flag."""

import math
import os
import signal

import numpy as np
import pytest
import torch

from l2hmcc.runtime.pt.checkpoint import StopFlag, list_checkpoints, save_checkpoint
from l2hmcc.runtime.pt.distributed import Backend, SingleProcess
from l2hmcc.runtime.pt.dynamics import DynamicsConfig
from l2hmcc.runtime.pt.loss import LossConfig, plaquette_distance
from l2hmcc.runtime.pt.networks import NetworkConfig
from l2hmcc.runtime.pt.trainer import BetaSchedule, TrainConfig, Trainer, lr_factor

torch.set_num_threads(1)


def tiny(out_dir=None, log=None, **train) -> Trainer:
    torch.manual_seed(0)
    cfg = {"steps": 6, "chains": 8, "lr": 0.01, "precision": "fp64", "log_every": 0}
    cfg = {**cfg, "compile": False, "clip_norm": 0.0, "seed": 0, **train}
    return Trainer(
        "U1",
        (4, 4),
        BetaSchedule("linear", 1.0, 2.0),
        DynamicsConfig(leapfrog=2, step_size=0.1),
        NetworkConfig(hidden=(8,), dropout=0.1),
        LossConfig(plaquette=1.0, charge=0.5, aux_weight=0.5),
        TrainConfig(**cfg),
        out_dir=out_dir,
        log=log,
    )


def test_beta_schedules() -> None:
    assert BetaSchedule(start=3.0).at(7, 10) == 3.0
    lin = BetaSchedule("linear", 1.0, 4.0)
    assert [lin.at(s, 4) for s in range(4)] == [1.0, 2.0, 3.0, 4.0]
    geo = BetaSchedule("geometric", 1.0, 8.0)
    assert [geo.at(s, 4) for s in range(4)] == pytest.approx([1.0, 2.0, 4.0, 8.0], rel=1e-14)
    stepped = BetaSchedule("stepped", values=(1.0, 2.0, 3.0))
    assert [stepped.at(s, 6) for s in range(6)] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    eras = BetaSchedule("stepped", 2.0, 3.0, eras=3)
    assert eras.era_values() == (2.0, 2.5, 3.0) and eras.final(9) == 3.0
    with pytest.raises(ValueError, match="end"):
        BetaSchedule("linear", 1.0)


def test_learning_rate_schedules() -> None:
    cos = lr_factor(TrainConfig(steps=11, lr_schedule="cosine", lr_final_factor=0.1, warmup=0))
    assert (
        cos(0) == pytest.approx(1.0)
        and cos(10) == pytest.approx(0.1)
        and cos(5) == pytest.approx(0.55)
    )
    lin = lr_factor(TrainConfig(steps=12, lr_schedule="linear", lr_final_factor=0.5, warmup=2))
    assert [lin(0), lin(1)] == [0.5, 1.0] and lin(11) == pytest.approx(0.5)
    exp = lr_factor(TrainConfig(steps=3, lr_schedule="exponential", lr_final_factor=0.25))
    assert [exp(s) for s in range(3)] == pytest.approx([1.0, 0.5, 0.25])
    assert TrainConfig(eras=3, steps_per_era=5).total_steps == 15
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lamb")


def test_single_process_backend_satisfies_the_protocol() -> None:
    b = SingleProcess()
    assert isinstance(b, Backend) and b.is_main and b.world_size == 1
    d = {"a": torch.ones(2)}
    assert b.all_reduce_mean(d) is d
    with pytest.raises(RuntimeError, match="wrap"):
        b.backward_and_step(torch.zeros((), requires_grad=True))


def test_a_tiny_training_run_raises_the_expected_jump_distance() -> None:
    torch.manual_seed(0)
    tr = Trainer(
        "U1",
        (4, 4),
        2.0,
        DynamicsConfig(leapfrog=2, step_size=0.05),
        NetworkConfig(hidden=(16,)),
        LossConfig(plaquette=1.0, form="plain"),
        TrainConfig(
            steps=60,
            chains=32,
            lr=0.02,
            precision="fp64",
            log_every=0,
            compile=False,
            clip_norm=0,
            seed=0,
        ),
        log=None,
    )

    def esjd() -> float:
        g = torch.Generator().manual_seed(123)
        x = tr.x.clone()
        tr.model.eval()
        jumps = []
        with torch.no_grad():
            for _ in range(5):
                v, d, u = tr.model.draw(x, g)
                prop = tr.model.propose(x, v, 2.0, d)
                jumps.append(float((prop.acceptance * plaquette_distance(x, prop.x)).mean()))
                x, _ = tr.model.accept(x, prop, u)
        return sum(jumps) / len(jumps)

    before = esjd()
    hist = tr.train()
    after = esjd()
    assert after > 1.5 * before, (before, after)
    loss = hist["loss"]
    assert loss[-10:].mean() < loss[:10].mean() - 1.0
    assert np.all(hist["step_sizes"][-1] > 0.05)  # the learnable step sizes grew


def test_histories_evaluate_and_hmc_baseline() -> None:
    tr = tiny()
    hist = tr.train()
    assert len(hist) == 6 and hist["accept_prob"].shape == (6, 8)
    assert hist["beta"].tolist() == pytest.approx([1.0, 1.2, 1.4, 1.6, 1.8, 2.0])
    for key in (
        "loss",
        "esjd_plaquette",
        "aux_esjd_plaquette",
        "loss_charge",
        "lr",
        "dQ",
        "sumlogdet",
    ):
        assert key in hist
    ev = tr.evaluate(4)
    assert ev["accept_prob"].shape == (4, 8) and "sin_charge" in ev
    hmc = tr.run_hmc(5, target_acceptance=0.8)
    assert hmc["plaquette"].shape == (5, 8) and hmc["dQ"].shape == (5, 8)
    assert 0.5 < hmc.mean("accept_prob") <= 1.0
    fixed = tr.run_hmc(2, step_size=0.3, traj_length=1.0)  # no tuning: ceil(1/0.3) = 4 steps
    assert fixed["n_steps"][-2:].tolist() == [4, 4]
    assert fixed["step_size"][-1] == pytest.approx(0.25)
    for h in (hist, ev, fixed):
        assert np.all(h["time_s"] > 0)


def test_gradients_hold_no_memory_between_training_steps() -> None:
    """After each optimizer step the gradients are released (``None``), so evaluation and
    checkpoints between steps do not keep a second copy of every parameter alive."""
    tr = tiny()
    steps = []
    tr._on_step = lambda phase, step, total: steps.append(
        [p.grad for p in tr.model.parameters() if p.requires_grad]
    )
    tr.train()
    assert len(steps) == 6 and all(g is None for grads in steps for g in grads)
    assert any(p.requires_grad for p in tr.model.parameters())


def test_on_step_hook_sees_every_step() -> None:
    calls = []
    tr = tiny()
    tr._on_step = lambda phase, step, total: calls.append((phase, step, total))
    tr.train()
    tr.evaluate(2)
    assert calls == [("train", s, 6) for s in range(1, 7)] + [("eval", 1, 2), ("eval", 2, 2)]


def _params(tr: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in tr.model.state_dict().items()}


def test_resume_equals_an_uninterrupted_run(tmp_path) -> None:
    straight = tiny()
    straight.train()
    first = tiny(out_dir=tmp_path)
    first.train(steps=3)
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["ckpt-00000003.pt"]
    second = tiny(out_dir=tmp_path)
    assert second.resume() and second.step == 3
    second.train()
    for key, value in _params(straight).items():
        assert torch.equal(value, _params(second)[key]), key
    assert torch.equal(straight.x, second.x)
    h1, h2 = straight.histories["train"], second.histories["train"]
    assert h1.keys() == h2.keys()
    for key in h1:
        if key == "time_s":  # wall time
            continue
        assert np.array_equal(h1[key], h2[key]) and np.array_equal(h1.steps(key), h2.steps(key)), (
            key
        )


def test_a_signal_makes_the_loop_checkpoint_and_stop(tmp_path) -> None:
    def log(line: str) -> None:
        if line.startswith("train 2/"):
            os.kill(os.getpid(), signal.SIGUSR1)

    tr = tiny(out_dir=tmp_path, log=log, log_every=1, checkpoint_every=100)
    previous = signal.getsignal(signal.SIGUSR1)
    hist = tr.train()
    assert tr.step == 2 and len(hist) == 2 and tr.stop_flag.signal == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) == previous  # handlers restored
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["ckpt-00000002.pt"]
    resumed = tiny(out_dir=tmp_path)
    assert resumed.resume()
    resumed.train()
    assert resumed.step == 6 and len(resumed.histories["train"]) == 6


def test_checkpoints_are_atomic_and_only_the_latest_k_are_kept(tmp_path) -> None:
    for step in range(1, 6):
        save_checkpoint(tmp_path, step, {"step": step, "w": torch.ones(3) * step}, keep=2)
    # the two latest, and no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00000004.pt", "ckpt-00000005.pt"]


def test_stop_flag_without_signals() -> None:
    flag = StopFlag()
    assert not flag.is_set()
    flag.set()
    assert flag.is_set() and flag.signal is None
    flag.clear()
    assert not flag.is_set()


@pytest.mark.parametrize("group", ["SU2", "SU3"])
def test_sun_training_step_runs_and_learns_step_sizes(group) -> None:
    torch.manual_seed(0)
    tr = Trainer(
        group,
        (2, 2, 2, 2),
        4.0,
        DynamicsConfig(leapfrog=1, step_size=0.1),
        NetworkConfig(hidden=(16,), activation="tanh"),
        LossConfig(plaquette=0.1, charge=0.1),
        TrainConfig(
            steps=3, chains=2, lr=0.01, precision="fp64", clip_norm=1.0, log_every=0, compile=False
        ),
        log=None,
    )
    hist = tr.train()
    assert np.all(np.isfinite(hist["loss"])) and "grad_norm" in hist and "charge" in hist
    assert not math.isclose(float(hist["step_sizes"][-1][0]), 0.1)


def test_fp32_physics_and_network_autocast_only_on_cuda_and_xpu() -> None:
    torch.manual_seed(0)
    with pytest.warns(RuntimeWarning, match="CUDA and XPU only"):
        tr = Trainer(
            "SU2",
            (2, 2),
            2.0,
            DynamicsConfig(leapfrog=1, step_size=0.1),
            NetworkConfig(hidden=(8,)),
            LossConfig(plaquette=1.0),
            TrainConfig(
                steps=2,
                chains=2,
                precision="fp32",
                network_precision="bf16",
                log_every=0,
                compile=False,
            ),
            log=None,
        )
    assert tr.model.autocast_dtype == torch.bfloat16  # would apply on CUDA and XPU
    hist = tr.train()
    assert tr.x.dtype == torch.complex64 and next(tr.model.parameters()).dtype == torch.float32
    assert np.all(np.isfinite(hist["loss"]))
