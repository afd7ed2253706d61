"""Helpers for the tests that dry-run generated PyTorch jobs on a fake device
(``l2hmcc/runtime/pt/dryrun.py``): compile jobs, then run many dry runs in one process per
device kind (the fake CUDA and XPU libraries cannot share a process, and a process per job
would spend its time importing torch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from targets_helpers import REPO

from l2hmcc import driver

#: One dry-run process: load the fake device library before torch, then dry-run each job
#: directory given (``train.py``'s configs, read with runpy) and print one JSON line per job.
#: ``plant`` (optional) is Python run first, with ``Dynamics`` and ``torch`` in scope, that
#: defines ``PLANTS``: job directory name -> a context manager factory (a planted mistake).
RUNNER = r"""
import contextlib, ctypes, json, os, runpy, sys, time
lib, kind, plant, jobs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
if lib:
    ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    os.environ["L2HMCC_FAKE_DEVICE_SHIM"] = kind
import torch
torch.set_num_threads(1)
sys.path.insert(0, jobs[0])
from l2hmcc_runtime.pt import dryrun
from l2hmcc_runtime.pt.dynamics import Dynamics
PLANTS = {}
if plant:
    exec(plant)
measured = {}  # the phases run the single-rank path whatever the target: once per sampler
for job in jobs:
    g = runpy.run_path(os.path.join(job, "train.py"), run_name="dry_run_test")
    names = ("experiment", "lattice", "beta", "dynamics", "network", "loss", "train",
             "evaluate", "hmc")
    kw = {n: g[n.upper()] for n in names}
    name = os.path.basename(job)
    key = repr(sorted((n, v) for n, v in kw.items() if n != "experiment")) + name * (name in PLANTS)
    cpu0 = time.process_time()
    try:
        if key in measured:
            report = dryrun.for_target(measured[key], kw["experiment"].target, g["JOB_DIR"])
        else:
            with PLANTS.get(name, contextlib.nullcontext)():
                report = measured[key] = dryrun.dry_run(kind=kind, job_dir=g["JOB_DIR"], **kw)
    except dryrun.DeviceMistake as exc:
        out = {"job": job, "mistake": exc.what, "place": exc.place}
    else:
        out = {"job": job, "report": report.as_dict(), "text": report.format()}
    out["cpu_s"] = round(time.process_time() - cpu0, 2)
    print("DRYRUN " + json.dumps(out), flush=True)
"""


def compile_job(base: Path, spec: str, target: str, overrides: tuple[str, ...] = ()) -> Path:
    """``specs/SPEC.l2h`` compiled for ``target`` with ``--set`` overrides, under ``base``."""
    tag = "-".join(o.replace("=", "_").replace(".", "_") for o in overrides)
    out = base / "-".join(filter(None, (spec, target, tag))).replace(",", "_")[:120]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        outcome = driver.compile(f"specs/{spec}.l2h", target, out, overrides=overrides, force=True)
    assert outcome.ok, outcome.diagnostics
    return out


def start_dry_runs(kind: str, jobs: list[Path], *, plant: str = "") -> subprocess.Popen[str]:
    """A process that dry-runs every job on a fake ``kind`` device (``collect`` its results);
    CUDA and XPU processes can run side by side."""
    from l2hmcc.runtime.pt import dryrun

    lib = "" if dryrun.device_built(kind) else str(dryrun.shim_library(kind))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop(dryrun.SHIM_ENV, None)
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, lib, kind, plant, *map(str, jobs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def collect(proc: subprocess.Popen[str], timeout: float = 900) -> dict[str, dict[str, Any]]:
    """The results of ``start_dry_runs``, by job directory."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-4000:]
    lines = [ln[len("DRYRUN ") :] for ln in out.splitlines() if ln.startswith("DRYRUN ")]
    results = [json.loads(ln) for ln in lines]
    return {r["job"]: r for r in results}


def dry_runs(
    kind: str, jobs: list[Path], *, plant: str = "", timeout: float = 900
) -> list[dict[str, Any]]:
    """The dry run of every job on a fake ``kind`` device, in one process."""
    found = collect(start_dry_runs(kind, jobs, plant=plant), timeout)
    return [found[str(j)] for j in jobs]
