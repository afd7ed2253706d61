"""Helpers shared by the tests that run generated jobs for real (test_targets_jobs*.py):
compiling a shipped spec once per session, running ``./run-local.sh`` as a user would, and
checking what a finished run wrote."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from targets_helpers import REPO

from l2hmcc import driver
from l2hmcc.results import RunRecord, Summary

#: A job directory per (spec, target), compiled once per session.
JobFactory = Callable[[str, str], Path]


def job_factory(base: Path) -> JobFactory:
    """``get(spec, target)``: ``specs/SPEC.l2h`` compiled for ``target`` under ``base``, once."""
    cache: dict[tuple[str, str], Path] = {}

    def get(spec: str, target: str) -> Path:
        if (spec, target) not in cache:
            out = base / f"{spec}-{target}"
            with pytest.MonkeyPatch.context() as mp:
                mp.chdir(REPO)
                outcome = driver.compile(f"specs/{spec}.l2h", target, out)
            assert outcome.ok, outcome.diagnostics
            cache[spec, target] = out
        return cache[spec, target]

    return get


def require(module: str, how: str) -> None:
    """The real library must be installed (scripts/setup.sh does it): fail, never skip; a
    developer without it deselects the test with its marker (``-m "not horovod"``)."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{module} is not importable ({exc}); {how}")


def job_env() -> dict[str, str]:
    """The environment a job runs in: this Python, one thread, unbuffered, no colour."""
    return {
        **os.environ,
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def run_job(
    job_dir: Path,
    *args: str,
    nproc: int | None = None,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``./run-local.sh [--nproc N] ARGS``, which must succeed."""
    cmd = ["./run-local.sh", *(("--nproc", str(nproc)) if nproc else ()), *args]
    proc = subprocess.run(
        cmd,
        cwd=job_dir,
        env={**job_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def run_isolated(
    job_dir: Path, blocked: tuple[str, ...], *args: str
) -> subprocess.CompletedProcess[str]:
    """``python train.py ARGS`` with the modules ``blocked`` unimportable (``import`` raises
    ImportError); the run must succeed, and prints ``LOADED [...]``: those of them it loaded."""
    code = (
        "import runpy, sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # import raises ImportError\n"
        "sys.path.insert(0, '.')\n"
        f"sys.argv = ['train.py', *{args!r}]\n"
        "try:\n"
        "    runpy.run_path('train.py', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc\n"
        "finally:\n"
        "    loaded = sorted(m for m, mod in sys.modules.items() if mod is not None\n"
        f"                    and m.split('.')[0] in {blocked!r})\n"
        "    print('LOADED', loaded)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=job_dir,
        env=job_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def stop_with_sigterm(job_dir: Path, *args: str, after: str, within_s: float) -> str:
    """Run ``./run-local.sh ARGS``, send SIGTERM once a line contains ``after`` (which must come
    within ``within_s`` seconds), and return the rest of the output; the run exits 143."""
    return stop_with_signal(job_dir, *args, after=after, within_s=within_s, sig=signal.SIGTERM)


def stop_with_signal(
    job_dir: Path, *args: str, after: str, within_s: float, sig: signal.Signals
) -> str:
    """``stop_with_sigterm`` with any signal: SIGTERM (and SIGUSR1) make the run checkpoint and
    exit 143; SIGKILL cannot be caught, the process dies where it stands."""
    proc = subprocess.Popen(
        ["./run-local.sh", *args],
        cwd=job_dir,
        env=job_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + within_s
    for line in proc.stdout:
        lines.append(line)
        if after in line:
            proc.send_signal(sig)
            break
        assert time.monotonic() < deadline, "".join(lines)
    rest, _ = proc.communicate(timeout=120)
    expected = -signal.SIGKILL if sig == signal.SIGKILL else 128 + signal.SIGTERM
    assert proc.returncode == expected, "".join(lines) + rest
    return rest


def check_outputs(
    out: Path,
    *,
    target: str,
    world_size: int,
    chains: int,
    train_steps: int,
    eval_steps: int,
    hmc_steps: int,
    plots: bool = True,
) -> Summary:
    """Every output a finished run writes, consistent with its size."""
    summary = Summary.model_validate_json((out / "summary.json").read_text())
    record = RunRecord.model_validate_json((out / "run.json").read_text())
    assert summary.target == record.target == target
    assert summary.world_size == record.world_size == world_size == len(record.hosts)
    assert record.status == "completed" and record.ended_at is not None
    if target.startswith("pytorch"):
        import torch

        assert record.versions["torch"] == torch.__version__
    else:
        assert record.versions["tensorflow"] is not None and "torch" not in record.versions
        assert record.device == "cpu"
    assert summary.train.steps == summary.train.total_steps == train_steps
    assert summary.l2hmc.trajectories == eval_steps and summary.l2hmc.chains == chains * world_size
    assert summary.hmc is not None and summary.hmc.trajectories == hmc_steps
    for s in (summary.l2hmc, summary.hmc):
        assert s.acceptance is not None and 0.0 <= s.acceptance <= 1.0
        assert s.plaquette.mean is not None and -1.0 <= s.plaquette.mean <= 1.0
        assert s.trajectories_per_s is not None and s.trajectories_per_s > 0
    for phase, steps in (("train", train_steps), ("eval", eval_steps), ("hmc", hmc_steps)):
        with np.load(out / "history" / f"{phase}.npz") as h:
            assert h["accept_prob@step"].tolist() == list(range(steps)), phase
            assert h["accept_prob"].shape == (steps, chains * world_size), phase
            assert np.isfinite(h["plaquette"]).all()
    if plots:
        names = {p.name for p in (out / "plots").glob("*.png")}
        for phase in ("train", "eval", "hmc"):
            assert {f"{phase}-acceptance.png", f"{phase}-plaquette.png"} <= names
        assert {"train-loss.png", "eval-charge.png", "hmc-charge.png", "eval-dq.png"} <= names
        assert all((out / "plots" / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)
    leftovers = [p for p in out.rglob("*") if ".tmp" in p.name]
    assert leftovers == [], leftovers  # every write was atomic
    return summary


def assert_same_histories(a: Path, b: Path) -> None:
    """The train, eval and HMC histories of two runs are equal, wall times aside."""
    for phase in ("train", "eval", "hmc"):
        with (
            np.load(a / "history" / f"{phase}.npz") as ha,
            np.load(b / "history" / f"{phase}.npz") as hb,
        ):
            assert sorted(ha.files) == sorted(hb.files)
            for key in ha.files:
                if key != "time_s":
                    assert np.array_equal(ha[key], hb[key]), (phase, key)
