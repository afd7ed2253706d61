"""Hostile input and file-system edges: a bounded fuzz run, special files as specs, the exit
status through a closed pipe, and a file-system corpus for `compile -o` (foreign directories,
files, links, FIFOs, ``''``, ``.``, concurrent ``--force``). Each `-o` case asserts the exact
diagnostic and that nothing outside the command's own output changed.

The long fuzz run is scripts/fuzz.py (tests/fuzz_helpers.py is the fuzzer).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz_helpers import Fuzzer
from test_verify_tampering import snapshot

from l2hmcc import cli, driver, source, verify

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "specs/u1-smoke.l2h"
SPEC = SMOKE.read_text()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --- fuzz ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fuzz_bounded(tmp_path: Path) -> None:
    """Mutated specs (numeric extremes, long literals, deep nesting, odd bytes, `extends`),
    `--set` overrides and job records: diagnostics only, never an internal error, a "bug in
    l2hmcc" diagnostic or a hang. About 40 s on one core."""
    fuzzer = Fuzzer(tmp_path, seed=20261207, limit_s=20.0)
    stats = fuzzer.run(2500, budget_s=40.0)
    assert stats.inputs >= 300
    assert {"check", "fmt", "build", "cli", "verify"} <= set(stats.calls)
    assert {"E115", "E014", "E011"} <= set(stats.codes)  # the extremes were reached
    assert not stats.failures, "\n\n".join(
        f"{f.kind} in {f.what}: {f.input[:500]}\n{f.detail[-1500:]}" for f in stats.failures[:5]
    )


# --- specs that are not regular files ------------------------------------------------------------


def write_later(path: Path, data: str, delay: float = 0.1) -> threading.Thread:
    def writer() -> None:
        time.sleep(delay)
        with path.open("w") as f:
            f.write(data)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    return t


def test_a_fifo_spec_is_read_once(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.l2h"
    os.mkfifo(fifo)
    t = write_later(fifo, SPEC)
    outcome = driver.compile(str(fifo), "pytorch", tmp_path / "job")
    t.join(5)
    assert outcome.ok, outcome.diagnostics
    assert (tmp_path / "job/spec.l2h").read_text() == SPEC  # what was read, not an empty copy
    assert verify.verify(tmp_path / "job").ok


def test_a_fifo_base_spec_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "main.l2h").write_text('extends "base.l2h"\ntrain { steps = 30 }\n')
    os.mkfifo(tmp_path / "base.l2h")
    t = write_later(tmp_path / "base.l2h", SPEC)
    outcome = driver.compile(str(tmp_path / "main.l2h"), "pytorch", tmp_path / "job")
    t.join(5)
    assert outcome.ok, outcome.diagnostics
    assert (tmp_path / "job/extends/1-base.l2h").read_text() == SPEC
    assert verify.verify(tmp_path / "job").ok


def test_a_spec_from_a_pipe(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "l2hmcc", "compile", "/dev/stdin", "-t", "pytorch", "-o", "job"],
        input=SPEC,
        text=True,
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "job/spec.l2h").read_text() == SPEC
    assert verify.verify(tmp_path / "job").ok


def test_a_fifo_nobody_writes_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "PIPE_WAIT_S", 0.2)
    os.mkfifo(tmp_path / "silent.l2h")
    outcome = driver.check(str(tmp_path / "silent.l2h"))
    assert [(d.code, d.message) for d in outcome.diagnostics] == [
        ("E018", f"`{tmp_path}/silent.l2h` is a pipe and nothing was written to it within 0.2 s")
    ]


