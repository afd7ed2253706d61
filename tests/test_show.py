"""`l2hmcc show`: a job before and after its run, a sweep, JSON, plain text and rich tables.

The run outputs are written as the runtime writes them: JSON that validates against the
published models (`l2hmcc.results`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from l2hmcc import cli, driver, show
from l2hmcc.results import RunRecord, Summary

ROOT = Path(__file__).resolve().parent.parent


def sampler(acceptance: float, tau: float, **extra: Any) -> dict[str, Any]:
    return {
        "trajectories": 10,
        "burn_in": 2,
        "chains": 4,
        "acceptance": acceptance,
        "plaquette": {"mean": 0.67, "err": 0.02, "exact": 0.6978, "exact_finite_volume": 0.6993},
        "q2": {"mean": 0.3, "err": 0.1, "exact": 0.29},
        "tau_int_q": {"value": tau, "err": 0.3},
        "mean_abs_dq": 0.1,
        "trajectories_per_s": 800.0,
        "time_s": 0.05,
        **extra,
    }


def finish(job: Path, *, sha: str) -> None:
    """Write output/summary.json and output/run.json as a finished run does."""
    summary = Summary.model_validate(
        {
            "schema_version": 1,
            "experiment": "u1_smoke",
            "spec_sha256": sha,
            "target": "pytorch",
            "world_size": 2,
            "beta": 2.0,
            "train": {
                "steps": 20,
                "total_steps": 20,
                "chains": 8,
                "time_s": 1.5,
                "resumed_from_step": None,
                "final_loss": 5.0,
                "step_sizes": [0.2, 0.2],
            },
            "l2hmc": sampler(0.93, 0.45),
            "hmc": sampler(0.81, 1.25, step_size=0.2, leapfrog_steps=5, tuned=False),
            "improvement": 1.52,
        }
    )
    run = RunRecord.model_validate(
        {
            "schema_version": 1,
            "experiment": "u1_smoke",
            "spec": "u1-smoke.l2h",
            "spec_sha256": sha,
            "target": "pytorch",
            "l2hmcc_version": "0.1.0",
            "status": "completed",
            "started_at": "2026-01-02T03:04:05+00:00",
            "ended_at": "2026-01-02T03:06:15.500000+00:00",
            "argv": ["train.py"],
            "world_size": 2,
            "hosts": ["x3001", "x3001"],
            "launcher": "torchrun",
            "device": "cpu",
            "dist_backend": "gloo",
            "seed": 7,
            "chain_seeds": [7, 8],
            "resumed_from_step": None,
            "versions": {"python": "3.11.7", "torch": "2.5.1", "deepspeed": None},
        }
    )
    (job / "output").mkdir()
    (job / "output/summary.json").write_text(summary.model_dump_json(indent=2))
    (job / "output/run.json").write_text(run.model_dump_json(indent=2))


@pytest.fixture
def job(tmp_path: Path) -> Path:
    out = tmp_path / "job"
    outcome = driver.compile(
        str(ROOT / "specs/u1-smoke.l2h"), "pytorch", out, overrides=("train.steps=30",)
    )
    assert outcome.ok
    return out


def test_a_job_before_its_run(job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["show", str(job)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"directory    {job} (job)"
    assert lines[1].startswith("spec         u1-smoke.l2h (sha256 ")
    assert "overrides    --set train.steps=30" in lines
    assert "target       pytorch (pytorch, backend none) on local" in lines
    assert "training     30 steps × 4 chains per rank" in lines
    assert "run          not run yet (no output/run.json)" in lines
    assert "--- spec.l2h" in lines and lines[-1] == "}"  # the spec copy follows
    data = json.loads(show.dumps(show.report(job)))
    assert data["run"] is None and data["summary"] is None
    assert data["spec"]["text"] == (ROOT / "specs/u1-smoke.l2h").read_text()


def test_a_finished_job(job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sha = json.loads((job / "manifest.json").read_text())["spec"]["sha256"]
    finish(job, sha=sha)
    assert cli.main(["show", str(job), "--no-spec"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert (
        "run          completed, 2026-01-02T03:04:05+00:00 → 2026-01-02T03:06:15.500000+00:00"
        " (130.5 s)" in lines
    )
    assert "ranks        2 on x3001; cpu, torchrun, gloo" in lines
    assert "seeds        7; chains 7, 8" in lines
    assert "versions     python 3.11.7, torch 2.5.1" in lines
    assert lines[-10].split() == ["l2hmc", "hmc"]
    assert lines[-9].split() == ["acceptance", "0.93", "0.81"]
    assert lines[-5].split() == ["tau_int(Q)", "0.45", "±", "0.3", "1.25", "±", "0.3"]
    assert lines[-2].split() == ["equilibrated", "-", "-"]  # a summary without the check
    assert lines[-1].split() == ["improvement", "1.52"]
    assert "--- spec.l2h" not in out
    assert cli.main(["show", str(job), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run"]["wall_time_s"] == 130.5 and data["summary"]["improvement"] == 1.52
    # rich tables when asked for colour (or on a terminal)
    assert cli.main(["show", str(job), "--color", "always", "--no-spec"]) == 0
    rich = capsys.readouterr().out
    assert "┏━" in rich and "l2hmc" in rich and "\x1b[" in rich


def test_unreadable_outputs_are_said_so(job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (job / "output").mkdir()
    (job / "output/summary.json").write_text('{"schema_version": 1}')
    (job / "output/run.json").write_text("{")
    assert cli.main(["show", str(job), "--no-spec"]) == 0
    out = capsys.readouterr().out
    assert "run          `output/run.json` is not valid JSON: EOF while parsing" in out
    assert (
        "results: `output/summary.json` is not a valid summary: experiment: Field required"
        " (and " in out  # as many more as the layout has required fields
    )


def test_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sw"
    outcome = driver.compile(str(ROOT / "examples/sweep.l2h"), "pytorch", out)
    assert outcome.ok
    first = out / outcome.points[0].name
    finish(first, sha="ab" * 32)
    assert cli.main(["show", str(out), "--no-spec"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"directory    {out} (sweep)"
    assert (
        "sweep        12 points over lattice.beta = 3.0, 4.0, linear(3.0, 5.0);"
        " dynamics.leapfrog = 4, 8; train.lr = 1e-3, 3e-4" in lines
    )
    assert "submission   local: `job local`: the points run one after the other here" in lines
    rows = [line.split() for line in lines if line[:2].strip().isdigit()]
    assert len(rows) == 12
    # index, name, the swept values (beta, leapfrog, lr), state, acceptance
    assert rows[0][:7] == ["0", outcome.points[0].name, "3.0", "4", "1e-3", "finished", "0.93"]
    assert rows[1][5:7] == ["not", "started"]


def test_not_a_job_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["show", str(tmp_path)]) == 2
    assert "is not an l2hmcc job directory" in capsys.readouterr().err


def test_a_sampler_out_of_equilibrium_is_shown(
    job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = json.loads((job / "manifest.json").read_text())["spec"]["sha256"]
    finish(job, sha=sha)
    summary = json.loads((job / "output/summary.json").read_text())
    reason = "drifts from 0.34 to 0.54 between the halves of the 40 kept trajectories (9.1 ≥ 3)"
    summary["l2hmc"]["equilibrated"] = False
    summary["l2hmc"]["equilibrium"] = {
        "observable": "plaquette",
        "kept": 40,
        "drift_z": 9.1,
        "threshold": 3.0,
        "halves": [0.34, 0.54],
        "reason": reason,
    }
    summary["hmc"]["equilibrated"] = True
    summary["improvement"] = None
    summary["improvement_note"] = "L2HMC is not equilibrated"
    Summary.model_validate(summary)
    (job / "output/summary.json").write_text(json.dumps(summary))
    assert cli.main(["show", str(job), "--no-spec"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3].split() == ["equilibrated", "NO", "(drift", "9.1σ)", "yes"]
    assert lines[-2].split() == ["improvement", "-", "(L2HMC", "is", "not", "equilibrated)"]
    assert lines[-1] == f"WARNING: L2HMC is not in equilibrium: {reason}; its figures are not" + (
        " known to be equilibrium values"
    )


# ---------------------------------------------------------------------------------------------
# A job directory is untrusted input: `show` reads its outputs and spec copy as `verify` reads
# a job's files (confined to the directory, no symbolic links, regular files only, 64 MiB),
# and says what is wrong with them instead of hanging, running out of memory or a traceback.

SECRET = "TOP-SECRET-CONTENT"


class Blocked(Exception):
    pass


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail (instead of hanging the suite) when a read blocks, as one of a FIFO would."""

    def expired(signum: int, frame: object) -> None:
        raise Blocked("show blocked")  # not an OSError, which show may catch

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def show_text(job: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The plain report (and the JSON one parses); every case exits 0 with a message."""
    assert cli.main(["show", str(job), "--no-spec"]) == 0
    out, err = capsys.readouterr()
    assert cli.main(["show", str(job), "--format", "json"]) == 0
    json.loads(capsys.readouterr().out)
    assert "bug in l2hmcc" not in out + err and "Traceback" not in out + err
    return out


def _link(path: Path, target: Path | str) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to(target)


def _special(path: Path, make: Callable[[Path], object]) -> None:
    path.unlink(missing_ok=True)
    make(path)


MiB64 = 64 << 20
# (what output/summary.json becomes, the message shown for it)
UNREADABLE: dict[str, tuple[Callable[[Path, Path], object], str]] = {
    "fifo": (lambda f, out: _special(f, os.mkfifo), "is not a regular file"),
    "link-to-dev-zero": (
        lambda f, out: _link(f, "/dev/zero"),
        "is a symbolic link (or lies under one), not a file",
    ),
    "directory": (lambda f, out: _special(f, os.mkdir), "is not a regular file"),
    "huge": (lambda f, out: os.truncate(f, MiB64 + 1), "is larger than 64 MiB"),
    "link-leaving-the-job": (
        lambda f, out: (shutil.copyfile(f, out / "summary.json"), _link(f, out / "summary.json")),
        "is a symbolic link (or lies under one), not a file",
    ),
    "output-dir-leaving-the-job": (
        lambda f, out: (
            shutil.copytree(f.parent, out / "output"),
            shutil.rmtree(f.parent),
            f.parent.symlink_to(out / "output"),
        ),
        "is a symbolic link (or lies under one), not a file",
    ),
    "unterminated": (lambda f, out: f.write_text("{"), "is not valid JSON: EOF while parsing"),
    "deep": (
        lambda f, out: f.write_text("[" * 100_000 + "]" * 100_000),
        "is not valid JSON: recursion limit exceeded",
    ),
    "lone-surrogate": (
        lambda f, out: f.write_text(f.read_text().replace('"u1_smoke"', '"\\ud800"')),
        "is not valid JSON: ",
    ),
    "5000-digit-number": (
        lambda f, out: f.write_text(f.read_text().replace('"beta": 2.0', '"beta": 1' + "0" * 5000)),
        "is not valid JSON: number out of range",
    ),
    "binary": (lambda f, out: f.write_bytes(b"\xff\xfe\x00\x01"), "is not valid JSON: "),
    "hostile-key": (
        lambda f, out: f.write_text(
            json.dumps({**json.loads(f.read_text()), "\x1b[2J" + "k" * 500: 1})
        ),
        "is not a valid summary: \\x1b[2Jkkk",
    ),
}


def show_unreadable(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str, case: str
) -> tuple[str, str]:
    """``show`` of a finished job whose ``output`` is replaced by ``UNREADABLE[case]``: its
    text and the message the case expects."""
    finish(job, sha="ab" * 32)
    outside = tmp_path / "outside"
    outside.mkdir()
    make, message = UNREADABLE[case]
    make(job / output, outside)
    return show_text(job, capsys), message


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_summary(
    case: str,
    job: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    deadline: None,
) -> None:
    out, message = show_unreadable(job, tmp_path, capsys, "output/summary.json", case)
    line = next(x for x in out.splitlines() if x.startswith("results: "))
    assert line.startswith(f"results: `output/summary.json` {message}"), line
    assert len(line) < 400 and "\x1b" not in out  # quoted text is clipped and escaped
    assert "0.93" not in out  # nothing of a summary read through a link


@pytest.mark.parametrize("case", ["fifo", "link-to-dev-zero", "link-leaving-the-job"])
def test_unreadable_run_record(
    case: str,
    job: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    deadline: None,
) -> None:
    out, message = show_unreadable(job, tmp_path, capsys, "output/run.json", case)
    assert f"run          `output/run.json` {message}" in out.splitlines()
    assert "x3001" not in out


@pytest.mark.parametrize("target", ["/dev/zero", "outside", "fifo"])
def test_spec_copy_that_is_not_a_job_file(
    target: str,
    job: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    deadline: None,
) -> None:
    """A linked or special spec copy is not read: the record's normalized text is shown
    (``verify`` reports the copy)."""
    secret = tmp_path / "secret.l2h"
    secret.write_text(SECRET)
    copy = job / "spec.l2h"
    if target == "fifo":
        _special(copy, os.mkfifo)
    else:
        _link(copy, "/dev/zero" if target == "/dev/zero" else secret)
    assert cli.main(["show", str(job)]) == 0
    out = capsys.readouterr().out
    normalized = json.loads((job / "manifest.json").read_text())["spec"]["normalized"]
    assert out.endswith(normalized) and SECRET not in out


def test_sweep_point_leaving_the_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], deadline: None
) -> None:
    """A point directory replaced by a link to a finished run elsewhere is not followed."""
    out = tmp_path / "sw"
    outcome = driver.compile(str(ROOT / "examples/sweep.l2h"), "pytorch", out)
    assert outcome.ok
    first = out / outcome.points[0].name
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(first, elsewhere)
    finish(elsewhere, sha="ab" * 32)
    shutil.rmtree(first)
    first.symlink_to(elsewhere)
    second = out / outcome.points[1].name
    (second / "output").mkdir()
    os.mkfifo(second / "output/run.json")
    rows = {
        line.split()[1]: line
        for line in show_text(out, capsys).splitlines()
        if line[:2].strip().isdigit()
    }
    assert " unreadable " in rows[outcome.points[0].name]
    assert "0.93" not in rows[outcome.points[0].name]
    assert " unreadable " in rows[outcome.points[1].name]
    data = show.report(out)
    assert data["points"][0]["run"] == {
        "error": f"`{outcome.points[0].name}/output/run.json` is a symbolic link (or lies under"
        " one), not a file"
    }


def test_text_from_the_directory_is_neither_markup_nor_terminal_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A description "[/]" is no rich tag (it raised MarkupError), and escape sequences in
    run outputs reach the terminal as text, in plain and in rich output."""
    out = tmp_path / "job"
    outcome = driver.compile(
        str(ROOT / "specs/u1-smoke.l2h"),
        "pytorch",
        out,
        overrides=('experiment.description="[/] [bold]x"',),
    )
    assert outcome.ok
    finish(out, sha="ab" * 32)
    run = json.loads((out / "output/run.json").read_text())
    run["hosts"] = ["\x1b[2Jx3001\x07", "x3001"]
    (out / "output/run.json").write_text(json.dumps(run))
    assert cli.main(["show", str(out), "--no-spec"]) == 0
    plain = capsys.readouterr().out
    assert "experiment   u1_smoke: [/] [bold]x" in plain.splitlines()
    assert "\\x1b[2Jx3001\\x07" in plain and "\x1b" not in plain and "\x07" not in plain
    assert cli.main(["show", str(out), "--no-spec", "--color", "always"]) == 0
    rich, err = capsys.readouterr()
    assert "u1_smoke: [/] [bold]x" in rich and not err
    assert "\x1b[2J" not in rich and "\x07" not in rich
