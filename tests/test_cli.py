"""The command line: commands, exit codes, output formats, and import hygiene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from l2hmcc import __version__
from l2hmcc.cli import main

ROOT = Path(__file__).resolve().parent.parent
U1 = str(ROOT / "specs/u1-smoke.l2h")
BAD = "lattice { group = U1  shape = [4, 4]  beta = 2.0 }\ndynamics { leapfrogs = 8 }\n"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "l2hmcc", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        cwd=ROOT,
    )


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    p = tmp_path / "bad.l2h"
    p.write_text(BAD)
    return p


def test_version_and_usage_exit_codes() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"l2hmcc {__version__}"
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2
    r = run("compile", U1, "--target", "pytorch-dd")
    assert r.returncode == 2 and "did you mean `pytorch-ddp`" in r.stderr


def test_check_ok_and_errors(bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", U1]) == 0
    assert capsys.readouterr().out == f"ok: {U1}\n"
    assert main(["check", U1, str(bad)]) == 1
    captured = capsys.readouterr()
    assert "error[E102]: unknown key `leapfrogs` in `dynamics`" in captured.err
    assert f"--> {bad}:2:12" in captured.err
    assert "= help: did you mean `leapfrog`?" in captured.err
    assert f"error: `{bad}`: 1 error" in captured.err


def test_plain_output_when_not_a_terminal_or_no_color(bad: Path) -> None:
    assert "\x1b[" not in run("check", str(bad)).stderr  # a pipe: plain
    r = run("check", "--color", "always", str(bad))
    assert "\x1b[" in r.stderr
    assert "\x1b[" not in run("check", "--color", "auto", str(bad), env={"NO_COLOR": "1"}).stderr


def test_json_format(bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--format", "json", str(bad)]) == 1
    [d] = json.loads(capsys.readouterr().out)
    assert d["code"] == "E102" and d["primary"]["line"] == 2


def test_bad_files_never_show_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "bin.l2h").write_bytes(b"\x00\x01\x02")
    (tmp_path / "deep.l2h").write_text("a { b = " + "[" * 50_000 + "]" * 50_000 + " }")
    (tmp_path / "empty.l2h").write_text("")
    r = run(
        "check",
        str(tmp_path / "missing.l2h"),
        str(tmp_path / "bin.l2h"),
        str(tmp_path / "deep.l2h"),
        str(tmp_path / "empty.l2h"),
        str(tmp_path),
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    for code in ("E010", "E011", "E014", "E012"):
        assert f"error[{code}]" in r.stderr


def test_compile_and_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "job"
    assert main(["compile", U1, "--target", "pytorch", "-o", str(out)]) == 0
    assert (out / "manifest.json").is_file()
    assert main(["compile", U1, "--target", "pytorch", "-o", str(out)]) == 1
    assert "E304" in capsys.readouterr().err
    assert (
        main(["compile", U1, "-t", "pytorch", "-o", str(out), "--force", "--set", "train.steps=3"])
        == 0
    )
    data = json.loads((out / "manifest.json").read_text())
    assert data["ir"]["train"]["steps_per_era"] == 3 and data["overrides"] == ["train.steps=3"]


def test_set_errors_point_into_the_override(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", U1, "--set", "train.lr=-1"]) == 1
    err = capsys.readouterr().err
    assert "--> --set[1]:1:10" in err and "train.lr=-1" in err


def test_fmt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "s.l2h"
    p.write_text("lattice{group=U1 shape=[4,4] beta=2.0}  # c\n")
    assert main(["fmt", "--check", str(p)]) == 1
    assert "would reformat" in capsys.readouterr().out
    assert main(["fmt", str(p)]) == 0
    assert p.read_text() == (
        "lattice {\n    group = U1\n    shape = [4, 4]\n    beta = 2.0\n}  # c\n"
    )
    assert main(["fmt", "--check", str(p)]) == 0


def test_explain_targets_and_ir(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "E104"]) == 0
    assert capsys.readouterr().out.startswith("E104: value out of range")
    assert main(["explain", "E1O4"]) == 2
    assert main(["explain"]) == 0
    assert "E201" in capsys.readouterr().out
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for name in (
        "pytorch",
        "pytorch-ddp",
        "pytorch-horovod",
        "pytorch-deepspeed",
        "tensorflow",
        "tensorflow-horovod",
    ):
        assert name in out
    assert main(["ir", U1]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["lattice"]["shape"] == [4, 4] and data["experiment"]["name"] == "u1_smoke"


def test_the_compiler_never_imports_frameworks_or_rich() -> None:
    code = (
        "import sys, tempfile\n"
        "from l2hmcc import cli, driver\n"
        f"assert driver.check({U1!r}).ok\n"
        "with tempfile.TemporaryDirectory() as tmp:\n"
        "    for target in ('pytorch', 'pytorch-deepspeed', 'tensorflow'):\n"
        f"        driver.compile({U1!r}, target, tmp + '/' + target)\n"
        "bad = {'torch', 'tensorflow', 'rich', 'jax'} & set(sys.modules)\n"
        "print(sorted(bad))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert r.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "spec", ["specs/u1-smoke.l2h", "specs/su3.l2h", "examples/family/u1-b6-ddp.l2h"]
)
def test_check_imports_no_jinja_and_no_rich(spec: str) -> None:
    """`check` is the fast path (bench/bench_frontend.py): templates and tables are for
    compile and show. The cluster checks (su3.l2h is a Polaris job) included."""
    code = (
        "import sys\n"
        "from l2hmcc import cli\n"
        f"rc = cli.main(['check', {spec!r}, '--target', 'pytorch-ddp', '--format', 'json'])\n"
        "print(sorted({'jinja2', 'rich'} & set(sys.modules)))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert r.stdout.splitlines()[-1] == "[]"


def test_console_script_entry_point() -> None:
    script = Path(sys.executable).with_name("l2hmcc")
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    r = subprocess.run([str(script), "check", U1], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout == f"ok: {U1}\n"


def test_fmt_diff_and_syntax_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "s.l2h"
    p.write_text("train{steps=1}\n")
    assert main(["fmt", "--check", "--diff", str(p)]) == 1
    out = capsys.readouterr().out
    assert "-train{steps=1}" in out and "+    steps = 1" in out
    assert p.read_text() == "train{steps=1}\n"  # --check never writes
    p.write_text("train { steps = }\n")
    assert main(["fmt", str(p)]) == 1
    assert "E007" in capsys.readouterr().err
    assert p.read_text() == "train { steps = }\n"
