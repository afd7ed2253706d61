"""Helpers shared by the target tests of both frameworks (test_targets*.py) and by the tests
of the other generated scripts (test_pbs.py, test_sweep.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from l2hmcc import driver, ir
from l2hmcc.lower import lower
from l2hmcc.source import Source
from l2hmcc.syntax import parse
from l2hmcc.targets import job

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted(p.name for p in (REPO / "specs").glob("*.l2h"))
SU3 = "lattice { group = SU3  shape = [2, 2, 2, 2]  beta = 6.0 }\n"


@dataclass
class Compiled:
    spec: str
    target: str
    outcome: driver.Outcome
    out: Path

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.outcome.diagnostics if d.is_error]


def compile_every_spec(base: Path, targets: list[str]) -> dict[tuple[str, str], Compiled]:
    """Every shipped spec × ``targets``, compiled from the repository root as ``specs/NAME``
    (generated files name the spec by its file name only, issue 7) into ``base``."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        for spec in SPECS:
            for target in targets:
                d = base / f"{spec}-{target}"
                outcome = driver.compile(f"specs/{spec}", target, d)
                out[spec, target] = Compiled(spec, target, outcome, d)
    return out


def ok(compiled: dict[tuple[str, str], Compiled]) -> list[Compiled]:
    """The combinations that compiled."""
    return [c for c in compiled.values() if not c.codes]


def spec_ir(text: str) -> ir.Spec:
    """The IR of a spec given as text (which must lower without errors)."""
    tree = parse(Source("t.l2h", text)).tree
    assert tree is not None
    r = lower(tree, "t.l2h")
    assert r.spec is not None, r.diagnostics
    return r.spec


def shellcheck(*scripts: Path) -> None:
    """Every script passes ``bash -n`` and shellcheck at style severity."""
    for s in scripts:
        subprocess.run(["bash", "-n", str(s)], check=True)
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed (Debian package `shellcheck`; scripts/setup.sh)")
    r = subprocess.run(
        ["shellcheck", "--shell=bash", "--severity=style", "--format=gcc", *map(str, scripts)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


#: The runtime package directory of each framework, as carried in a job directory.
FRAMEWORK_DIRS = {"pytorch": "pt", "tensorflow": "tf"}


def check_job_layout(c: Compiled, framework: str, modules: tuple[str, ...]) -> None:
    """A compiled job directory: train.py, run-local.sh, job.pbs, spec.l2h, manifest.json (and
    ds_config.json for DeepSpeed), the carried runtime with ``common/`` and this framework's
    ``modules`` and not the other framework's, nothing else; executable scripts; a manifest
    that records every file and the target."""
    files = {p.relative_to(c.out).as_posix() for p in c.out.rglob("*") if p.is_file()}
    expected = {"train.py", "run-local.sh", "job.pbs", "spec.l2h", "manifest.json"}
    if c.target == "pytorch-deepspeed":
        expected.add("ds_config.json")
    assert expected <= files, (c.spec, c.target)
    carried = {f for f in files if f.startswith("l2hmcc_runtime/")}
    for module in (*modules, "common/history.py", "common/driver.py"):
        assert f"l2hmcc_runtime/{module}" in carried, module
    (other,) = set(FRAMEWORK_DIRS.values()) - {FRAMEWORK_DIRS[framework]}
    assert not any(f.startswith(f"l2hmcc_runtime/{other}/") for f in carried)
    assert not any("__pycache__" in f for f in carried)
    assert files - carried - expected == set(), (c.spec, c.target)
    for name in ("run-local.sh", "job.pbs"):
        assert (c.out / name).stat().st_mode & 0o111, name
    manifest = json.loads((c.out / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} == files - {"manifest.json"}
    assert manifest["target"]["name"] == c.target


def check_runtime_copy(c: Compiled, framework: str) -> None:
    """The job's runtime files are byte copies of the package's ``common/`` and framework."""
    package = REPO / "l2hmcc" / "runtime"
    for path, data in job.runtime_files(FRAMEWORK_DIRS[framework]):
        rel = Path(path).relative_to(job.CARRIED_RUNTIME)
        assert (package / rel).read_bytes() == data
        assert (c.out / path).read_bytes() == data


def check_goldens(c: Compiled, golden: Callable[[str, str], None]) -> None:
    """train.py, run-local.sh (and ds_config.json for DeepSpeed) against their goldens."""
    names = ["train.py", "run-local.sh"]
    if c.target == "pytorch-deepspeed":
        names.append("ds_config.json")
    for name in names:
        text = (c.out / name).read_text(encoding="utf-8")
        golden(f"targets/{Path(c.spec).stem}/{c.target}/{name}", text)
