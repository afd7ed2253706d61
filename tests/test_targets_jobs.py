"""The generated PyTorch jobs, run for real on CPU: every target, the smoke specs.

Each test compiles a shipped smoke spec (job directories are shared through a session fixture)
and runs ``./run-local.sh`` exactly as a user would, with the real torch, torch.distributed
(gloo), DeepSpeed and Horovod, then reads what the job wrote: ``summary.json`` and ``run.json``
(validated against `l2hmcc.results`), the histories, plots and checkpoints.

Budget: each run takes seconds (4×4 U(1), 2⁴ SU(3), tens of steps); the whole file about two
to three minutes on 2 cores.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from jobs_helpers import (
    JobFactory,
    assert_same_histories,
    check_outputs,
    job_env,
    job_factory,
    require,
    run_isolated,
    run_job,
    stop_with_signal,
    stop_with_sigterm,
)

from l2hmcc import driver
from l2hmcc.results import RunRecord

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def job(tmp_path_factory: pytest.TempPathFactory) -> JobFactory:
    return job_factory(tmp_path_factory.mktemp("jobs"))


def final_parameters(out: Path, rank: int | None) -> dict[str, torch.Tensor]:
    directory = out / "checkpoints" / (f"rank{rank}" if rank is not None else "")
    latest = sorted(directory.glob("ckpt-*.pt"))[-1]
    state = torch.load(latest, map_location="cpu", weights_only=False)
    return {k: v for k, v in state["model"].items() if v.is_floating_point()}


def assert_same_parameters_on_every_rank(out: Path, world_size: int) -> None:
    ranks = [final_parameters(out, r) for r in range(world_size)]
    assert ranks[0], "no parameters"
    for other in ranks[1:]:
        assert other.keys() == ranks[0].keys()
        for k in ranks[0]:
            assert torch.equal(ranks[0][k].reshape(-1), other[k].reshape(-1)), k


# ----------------------------------------------------------------------------------------------
# pytorch


@pytest.fixture(scope="session")
def u1_pytorch_run(job: JobFactory) -> Path:
    d = job("u1-smoke", "pytorch")
    run_job(d)
    return d / "output"


def test_pytorch_u1_trains_evaluates_runs_hmc_and_writes_every_output(
    u1_pytorch_run: Path,
) -> None:
    s = check_outputs(
        u1_pytorch_run,
        target="pytorch",
        world_size=1,
        chains=4,
        train_steps=20,
        eval_steps=10,
        hmc_steps=10,
    )
    assert s.l2hmc.plaquette.exact == pytest.approx(0.697774657964, abs=1e-9)  # I1(2)/I0(2)
    assert s.hmc is not None and not s.hmc.tuned and s.hmc.step_size == pytest.approx(0.2)
    assert s.hmc.leapfrog_steps == 5  # τ = 1 / ε = 0.2
    assert sorted(p.name for p in (u1_pytorch_run / "checkpoints").iterdir()) == [
        "ckpt-00000010.pt",
        "ckpt-00000020.pt",
    ]


def test_pytorch_su3_fp64(job: JobFactory) -> None:
    d = job("su3-smoke", "pytorch")
    proc = run_job(d, "--tensorboard")
    assert "su3_smoke (pytorch, 1 rank(s))" in proc.stdout
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert "--tensorboard" in proc.stderr  # a warning, not a failure
    else:
        assert list((d / "output" / "tensorboard").glob("events.out.tfevents.*"))
    s = check_outputs(
        d / "output",
        target="pytorch",
        world_size=1,
        chains=2,
        train_steps=10,
        eval_steps=5,
        hmc_steps=5,
    )
    assert s.l2hmc.plaquette.exact is None and s.l2hmc.q2.mean is not None  # clover charge
    state = torch.load(sorted((d / "output" / "checkpoints").glob("*.pt"))[-1], weights_only=False)
    assert state["chains"].dtype == torch.complex128


def test_network_none_learns_step_sizes_only_and_evaluation_compiles_alone(
    tmp_path: Path,
) -> None:
    """`network none` (requests-8 Q4) trains the per-layer step sizes and nothing else, and
    `evaluate { compile = true }` with eager training (Q2) compiles the leapfrog layers for
    evaluation only: dynamo's graph log shows the traced trajectory after training, before HMC."""
    spec = tmp_path / "bare.l2h"
    spec.write_text(
        "experiment bare { seed = 3 }\n"
        "lattice { group = U1  shape = [4, 4]  beta = 2.0 }\n"
        "dynamics { leapfrog = 2  step_size = 0.1 }\n"
        "network none {}\n"
        "train { steps = 6  chains = 4  lr = 0.05  compile = false  checkpoint_every = 0 }\n"
        "evaluate { steps = 2  compile = true }\n"
        "hmc { steps = 2  step_size = 0.2 }\n"
    )
    d = tmp_path / "job"
    outcome = driver.compile(str(spec), "pytorch", d)
    assert outcome.ok, outcome.diagnostics
    proc = subprocess.run(  # one stream, so that the graph log and the phases stay in order
        ["./run-local.sh", "--no-plots"],
        cwd=d,
        env={**job_env(), "TORCH_LOGS": "graph_code"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    log = proc.stdout
    assert proc.returncode == 0, log
    evaluating = log.index("evaluating the trained sampler")
    hmc = log.index("HMC baseline")
    assert "TRACED GRAPH" not in log[:evaluating]  # eager training
    # compiled evaluation: a network-free U(1) sampler is one graph of the whole trajectory
    assert "TRACED GRAPH" in log[evaluating:hmc] and "in trajectory" in log[evaluating:hmc]
    assert "TRACED GRAPH" not in log[hmc:]  # eager HMC (train.compile = false)
    check_outputs(
        d / "output",
        target="pytorch",
        world_size=1,
        chains=4,
        train_steps=6,
        eval_steps=2,
        hmc_steps=2,
        plots=False,
    )
    params = final_parameters(d / "output", None)
    assert list(params) == ["log_step_size"]  # no network parameters
    assert params["log_step_size"].shape == (2,)
    assert not torch.allclose(params["log_step_size"], torch.full((2,), math.log(0.1)))


def test_sigterm_then_resume_gives_the_uninterrupted_history(job: JobFactory) -> None:
    d = job("u1-smoke", "pytorch")
    args = ["--train-steps", "100", "--checkpoint-every", "1000", "--eval-steps", "4"]
    args += ["--hmc-steps", "4", "--no-plots", "--log-every", "5"]
    stop_with_sigterm(d, "--out", "stopped", *args, after="train 10/100", within_s=120)
    record = json.loads((d / "stopped" / "run.json").read_text())
    assert record["status"] == "stopped"
    ckpts = sorted((d / "stopped" / "checkpoints").glob("ckpt-*.pt"))
    assert len(ckpts) == 1
    stopped_at = int(ckpts[0].stem.split("-")[1])
    assert 10 <= stopped_at < 100

    resumed = run_job(d, "--out", "stopped", "--resume", *args)
    assert f"resumed from step {stopped_at}" in resumed.stdout
    s = check_outputs(
        d / "stopped",
        target="pytorch",
        world_size=1,
        chains=4,
        train_steps=100,
        eval_steps=4,
        hmc_steps=4,
        plots=False,
    )
    assert s.train.resumed_from_step == stopped_at

    run_job(d, "--out", "straight", *args)
    assert_same_histories(d / "stopped", d / "straight")


def test_sigkill_leaves_a_checkpoint_that_resumes_to_the_uninterrupted_history(
    job: JobFactory,
) -> None:
    """A kill that cannot be caught (OOM killer, PBS past the grace period), with a checkpoint
    written every step so that it likely lands mid-write: the directory holds only complete
    checkpoints (a half-written temporary is never taken for one) and --resume from the latest
    ends with the uninterrupted run's history."""
    d = job("u1-smoke", "pytorch")
    args = ["--train-steps", "60", "--checkpoint-every", "1", "--eval-steps", "4"]
    args += ["--hmc-steps", "4", "--no-plots", "--log-every", "5"]
    stop_with_signal(
        d, "--out", "killed", *args, after="train 20/60", within_s=120, sig=signal.SIGKILL
    )
    ckpts = sorted((d / "killed" / "checkpoints").glob("ckpt-*.pt"))
    assert ckpts, "no checkpoint before the kill"
    killed_at = int(ckpts[-1].stem.split("-")[1])
    assert 10 <= killed_at < 60  # step 20 is logged before its checkpoint is written
    for ckpt in ckpts:  # every file that looks like a checkpoint loads
        assert torch.load(ckpt, weights_only=False)["step"] == int(ckpt.stem.split("-")[1])

    resumed = run_job(d, "--out", "killed", "--resume", *args)
    assert f"resumed from step {killed_at}" in resumed.stdout
    run_job(d, "--out", "straight", *args)
    assert_same_histories(d / "killed", d / "straight")


def test_carried_runtime_runs_without_the_compiler_dependencies(job: JobFactory) -> None:
    """train.py runs with lark, jinja2, pydantic and l2hmcc itself unimportable, and imports
    none of them."""
    d = job("u1-smoke", "pytorch")
    blocked = ("lark", "jinja2", "pydantic", "l2hmcc")
    args = ["--out", "isolated", "--train-steps", "3", "--eval-steps", "2"]
    proc = run_isolated(d, blocked, *args, "--hmc-steps", "2", "--no-plots")
    assert "LOADED []" in proc.stdout
    assert (d / "isolated" / "summary.json").is_file()


def test_help_lists_the_options(job: JobFactory) -> None:
    d = job("u1-smoke", "pytorch")
    proc = subprocess.run(
        [sys.executable, "train.py", "--help"], cwd=d, capture_output=True, text=True, env=job_env()
    )
    assert proc.returncode == 0, proc.stderr
    for option in ("--out DIR", "--resume", "--train-steps", "--eval-steps", "--hmc-steps"):
        assert option in proc.stdout
    assert "u1_smoke: L2HMC for 2D U(1)" in proc.stdout  # the docstring is the description


def test_single_process_target_refuses_several(job: JobFactory) -> None:
    d = job("u1-smoke", "pytorch")
    proc = subprocess.run(
        ["./run-local.sh", "--nproc", "2"], cwd=d, env=job_env(), capture_output=True, text=True
    )
    assert proc.returncode == 2 and "runs one process" in proc.stderr


# ----------------------------------------------------------------------------------------------
# distributed


@pytest.mark.distributed
def test_ddp_two_ranks_with_gloo(job: JobFactory) -> None:
    d = job("u1-smoke", "pytorch-ddp")
    proc = run_job(d, nproc=2)
    assert "u1_smoke (pytorch-ddp, 2 rank(s))" in proc.stdout
    out = d / "output"
    check_outputs(
        out,
        target="pytorch-ddp",
        world_size=2,
        chains=4,
        train_steps=20,
        eval_steps=10,
        hmc_steps=10,
    )
    record = RunRecord.model_validate_json((out / "run.json").read_text())
    assert (record.launcher, record.dist_backend) == ("torchrun", "gloo")
    assert record.chain_seeds == [7, 7 + 1_000_003]
    assert_same_parameters_on_every_rank(out, 2)


@pytest.mark.distributed
def test_ddp_under_mpi_rank_variables(job: JobFactory) -> None:
    """The same train.py under mpiexec on Polaris: ranks from PMI_*, rendezvous from the
    MASTER_ADDR/MASTER_PORT that job.pbs exports (two processes started by hand here)."""
    from l2hmcc.runtime.common.launch import free_port

    d = job("u1-smoke", "pytorch-ddp")
    port = str(free_port())
    env = {k: v for k, v in job_env().items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    args = ["--out", "mpi", "--train-steps", "5", "--eval-steps", "3", "--hmc-steps", "3"]
    procs = [
        subprocess.Popen(
            [sys.executable, "train.py", *args, "--no-plots"],
            cwd=d,
            env={
                **env,
                "PMI_RANK": str(r),
                "PMI_LOCAL_RANK": str(r),
                "PMI_SIZE": "2",
                "PMI_LOCAL_SIZE": "2",
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    record = RunRecord.model_validate_json((d / "mpi" / "run.json").read_text())
    assert (record.launcher, record.world_size, record.dist_backend) == ("mpich", 2, "gloo")
    assert_same_parameters_on_every_rank(d / "mpi", 2)


@pytest.mark.distributed
@pytest.mark.deepspeed
def test_deepspeed_one_rank_matches_plain_pytorch_and_resumes(
    job: JobFactory, u1_pytorch_run: Path
) -> None:
    require("deepspeed", "install it with scripts/setup.sh (DS_BUILD_OPS=0)")
    d = job("u1-smoke", "pytorch-deepspeed")
    run_job(d)
    out = d / "output"
    check_outputs(
        out,
        target="pytorch-deepspeed",
        world_size=1,
        chains=4,
        train_steps=20,
        eval_steps=10,
        hmc_steps=10,
    )
    # ZeRO-1 with the trainer's Adam takes the same steps as the plain optimizer, up to float32
    # rounding (DeepSpeed sums gradients and their norm over flat buffers, in another order).
    with (
        np.load(out / "history" / "train.npz") as a,
        np.load(u1_pytorch_run / "history" / "train.npz") as b,
    ):
        assert np.array_equal(a["accepted"], b["accepted"])
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=2e-3)
        np.testing.assert_allclose(a["step_sizes"], b["step_sizes"], rtol=1e-4)
    # Resuming refreshes ZeRO's fp32 partitions from the loaded parameters: 10 steps, then a
    # resume to the spec's 20, equals the straight run.
    short = ["--eval-steps", "2", "--hmc-steps", "2", "--no-plots"]
    run_job(d, "--out", "part", "--train-steps", "10", *short)
    run_job(d, "--out", "part", "--resume", *short)
    with (
        np.load(out / "history" / "train.npz") as a,
        np.load(d / "part" / "history" / "train.npz") as b,
    ):
        for key in ("loss", "accepted", "step_sizes", "plaquette"):
            assert np.array_equal(a[key], b[key]), key


@pytest.mark.distributed
@pytest.mark.deepspeed
def test_deepspeed_two_ranks_su3_fp64(job: JobFactory) -> None:
    require("deepspeed", "install it with scripts/setup.sh (DS_BUILD_OPS=0)")
    d = job("su3-smoke", "pytorch-deepspeed")
    extensions = d / "torch-extensions"
    run_job(d, nproc=2, env={"TORCH_EXTENSIONS_DIR": str(extensions)})
    # skip_cpu_shm_build: DeepSpeed JIT-built no op (its CPU allreduce takes ~2 min to build)
    assert not extensions.exists() or not any(extensions.rglob("*.so"))
    out = d / "output"
    check_outputs(
        out,
        target="pytorch-deepspeed",
        world_size=2,
        chains=2,
        train_steps=10,
        eval_steps=5,
        hmc_steps=5,
    )
    params = final_parameters(out, 0)
    assert all(v.dtype == torch.float64 for v in params.values())
    assert_same_parameters_on_every_rank(out, 2)
    record = RunRecord.model_validate_json((out / "run.json").read_text())
    assert record.versions["deepspeed"] is not None


@pytest.mark.distributed
@pytest.mark.horovod
def test_horovod_two_ranks_with_gloo(job: JobFactory) -> None:
    require("horovod.torch", "build it with scripts/build-horovod.sh (scripts/setup.sh does)")
    d = job("u1-smoke", "pytorch-horovod")
    run_job(d, nproc=2)
    out = d / "output"
    check_outputs(
        out,
        target="pytorch-horovod",
        world_size=2,
        chains=4,
        train_steps=20,
        eval_steps=10,
        hmc_steps=10,
    )
    record = RunRecord.model_validate_json((out / "run.json").read_text())
    assert (record.launcher, record.dist_backend) == ("horovod", "horovod-gloo")
    assert_same_parameters_on_every_rank(out, 2)
