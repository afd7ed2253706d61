"""Helpers shared by the target tests of both frameworks (test_targets*.py) and by the tests
of the other generated scripts (test_pbs.py, test_sweep.py)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from l2hmcc import driver, ir
from l2hmcc.lower import lower
from l2hmcc.source import Source
from l2hmcc.syntax import parse

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