def test_special_files_are_refused(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.l2h"))
    (tmp_path / "loop.l2h").symlink_to(tmp_path / "loop.l2h")
    (tmp_path / "main.l2h").write_text('extends "/dev/zero"\n')
    cases = {
        "/dev/zero": ("E018", "`/dev/zero` is a character device, not a spec file"),
        str(tmp_path / "sock.l2h"): ("E018", "is a socket, not a spec file"),
        str(tmp_path): ("E010", "is a directory, not a spec file"),
        str(tmp_path / "loop.l2h"): ("E010", "cannot read"),
        str(tmp_path / "main.l2h"): ("E016", "`/dev/zero` is a character device"),
    }
    try:
        for path, (code, text) in cases.items():
            found = [(d.code, d.message) for d in driver.check(path).diagnostics]
            assert len(found) == 1 and found[0][0] == code and text in found[0][1], (path, found)
    finally:
        sock.close()


# --- exit status through a closed pipe --------------------------------------------------------------


@pytest.mark.parametrize(("args", "status"), [(["check", "BAD.l2h"], 1), (["explain"], 0)])
def test_exit_status_survives_a_closed_pipe(tmp_path: Path, args: list[str], status: int) -> None:
    (tmp_path / "BAD.l2h").write_text("lattice { group = U7 }\n" * 200)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, sys; time.sleep(0.5); from l2hmcc.cli import run; run()",
            *args,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader went away (`| head -1` after its line)
    proc.stderr.close()
    assert proc.wait(timeout=60) == status


# --- compile -o: a file-system corpus ---------------------------------------------------------------


def make_job(path: Path) -> None:
    outcome = driver.compile(str(SMOKE), "pytorch", path)
    assert outcome.ok, outcome.diagnostics


def foreign(path: Path) -> None:
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")


def empty_record(path: Path) -> None:
    foreign(path)
    (path / "manifest.json").write_text("{}")
    (path / "sweep.json").write_text("{}")


def job_with(extra: Callable[[Path], object]) -> Callable[[Path], None]:
    def setup(path: Path) -> None:
        make_job(path)
        extra(path)

    return setup


def sweep_with_notes(path: Path) -> None:
    spec = path.parent / "sweep.l2h"
    spec.write_text(SPEC.replace("beta = 2.0", "beta = sweep(1.0, 2.0)"))
    outcome = driver.compile(str(spec), "pytorch", path)
    assert outcome.ok, outcome.diagnostics
    (path / "u1_smoke-beta1.0" / "notes.txt").write_text("mine")


# (setup of `-o`'s path, the -o argument, --force, expected code and message)
OUT_CASES: dict[str, tuple[Callable[[Path], object] | None, str, bool, str, str]] = {
    "foreign-dir": (foreign, "out", False, "E304", "`{out}` already exists"),
    "foreign-dir-force": (
        foreign,
        "out",
        True,
        "E304",
        "refusing to replace `{out}`: it is not an l2hmcc job directory"
        " (no manifest.json or sweep.json)",
    ),
    "empty-record-force": (
        empty_record,
        "out",
        True,
        "E304",
        "refusing to replace `{out}`: it is not an l2hmcc job directory (`manifest.json` has"
        " layout version none; this l2hmcc (0.1.0) reads version 2)",
    ),
    "job-with-user-file-force": (
        job_with(lambda p: (p / "notes.txt").write_text("mine")),
        "out",
        True,
        "E304",
        "refusing to replace `{out}`: it holds what its manifest.json does not list:"
        " `notes.txt` (a file)",
    ),
    "job-with-link-force": (
        job_with(lambda p: (p / "data").symlink_to(p.parent / "elsewhere")),
        "out",
        True,
        "E304",
        "does not list: `data` (a symbolic link)",
    ),
    "job-with-file-in-pycache-force": (
        job_with(
            lambda p: (
                (p / "l2hmcc_runtime/__pycache__").mkdir(),
                (p / "l2hmcc_runtime/__pycache__/notes.txt").write_text("mine"),
            )
        ),
        "out",
        True,
        "E304",
        "`l2hmcc_runtime/__pycache__/notes.txt` (a file)",
    ),
    "job-file-replaced-by-link-force": (
        job_with(
            lambda p: (
                (p / "train.py").rename(p.parent / "elsewhere" / "train.py"),
                (p / "train.py").symlink_to(p.parent / "elsewhere" / "train.py"),
            )
        ),
        "out",
        True,
        "E304",
        "`train.py` (not a regular file)",
    ),
    "sweep-with-user-file-force": (
        sweep_with_notes,
        "out",
        True,
        "E304",
        "does not list: `u1_smoke-beta1.0/notes.txt` (a file)",
    ),
    "regular-file": (
        lambda p: p.write_text("x"),
        "out",
        True,
        "E304",
        "`{out}` exists and is not a directory",
    ),
    "link-to-directory": (
        lambda p: p.symlink_to(p.parent / "elsewhere"),
        "out",
        True,
        "E304",
        "`{out}` exists and is not a directory",
    ),
    "fifo": (os.mkfifo, "out", True, "E304", "`{out}` exists and is not a directory"),
    "parent-is-a-file": (
        lambda p: p.write_text("x"),
        "out/job",
        False,
        "E305",
        "cannot create `out`: a file is in the way",
    ),
    "empty-string": (None, "", True, "E360", "`-o ''` names no new directory for the job"),
    "dot": (None, ".", True, "E360", "`-o .` names no new directory for the job"),
    "dot-dot": (None, "..", True, "E360", "`-o ..` names no new directory for the job"),
    "trailing-dot-dot": (None, "x/..", True, "E360", "`-o x/..` names no new directory"),
}


@pytest.mark.parametrize("case", list(OUT_CASES))
def test_compile_out_refused(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    setup, arg, force, code, message = OUT_CASES[case]
    root = tmp_path / "work"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "elsewhere").mkdir()
    if setup is not None:
        setup(root / arg.split("/")[0])
    monkeypatch.chdir(root)
    before = snapshot(tmp_path)
    argv = ["compile", str(SMOKE), "-t", "pytorch", "-o", arg, "--format", "json"]
    rc, out, _err = run_cli(capsys, *([*argv, "--force"] if force else argv))
    found = [(d["code"], d["message"]) for d in json.loads(out)]
    shown = message.format(out=arg, root=root)
    assert rc == 1 and len(found) == 1, found
    assert found[0][0] == code and shown in found[0][1], found
    assert snapshot(tmp_path) == before  # refused: nothing anywhere changed


def test_force_replaces_a_job_with_run_outputs(tmp_path: Path) -> None:
    job = tmp_path / "job"
    make_job(job)
    (job / "output").mkdir()
    (job / "output/summary.json").write_text("{}")
    (job / "u1_smoke.o123").write_text("log")
    (job / "l2hmcc_runtime/__pycache__").mkdir()
    (job / "l2hmcc_runtime/__pycache__/__init__.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "neighbour.txt").write_text("keep")
    before = snapshot(tmp_path)
    outcome = driver.compile(str(SMOKE), "pytorch", job, force=True, overrides=("train.steps=30",))
    assert outcome.ok, outcome.diagnostics
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("job")} == {
        k: v for k, v in before.items() if not k.startswith("job")
    }
    assert not (job / "output").exists() and verify.verify(job).ok


def test_concurrent_force_into_a_new_directory(tmp_path: Path) -> None:
    """Two `compile --force` into the same new directory: both succeed (the later replaces the
    earlier), never "Directory not empty" or a bug; the result verifies."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(4):
        out = tmp_path / f"job{round_}"
        cmd = [sys.executable, "-m", "l2hmcc", "compile", str(SMOKE), "-t", "pytorch"]
        procs = [
            subprocess.Popen(
                [*cmd, "-o", str(out), "--force"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(3)
        ]
        results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
        assert all(rc == 0 for rc, _ in results), results
        assert verify.verify(out).ok
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_concurrent_compiles_without_force(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "job"
    cmd = [sys.executable, "-m", "l2hmcc", "compile", str(SMOKE), "-t", "pytorch", "-o", str(out)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert sorted(rc for rc, _ in results)[0] == 0
    for rc, err in results:
        assert rc == 0 or (rc == 1 and "error[E304]" in err and "already exists" in err), err
    assert verify.verify(out).ok
    shutil.rmtree(out)


def test_lowering_and_sweeps_agree_on_the_most_points() -> None:
    from l2hmcc import lower, sweep

    assert lower.MAX_SWEEP_POINTS == sweep.MAX_POINTS


def test_a_long_bad_list_reports_its_first_errors() -> None:
    from l2hmcc import convert
    from l2hmcc.compose import MemoryReader

    text = "lattice { group = U1  shape = [4, 4]  beta = 2.0 }\n"
    text += "job local { modules = [" + ", ".join(["1"] * 5000) + "] }\n"
    outcome = driver.check("x.l2h", reader=MemoryReader({"x.l2h": text.encode()}, {}))
    assert [d.code for d in outcome.diagnostics] == ["E103"] * convert.MAX_LIST_ERRORS


@pytest.mark.slow
def test_the_long_fuzz_script_runs() -> None:
    r = subprocess.run(
        [sys.executable, "scripts/fuzz.py", "--inputs", "40", "--every", "20", "--seed", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "seed 3: 40 inputs" in r.stdout
    assert "internal errors: 0, 'bug in l2hmcc' diagnostics: 0, hangs: 0" in r.stdout
