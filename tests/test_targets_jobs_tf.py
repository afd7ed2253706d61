"""The generated TensorFlow jobs, run for real on CPU with XLA (``jit_compile=True``).

Each test compiles a shipped smoke spec (job directories are shared through a session fixture)
and runs ``./run-local.sh --compile`` exactly as a user would, with the real TensorFlow and
Horovod (gloo), then reads what the job wrote: ``summary.json`` and ``run.json`` (validated
against `l2hmcc.results`), the histories, plots and checkpoints.

Budget (2 cores): U(1) runs spend ~20 s of CPU each, mostly compiling the XLA train step; the
SU(3) run ~70 s (its compiled layer gradient is large); the whole file ~4 minutes of CPU, more
wall time on a loaded machine.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import jobs_helpers
import numpy as np
import pytest
from jobs_helpers import (
    JobFactory,
    assert_same_histories,
    check_outputs,
    job_env,
    job_factory,
    require,
    run_isolated,
    stop_with_sigterm,
)

from l2hmcc.results import RunRecord

pytestmark = [pytest.mark.slow, pytest.mark.tf]

#: The U(1) run every test compares with: 40 training steps (the spec's 10 eval and HMC
#: trajectories), XLA; the SIGTERM test stops and resumes the same command line.
U1_ARGS = ("--compile", "--train-steps", "40", "--log-every", "5")


def run_job(
    job_dir: Path, *args: str, nproc: int | None = None
) -> subprocess.CompletedProcess[str]:
    """`jobs_helpers.run_job` with room for the XLA compiles (minutes on a loaded machine)."""
    return jobs_helpers.run_job(job_dir, *args, nproc=nproc, timeout=600)


@pytest.fixture(scope="session")
def tf_job(tmp_path_factory: pytest.TempPathFactory) -> JobFactory:
    return job_factory(tmp_path_factory.mktemp("tf-jobs"))


def assert_compiled_with_xla(proc: subprocess.CompletedProcess[str]) -> None:
    """The run used XLA throughout: no fallback to a plain tf.function."""
    assert "compile mode 'xla'" in proc.stdout, proc.stdout
    assert "falling back" not in proc.stderr, proc.stderr


def checkpoint(out: Path, rank: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of the latest checkpoint of ``rank`` (``None``: a single-process run)."""
    directory = out / "checkpoints" / (f"rank{rank}" if rank is not None else "")
    latest = sorted(directory.glob("ckpt-*.npz"))[-1]
    with np.load(latest, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# ----------------------------------------------------------------------------------------------
# tensorflow


@pytest.fixture(scope="session")
def u1_tf_run(tf_job: JobFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    d = tf_job("u1-smoke", "tensorflow")
    return d / "output", run_job(d, *U1_ARGS)


def test_u1_trains_evaluates_runs_hmc_with_xla_and_writes_every_output(
    u1_tf_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, proc = u1_tf_run
    assert_compiled_with_xla(proc)
    assert "u1_smoke (tensorflow, 1 rank(s))" in proc.stdout
    s = check_outputs(
        out,
        target="tensorflow",
        world_size=1,
        chains=4,
        train_steps=40,
        eval_steps=10,
        hmc_steps=10,
    )
    assert s.l2hmc.plaquette.exact == pytest.approx(0.697774657964, abs=1e-9)  # I1(2)/I0(2)
    assert s.hmc is not None and not s.hmc.tuned and s.hmc.step_size == pytest.approx(0.2)
    assert s.hmc.leapfrog_steps == 5  # τ = 1 / ε = 0.2
    assert len(s.train.step_sizes) == 2 and all(e > 0 for e in s.train.step_sizes)
    # checkpoint_every = 10, the latest 3 kept
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "ckpt-00000020.npz",
        "ckpt-00000030.npz",
        "ckpt-00000040.npz",
    ]
    state = checkpoint(out)
    assert state["chains"].dtype == np.float32 and state["chains"].shape == (4, 2, 4, 4)


def test_su3_fp64_with_xla(tf_job: JobFactory) -> None:
    d = tf_job("su3-smoke", "tensorflow")
    proc = run_job(d, "--compile", "--tensorboard")
    assert_compiled_with_xla(proc)
    assert "su3_smoke (tensorflow, 1 rank(s))" in proc.stdout
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert "--tensorboard" in proc.stderr  # a warning, not a failure
    else:
        assert list((d / "output" / "tensorboard").glob("events.out.tfevents.*"))
    s = check_outputs(
        d / "output",
        target="tensorflow",
        world_size=1,
        chains=2,
        train_steps=10,
        eval_steps=5,
        hmc_steps=5,
    )
    assert s.l2hmc.plaquette.exact is None and s.l2hmc.q2.mean is not None  # clover charge
    state = checkpoint(d / "output")
    assert state["chains"].dtype == np.complex128
    assert state["chains"].shape == (2, 4, 2, 2, 2, 2, 3, 3)


def test_sigterm_then_resume_gives_the_uninterrupted_history(
    tf_job: JobFactory, u1_tf_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    """A run stopped by SIGTERM checkpoints and exits 143; ``--resume`` continues it, and its
    histories (train, eval, hmc) equal the uninterrupted run's, XLA on both."""
    d = tf_job("u1-smoke", "tensorflow")
    straight, _ = u1_tf_run
    rest = stop_with_sigterm(d, "--out", "stopped", *U1_ARGS, after="train 5/40", within_s=300)
    record = RunRecord.model_validate_json((d / "stopped" / "run.json").read_text())
    assert record.status == "stopped"
    latest = sorted((d / "stopped" / "checkpoints").glob("ckpt-*.npz"))[-1]
    stopped_at = int(latest.stem.split("-")[1])
    assert 5 <= stopped_at < 40
    assert f"stopped by signal {int(signal.SIGTERM)} at step {stopped_at}" in rest

    resumed = run_job(d, "--out", "stopped", "--resume", *U1_ARGS)
    assert f"resumed from step {stopped_at}" in resumed.stdout
    assert_compiled_with_xla(resumed)
    s = check_outputs(
        d / "stopped",
        target="tensorflow",
        world_size=1,
        chains=4,
        train_steps=40,
        eval_steps=10,
        hmc_steps=10,
    )
    assert s.train.resumed_from_step == stopped_at
    assert_same_histories(d / "stopped", straight)


def test_carried_runtime_runs_without_the_compiler_dependencies(tf_job: JobFactory) -> None:
    """train.py runs with lark, jinja2, pydantic, torch and l2hmcc itself unimportable, and
    imports none of them."""
    d = tf_job("u1-smoke", "tensorflow")
    blocked = ("lark", "jinja2", "pydantic", "l2hmcc", "torch")
    args = ["--out", "isolated", "--no-compile", "--train-steps", "3", "--eval-steps", "2"]
    proc = run_isolated(d, blocked, *args, "--hmc-steps", "2", "--no-plots")
    assert "LOADED []" in proc.stdout
    assert "compile mode 'eager'" in proc.stdout
    assert (d / "isolated" / "summary.json").is_file()


def test_help_lists_the_options(tf_job: JobFactory) -> None:
    d = tf_job("su3-smoke", "tensorflow")
    proc = subprocess.run(
        [sys.executable, "train.py", "--help"], cwd=d, capture_output=True, text=True, env=job_env()
    )
    assert proc.returncode == 0, proc.stderr
    for option in ("--out DIR", "--resume", "--train-steps", "--compile, --no-compile"):
        assert option in proc.stdout
    assert "su3_smoke: L2HMC for 4D SU(3)" in proc.stdout


def test_single_process_target_refuses_several(tf_job: JobFactory) -> None:
    d = tf_job("u1-smoke", "tensorflow")
    proc = subprocess.run(
        ["./run-local.sh", "--nproc", "2"], cwd=d, env=job_env(), capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "runs one process; compile with --target tensorflow-horovod" in proc.stderr


# ----------------------------------------------------------------------------------------------
# tensorflow-horovod


@pytest.mark.distributed
@pytest.mark.horovod
def test_horovod_two_ranks_with_gloo_and_xla(tf_job: JobFactory) -> None:
    """Two ranks through the generated horovodrun launcher: the gradients computed in the
    XLA train step and all-reduced outside it keep every variable (networks, step sizes,
    optimizer slots) identical on both ranks; the chains differ (own generators)."""
    require("horovod.tensorflow", "build it with scripts/build-horovod.sh (scripts/setup.sh)")
    d = tf_job("u1-smoke", "tensorflow-horovod")
    proc = run_job(d, "--compile", nproc=2)
    assert_compiled_with_xla(proc)
    assert "u1_smoke (tensorflow-horovod, 2 rank(s))" in proc.stdout
    out = d / "output"
    check_outputs(
        out,
        target="tensorflow-horovod",
        world_size=2,
        chains=4,
        train_steps=20,
        eval_steps=10,
        hmc_steps=10,
    )
    record = RunRecord.model_validate_json((out / "run.json").read_text())
    assert (record.launcher, record.dist_backend) == ("horovod", "horovod-gloo")
    assert record.chain_seeds == [7, 7 + 1_000_003]
    assert record.versions["horovod"] is not None
    rank0, rank1 = checkpoint(out, 0), checkpoint(out, 1)
    variables = [k for k in rank0 if k.startswith(("model/", "optimizer/"))]
    assert any(k.startswith("model/vnets.") for k in variables)
    assert any(k.startswith("optimizer/exp_avg/") for k in variables)
    for key in variables:
        assert np.array_equal(rank0[key], rank1[key]), key
    assert not np.array_equal(rank0["chains"], rank1["chains"])
    # and training changed them: the step sizes moved away from the spec's 0.2
    assert not np.allclose(np.exp(rank0["model/log_step_size"]), 0.2)
