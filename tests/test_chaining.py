"""Walltime chaining (``job { continue = N }``): a job stopped at its walltime checkpoints and
submits its follow-on, ``qsub -W depend=afterany:$PBS_JOBID``, which resumes.

The job scripts run under bash with stand-ins for the cluster's commands (``module``/``conda``
functions that record nothing, an ``mpiexec`` that starts the one rank in its place, a ``qsub``
that records its arguments), and real signals: SIGTERM to the job script as PBS sends it at
the walltime, or the script's own timer. The first tests use a stand-in ``train.py`` that
behaves like the runtime (``stopped`` in run.json and exit 143 on SIGTERM); the last runs the
real runtime end to end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from targets_helpers import REPO, shellcheck
from test_pbs import REQUESTS, script

from l2hmcc import driver, pbs
from l2hmcc.results import RunRecord

FUNCTIONS = {
    "BASH_FUNC_module%%": "() { :; }",
    "BASH_FUNC_conda%%": "() { :; }",
}

MPIEXEC = """#!/bin/bash
# stand-in for PALS mpiexec: skip the options, become the one rank
while [[ $# -gt 0 && $1 == -* ]]; do
    case $1 in
        -n|--ppn|--hostfile|--depth|--cpu-bind) shift 2 ;;
        *) shift ;;
    esac
done
exec "$@"
"""

QSUB = """#!/bin/bash
printf '%s|%s\\n' "$PWD" "$*" >> "$STUB_OUT/qsub.log"
echo "$((${PBS_JOBID%%.*} + 1)).pbs"
"""

# Behaves like the runtime: run.json `running`; on SIGTERM/SIGUSR1 `stopped` and exit 143.
FAKE_TRAIN = """#!/bin/bash
printf '%s\\0' "$@" > "$STUB_OUT/python.argv"
env -0 > "$STUB_OUT/python.env"
mkdir -p output
write() { printf '{\\n  "status": "%s"\\n}\\n' "$1" > output/run.json; }
case ${FAKE_MODE:-wait} in
    complete) write completed; exit 0 ;;
    fail) write running; exit 1 ;;
