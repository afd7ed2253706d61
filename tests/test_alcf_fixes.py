"""The ALCF defects of the 2026-12-07 review, each run the way it would fail on the machine.

Job scripts run under bash with the stand-ins of ``test_pbs`` (``module``, ``conda``,
``mpiexec`` record what they were asked; ``python`` records each rank's argv and environment),
with nodefiles as each system writes them.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from targets_helpers import shellcheck
from test_checks_system import codes, job, run
from test_pbs import PYTHON_STUB, REQUESTS, STUBS, read_env, read_nul, script

from l2hmcc import driver, pbs, sweep, systems, verify
from l2hmcc.pbs import PlanError


def run_with_nodefile(
    text: str, tmp_path: Path, hosts: list[str], *, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    job_dir, out, bin_dir = tmp_path / "job", tmp_path / "stub-out", tmp_path / "bin"
    for d in (job_dir, out, bin_dir):
        d.mkdir()
    (job_dir / "train.py").write_text("raise SystemExit('the stand-in python runs instead')\n")
    (job_dir / "job.pbs").write_text(text)
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("".join(f"{h}\n" for h in hosts))
    (bin_dir / "python").write_text(PYTHON_STUB)
    (bin_dir / "python").chmod(0o755)
    full_env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PBS_ENVIRONMENT": "PBS_BATCH",
        "PBS_O_WORKDIR": str(job_dir),
        "PBS_NODEFILE": str(nodefile),
        "STUB_OUT": str(out),
        **{f"BASH_FUNC_{name}%%": body for name, body in STUBS.items()},
        **(env or {}),
    }
    proc = subprocess.run(
        ["bash", str(job_dir / "job.pbs")],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc, out


# --- Sunspot MASTER_ADDR ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        "x1921c1s2b0n0-hsn0",  # what Sunspot's nodefile holds
        "x1921c1s2b0n0-hsn0.hsn.cm.sunspot.alcf.anl.gov",
        "x1921c1s2b0n0",  # a plain node name still gets its HSN interface
    ],
)
def test_sunspot_master_addr_has_one_hsn0(tmp_path: Path, first: str) -> None:
    text = script(REQUESTS["sunspot"], "pytorch-ddp")
    proc, out = run_with_nodefile(text, tmp_path, [first, "x1921c1s3b0n0-hsn0"])
    assert proc.returncode == 0, proc.stderr
    env = read_env(out / "python.0.env")
    assert env["MASTER_ADDR"] == "x1921c1s2b0n0-hsn0.hsn.cm.sunspot.alcf.anl.gov"


@pytest.mark.parametrize(
    ("system", "first", "expected"),
    [
        (
            "polaris",
            "x3006c0s13b1n0.hsn.cm.polaris.alcf.anl.gov",
            "x3006c0s13b1n0.hsn.cm.polaris.alcf.anl.gov",
        ),
        # Aurora's nodefile names the management interface: the HSN name replaces it
        (
            "aurora",
            "x4102c5s2b0n0.hostmgmt2102.cm.aurora.alcf.anl.gov",
            "x4102c5s2b0n0.hsn.cm.aurora.alcf.anl.gov",
        ),
    ],
)
def test_master_addr_on_the_other_systems(
    tmp_path: Path, system: str, first: str, expected: str
) -> None:
    proc, out = run_with_nodefile(script(REQUESTS[system], "pytorch-ddp"), tmp_path, [first])
    assert proc.returncode == 0, proc.stderr
    assert read_env(out / "python.0.env")["MASTER_ADDR"] == expected


# --- threads per rank --------------------------------------------------------------------------


@pytest.mark.parametrize(("system", "threads"), [("polaris", "8"), ("sunspot", "4")])
def test_job_pbs_sets_one_thread_per_bound_core(tmp_path: Path, system: str, threads: str) -> None:
    """mpiexec leaves OMP_NUM_THREADS unset: the script sets the binding depth (Polaris
    --depth=8; Aurora/Sunspot 4 cores per rank), and keeps a value the environment has."""
    text = script(REQUESTS[system], "pytorch-ddp")
    proc, out = run_with_nodefile(text, tmp_path, ["x1000c0s0b0n0"])
    assert proc.returncode == 0, proc.stderr
    assert read_env(out / "python.0.env")["OMP_NUM_THREADS"] == threads
    assert f'export OMP_NUM_THREADS="${{OMP_NUM_THREADS:-{threads}}}"' in text


def test_job_pbs_keeps_the_users_thread_count(tmp_path: Path) -> None:
    text = script(REQUESTS["polaris"], "pytorch-ddp")
    proc, out = run_with_nodefile(text, tmp_path, ["x1"], env={"OMP_NUM_THREADS": "3"})
    assert proc.returncode == 0, proc.stderr
    assert read_env(out / "python.0.env")["OMP_NUM_THREADS"] == "3"


@pytest.mark.parametrize("target", ["pytorch-horovod", "pytorch-ddp"])
def test_run_local_divides_the_cores_among_the_ranks(tmp_path: Path, target: str) -> None:
    """horovodrun (unlike torchrun) leaves OMP_NUM_THREADS unset: 2 ranks on 2 cores ran 25×
    slower with each rank's thread pool as wide as the machine. run-local.sh sets cores/ranks."""
    spec = tmp_path / "s.l2h"
    spec.write_text(
        "lattice { group = U1  shape = [4, 4]  beta = 2.0 }\n"
        f"distributed {target.split('-')[1]} {{}}\njob local {{ ranks_per_node = 2 }}\n"
    )
    out = tmp_path / "job"
    assert driver.compile(str(spec), target, out).ok
    stub = tmp_path / "python"
    stub.write_text('#!/bin/bash\necho "OMP=${OMP_NUM_THREADS:-unset}"\n')
    stub.chmod(0o755)
    cores = len(os.sched_getaffinity(0))
    base = {"PATH": "/usr/bin:/bin", "PYTHON": str(stub)}
    for nproc, expected in ((2, max(1, cores // 2)), (3, max(1, cores // 3))):
        proc = subprocess.run(
            ["./run-local.sh", "--nproc", str(nproc)],
            cwd=out,
            env=base,
            capture_output=True,
            text=True,
            check=True,
        )
        assert proc.stdout.strip() == f"OMP={expected}"
    given = subprocess.run(
        ["./run-local.sh", "--nproc", "2"],
        cwd=out,
        env={**base, "OMP_NUM_THREADS": "5"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert given.stdout.strip() == "OMP=5"
    shellcheck(out / "run-local.sh")


# --- DeepSpeed's launcher on the Intel systems ------------------------------------------------


@pytest.mark.parametrize("system", ["aurora", "sunspot"])
def test_deepspeed_launcher_is_refused_where_oneccl_needs_mpiexec(system: str) -> None:
    req = replace(REQUESTS[system], launcher="deepspeed")
    with pytest.raises(PlanError, match="pdsh"):
        pbs.plan_request(req, target="pytorch-deepspeed", spec_name="s.l2h", spec_sha256="0" * 64)
    fs = "home, flare" if system == "aurora" else "home, tegu"
    queue = "debug" if system == "aurora" else "workq"
    body = f'account = "p"  queue = {queue}  walltime = 30m  filesystems = [{fs}]'
    text = job(system, body, "deepspeed").replace(
        "distributed deepspeed {}", "distributed deepspeed { launcher = deepspeed }"
    )
    found = run(text, "pytorch-deepspeed")
    assert codes(found) == ["E335"]
    assert "launcher = mpiexec" in (found[0].help or "")
    # mpiexec (the default) starts the ranks with the oneCCL settings for PALS
    plan = pbs.plan_request(
        REQUESTS[system], target="pytorch-deepspeed", spec_name="s.l2h", spec_sha256="0" * 64
    )
    assert plan.launch.kind == "mpiexec"
    assert ("CCL_PROCESS_LAUNCHER", "pmix") in {(e.name, e.value) for e in plan.env}


def test_deepspeed_launcher_still_works_on_polaris() -> None:
    req = replace(REQUESTS["polaris"], launcher="deepspeed")
    plan = pbs.plan_request(req, target="pytorch-deepspeed", spec_name="s", spec_sha256="0" * 64)
    assert plan.launch.kind == "deepspeed"


# --- stale facts -------------------------------------------------------------------------------


def test_daos_asks_for_the_filesystem_only() -> None:
    req = replace(REQUESTS["aurora"], filesystems=("home", "flare", "daos_user_fs"))
    text = script(req, "pytorch-ddp")
    assert "#PBS -l filesystems=home:flare:daos_user_fs\n" in text
    assert "daos=" not in text


def test_polaris_horovod_says_what_to_do_when_the_module_is_gone() -> None:
    body = 'account = "p"  queue = debug  walltime = 30m  filesystems = [home, eagle]'
    found = run(job("polaris", body, "horovod"), "pytorch-horovod")
    assert codes(found) == ["W327"]
    assert "--system-site-packages" in (found[0].help or "")
    assert "pytorch-ddp" in (found[0].help or "")
    pinned = run(
        job("polaris", body + '  modules = ["conda/2025-09-25"]', "horovod"), "pytorch-horovod"
    )
    assert codes(pinned) == ["E333"]
    assert "announced for removal" in (pinned[0].help or "")


def test_aurora_binding_leaves_the_oneccl_worker_cores() -> None:
    aurora = systems.AURORA
    for ppn in (1, 2, 6, 12):
        cores = {c for rank in systems.cpu_bind_list(aurora, ppn) for c in rank}
        assert not cores & {42, 43, 44, 45, 46, 47, 94, 95, 96, 97, 98, 99}
        assert not cores & {0, 52}


# --- sweeps into queues that hold one job per user ---------------------------------------------

SWEEP = """experiment oneq {{ seed = 1 }}
lattice {{ group = U1  shape = [4, 4]  beta = sweep(2.0, 3.0, 4.0) }}
distributed ddp {{}}
job {system} {{
    account = "MyProj"
    queue = "{queue}"
    nodes = {nodes}
    walltime = 30m
    filesystems = [{fs}]
}}
"""


def _one_job_sweep(tmp_path: Path, system: str = "aurora", queue: str = "debug") -> Path:
    fs = {"aurora": "home, flare", "polaris": "home, eagle"}[system]
    nodes = {"debug": 1, "debug-scaling": 2}[queue]
    spec = tmp_path / "s.l2h"
    spec.write_text(SWEEP.format(system=system, queue=queue, nodes=nodes, fs=fs))
    out = tmp_path / "sw"
    outcome = driver.compile(str(spec), "pytorch-ddp", out)
    assert outcome.ok, outcome.diagnostics
    return out


@pytest.mark.parametrize(
    ("system", "queue"),
    [("aurora", "debug"), ("aurora", "debug-scaling"), ("polaris", "debug-scaling")],
)
def test_one_job_per_user_queue_runs_the_points_in_one_job(
    tmp_path: Path, system: str, queue: str
) -> None:
    """A second qsub into these queues is refused (even held with -W depend), so the sweep is
    one job that runs the points one after another, which the scripts' headers say."""
    out = _one_job_sweep(tmp_path, system, queue)
    record = json.loads((out / "sweep.json").read_text())
    assert record["submission"]["mode"] == "sequence"
    assert "holds one job per user" in record["submission"]["reason"]
    seq = (out / "sequence.pbs").read_text()
    first = (out / record["points"][0]["name"] / "job.pbs").read_text()
    lines = [x for x in seq.splitlines() if x.startswith("#PBS ")]
    point_lines = [x for x in first.splitlines() if x.startswith("#PBS ")]
    # three 30-minute points in a 1-hour queue: the walltime is the queue's
    assert "#PBS -l walltime=01:00:00" in lines
    assert [x for x in lines if "walltime" not in x] == [
        x for x in point_lines if "walltime" not in x
    ]
    assert "over the queue's 60" in seq
    submit = (out / "submit-all.sh").read_text()
    assert "holds one job per user" in submit.split("set -euo")[0]
    assert not (out / "array.pbs").exists()
    shellcheck(out / "sequence.pbs", out / "submit-all.sh")
    assert verify.verify(out).ok  # sequence.pbs is part of the sweep's record


def _stub_qsub(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir = tmp_path / "qbin"
    bin_dir.mkdir()
    log = tmp_path / "qsub.log"
    qsub = bin_dir / "qsub"
    qsub.write_text(f'#!/bin/bash\necho "$PWD $*" >> {log}\necho "$RANDOM.pbs"\n')
    qsub.chmod(0o755)
    return bin_dir, log


def _point_status(out: Path, name: str, status: str) -> None:
    (out / name / "output").mkdir(parents=True, exist_ok=True)
    (out / name / "output" / "run.json").write_text(json.dumps({"status": status}, indent=2))


def test_sequence_job_skips_finished_points_and_resumes_the_others(tmp_path: Path) -> None:
    out = _one_job_sweep(tmp_path)
    names = [p["name"] for p in json.loads((out / "sweep.json").read_text())["points"]]
    for name in names:  # stand-ins for the points' job scripts
        (out / name / "job.pbs").write_text('#!/bin/bash\necho "$PWD $PBS_O_WORKDIR $*" > ran\n')
    _point_status(out, names[0], "completed")
    _point_status(out, names[1], "stopped")
    env = {**os.environ, "PBS_ENVIRONMENT": "PBS_BATCH", "PBS_O_WORKDIR": str(out)}
    proc = subprocess.run(
        ["bash", str(out / "sequence.pbs")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert not (out / names[0] / "ran").exists()
    assert (out / names[1] / "ran").read_text() == f"{out / names[1]} {out / names[1]} --resume\n"
    assert (out / names[2] / "ran").read_text() == f"{out / names[2]} {out / names[2]} \n"

    bin_dir, log = _stub_qsub(tmp_path)
    qenv = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["./submit-all.sh"], cwd=out, env=qenv, check=True)
    assert log.read_text().splitlines() == [f"{out} sequence.pbs"]  # one job, not three
    for name in names:
        _point_status(out, name, "completed")
    done = subprocess.run(
        ["./submit-all.sh", "--unfinished"], cwd=out, env=qenv, capture_output=True, text=True
    )
    assert "nothing to submit" in done.stdout
    assert len(log.read_text().splitlines()) == 1


def test_unfinished_resubmits_only_what_did_not_finish_with_resume(tmp_path: Path) -> None:
    """A job-array sweep (Polaris prod): --unfinished submits each unfinished point's job.pbs
    with L2HMCC_RESUME=1 (job.pbs then passes --resume), the finished ones not at all."""
    spec = tmp_path / "s.l2h"
    spec.write_text(SWEEP.format(system="polaris", queue="prod", nodes=10, fs="home, eagle"))
    out = tmp_path / "sw"
    assert driver.compile(str(spec), "pytorch-ddp", out).ok
    names = [p["name"] for p in json.loads((out / "sweep.json").read_text())["points"]]
    _point_status(out, names[0], "completed")
    _point_status(out, names[1], "failed")
    bin_dir, log = _stub_qsub(tmp_path)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["./submit-all.sh"], cwd=out, env=env, check=True)
    assert log.read_text().splitlines() == [f"{out} array.pbs"]
    log.unlink()
    subprocess.run(["./submit-all.sh", "--unfinished"], cwd=out, env=env, check=True)
    assert log.read_text().splitlines() == [
        f"{out / names[1]} -v L2HMCC_RESUME=1 job.pbs",
        f"{out / names[2]} -v L2HMCC_RESUME=1 job.pbs",
    ]
    shellcheck(out / "submit-all.sh")


def test_job_pbs_resumes_when_submitted_with_l2hmcc_resume(tmp_path: Path) -> None:
    text = script(REQUESTS["polaris"], "pytorch-ddp")
    proc, out = run_with_nodefile(text, tmp_path, ["x1"], env={"L2HMCC_RESUME": "1"})
    assert proc.returncode == 0, proc.stderr
    assert read_nul(out / "python.0.argv") == ["train.py", "--resume"]


def test_points_with_different_resources_go_one_at_a_time() -> None:
    a = (("-q", "debug"), ("-l", "select=1"), ("-l", "walltime=00:30:00"))
    b = (("-q", "debug"), ("-l", "select=2"), ("-l", "walltime=00:30:00"))
    plan = sweep.plan_submission("aurora", [a, b])
    assert plan.mode == "scripts" and plan.one_at_a_time
    same = sweep.plan_submission("aurora", [a, a])
    assert same.mode == "sequence"
    assert ("-l", "walltime=01:00:00") in same.directives