esac
write running
trap 'write stopped; exit 143' TERM USR1
touch "$STUB_OUT/started"
while :; do sleep 0.1; done
"""


def chained_job(tmp_path: Path, *, python: str = FAKE_TRAIN, text: str | None = None) -> Path:
    """A job directory with a chained job.pbs (Polaris, one rank, continue = 2) and the
    stand-ins under ``tmp_path/bin``."""
    job = tmp_path / "job"
    job.mkdir()
    (tmp_path / "stub-out").mkdir()
    if text is None:
        req = replace(REQUESTS["polaris"], nodes=1, ranks_per_node=1, continue_jobs=2)
        text = script(req, "pytorch")
    (job / "job.pbs").write_text(text)
    (job / "train.py").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("mpiexec", MPIEXEC), ("qsub", QSUB), ("python", python)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "nodefile").write_text("x3006c0s0b0n0.hsn.cm.polaris.alcf.anl.gov\n")
    return job


def job_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PBS_ENVIRONMENT": "PBS_BATCH",
        "PBS_O_WORKDIR": str(tmp_path / "job"),
        "PBS_NODEFILE": str(tmp_path / "nodefile"),
        "PBS_JOBID": "101.polaris-pbs-01",
        "STUB_OUT": str(tmp_path / "stub-out"),
        "OMP_NUM_THREADS": "1",
        **FUNCTIONS,
        **extra,
    }


def qsub_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "stub-out" / "qsub.log"
    return log.read_text().splitlines() if log.exists() else []


def python_env(tmp_path: Path) -> dict[str, str]:
    items = (tmp_path / "stub-out" / "python.env").read_bytes().decode().split("\0")[:-1]
    return dict(i.split("=", 1) for i in items)


def python_argv(tmp_path: Path) -> list[str]:
    return (tmp_path / "stub-out" / "python.argv").read_bytes().decode().split("\0")[:-1]


def run_job_pbs(job: Path, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the chained job's ``job.pbs`` under bash, as PBS would, with the stubs of ``env``."""
    return subprocess.run(
        ["bash", str(job / "job.pbs")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def wait_for(path: Path, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def leftover_sleeps(seconds: str) -> list[int]:
    """Processes ``sleep SECONDS`` still alive (the script's timer must not outlive it)."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", seconds.encode()]:
                out.append(int(proc.name))
    return out


def test_the_chained_script_passes_shellcheck(tmp_path: Path) -> None:
    job = chained_job(tmp_path)
    text = (job / "job.pbs").read_text()
    assert "continue = 2" in text and "depend=afterany" in text
    shellcheck(job / "job.pbs")


def test_pbs_sigterm_at_the_walltime_submits_the_follow_on(tmp_path: Path) -> None:
    """PBS signals the job script at the walltime: the rank checkpoints (run.json `stopped`),
    and the script submits its follow-on, held until this job has ended, with --resume."""
    job = chained_job(tmp_path)
    proc = subprocess.Popen(
        ["bash", str(job / "job.pbs")],
        cwd=tmp_path,
        env=job_env(tmp_path, L2HMCC_STOP_AFTER_S="987"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(tmp_path / "stub-out" / "started")
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 143, output
    assert qsub_calls(tmp_path) == [
        f"{job}|-W depend=afterany:101.polaris-pbs-01"
        " -v L2HMCC_RESUME=1,L2HMCC_CONTINUE_LEFT=1 job.pbs"
    ]
    assert "continues as job 102.pbs (1 follow-ons left)" in output
    env = python_env(tmp_path)
    assert (env["L2HMCC_CHAIN_MAX"], env["L2HMCC_CHAIN_LINK"]) == ("2", "0")
    assert python_argv(tmp_path) == ["train.py"]  # the first job starts afresh
    assert leftover_sleeps("987") == []


def test_the_timer_stops_a_follow_on_which_resumes_and_submits_the_next(tmp_path: Path) -> None:
    """The second link (submitted with L2HMCC_RESUME=1, one follow-on left) passes --resume,
    stops itself before the walltime (its timer), and submits the last link."""
    job = chained_job(tmp_path)
    env = job_env(
        tmp_path,
        L2HMCC_RESUME="1",
        L2HMCC_CONTINUE_LEFT="1",
        L2HMCC_STOP_AFTER_S="1",
        PBS_JOBID="102.polaris-pbs-01",
    )
    proc = run_job_pbs(job, tmp_path, env)
    assert proc.returncode == 143, proc.stdout + proc.stderr
    assert python_argv(tmp_path) == ["train.py", "--resume"]
    assert python_env(tmp_path)["L2HMCC_CHAIN_LINK"] == "1"
    assert qsub_calls(tmp_path) == [
        f"{job}|-W depend=afterany:102.polaris-pbs-01"
        " -v L2HMCC_RESUME=1,L2HMCC_CONTINUE_LEFT=0 job.pbs"
    ]


def test_the_last_link_submits_nothing(tmp_path: Path) -> None:
    job = chained_job(tmp_path)
    env = job_env(tmp_path, L2HMCC_RESUME="1", L2HMCC_CONTINUE_LEFT="0", L2HMCC_STOP_AFTER_S="1")
    proc = run_job_pbs(job, tmp_path, env)
    assert proc.returncode == 143
    assert qsub_calls(tmp_path) == []
    assert "no follow-ons left" in proc.stdout
    assert python_env(tmp_path)["L2HMCC_CHAIN_LINK"] == "2"


@pytest.mark.parametrize(("mode", "status", "timer"), [("complete", 0, "988"), ("fail", 1, "989")])
def test_nothing_is_resubmitted_after_training_finished_or_failed(
    tmp_path: Path, mode: str, status: int, timer: str
) -> None:
    # each case its own timer length: `leftover_sleeps` looks at every process on the machine,
    # and the other case may be running beside this one (pytest -n 2) with its timer alive
    job = chained_job(tmp_path)
    env = job_env(tmp_path, FAKE_MODE=mode, L2HMCC_STOP_AFTER_S=timer)
    proc = run_job_pbs(job, tmp_path, env)
    assert proc.returncode == status
    assert qsub_calls(tmp_path) == []
    assert leftover_sleeps(timer) == []


def test_a_job_killed_before_its_checkpoint_is_not_resubmitted(tmp_path: Path) -> None:
    """Exit 143 without `stopped` in run.json (the rank died of the signal before it could
    checkpoint): resubmitting would start over, so nothing is submitted."""
    killed = FAKE_TRAIN.replace("trap 'write stopped; exit 143' TERM USR1\n", "")
    job = chained_job(tmp_path, python=killed)
    env = job_env(tmp_path, L2HMCC_STOP_AFTER_S="1")
    proc = run_job_pbs(job, tmp_path, env)
    assert proc.returncode == 143
    assert qsub_calls(tmp_path) == []


def test_the_planner_stops_the_job_before_its_walltime() -> None:
    assert pbs.stop_after_s(60) == 3600 - 300
    assert pbs.stop_after_s(10) == 600 - 60
    assert pbs.stop_after_s(24 * 60) == 24 * 3600 - 300


# --- the real runtime --------------------------------------------------------------------------

SPEC_JOB = """
job polaris {
    account = "MyProj"
    queue = "capacity"
    nodes = 1
    walltime = 3h
    filesystems = [home, eagle]
    continue = 1
}
"""


def test_chain_end_to_end_with_the_runtime(tmp_path: Path) -> None:
    """u1-smoke as a chained Polaris job, run by its own job.pbs on this machine: SIGTERM in
    training → checkpoint, run.json `stopped` with the chain, the follow-on submitted; the
    follow-on resumes from the checkpoint, completes and submits nothing."""
    spec = tmp_path / "u1.l2h"
    spec.write_text((REPO / "specs/u1-smoke.l2h").read_text() + SPEC_JOB)
    out = tmp_path / "compiled"
    outcome = driver.compile(str(spec), "pytorch", out)
    assert outcome.ok, outcome.diagnostics
    python = f'#!/bin/bash\nexec {sys.executable} "$@"\n'
    job = chained_job(tmp_path, python=python, text=(out / "job.pbs").read_text())
    for f in out.iterdir():
        if f.name != "job.pbs":
            os.rename(f, job / f.name)
    args = ["--device", "cpu", "--train-steps", "200", "--checkpoint-every", "1000"]
    args += ["--eval-steps", "2", "--hmc-steps", "2", "--no-plots", "--log-every", "5"]
    env = job_env(tmp_path, PBS_JOBID="7.polaris-pbs-01", PYTHONUNBUFFERED="1", NO_COLOR="1")
    proc = subprocess.Popen(
        ["bash", str(job / "job.pbs"), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        lines.append(line)
        if "train 10/200" in line:
            proc.send_signal(signal.SIGTERM)  # what PBS does at the walltime
            break
        assert time.monotonic() < deadline, "".join(lines)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, "".join(lines) + rest
    run = RunRecord.model_validate_json((job / "output/run.json").read_bytes())
    assert run.status == "stopped"
    assert run.chain is not None
    assert (run.chain.link, run.chain.max_follow_ons) == (0, 1)
    assert run.chain.job_ids == ["7.polaris-pbs-01"]
    assert qsub_calls(tmp_path) == [
        f"{job}|-W depend=afterany:7.polaris-pbs-01 -v L2HMCC_RESUME=1,L2HMCC_CONTINUE_LEFT=0"
        " job.pbs"
    ]
    checkpoints = sorted((job / "output/checkpoints").glob("ckpt-*"))
    assert checkpoints, "no checkpoint was written on SIGTERM"
    stopped_at = int(checkpoints[-1].stem.split("-")[1])
    assert 10 <= stopped_at < 200

    # the follow-on, as PBS starts it once job 7 has ended (the -v variables set)
    follow = job_env(
        tmp_path,
        PBS_JOBID="8.polaris-pbs-01",
        L2HMCC_RESUME="1",
        L2HMCC_CONTINUE_LEFT="0",
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    done = subprocess.run(
        ["bash", str(job / "job.pbs"), *args],
        cwd=tmp_path,
        env=follow,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resumed from step {stopped_at}" in done.stdout
    run = RunRecord.model_validate_json((job / "output/run.json").read_bytes())
    assert run.status == "completed"
    assert run.resumed_from_step == stopped_at
    assert run.chain is not None and run.chain.link == 1
    assert run.chain.job_ids == ["7.polaris-pbs-01", "8.polaris-pbs-01"]
    summary = json.loads((job / "output/summary.json").read_text())
    assert summary["train"]["steps"] == 200
    assert len(qsub_calls(tmp_path)) == 1  # nothing after the chain's end


def test_a_chained_job_without_a_queue_avoids_one_job_per_user_queues() -> None:
    """Aurora, 1 node for 1h: `debug` would be the default, but it refuses the follow-on; a
    chained job goes to `capacity`. Naming `debug` is E336."""
    req = replace(REQUESTS["aurora"], queue=None, nodes=1, walltime_min=60)
    sha = "0" * 64
    plain = pbs.plan_request(req, target="pytorch-ddp", spec_name="s", spec_sha256=sha)
    assert ("-q", "debug") in plain.directives
    chained = replace(req, continue_jobs=2)
    plan = pbs.plan_request(chained, target="pytorch-ddp", spec_name="s", spec_sha256=sha)
    assert ("-q", "capacity") in plan.directives and plan.chain is not None
    with pytest.raises(pbs.PlanError, match="one job per user"):
        pbs.plan_request(
            replace(chained, queue="debug"), target="pytorch-ddp", spec_name="s", spec_sha256=sha
        )
