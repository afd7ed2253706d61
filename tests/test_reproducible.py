"""Deterministic compilation: the same spec, target and l2hmcc version give byte-identical job
directories (contents, file names, modes), wherever the spec lies and from whatever working
directory it is compiled; no absolute path or time leaks into a generated file.

Every target × shipped spec (and the examples: a sweep, a composed spec) is compiled twice:
once from the repository root as ``specs/NAME``, once from another working directory through
the absolute path of a copy of the spec's directory elsewhere, under another umask.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from l2hmcc import driver, targets

REPO = Path(__file__).resolve().parents[1]
SPECS = [
    *sorted(f"specs/{p.name}" for p in (REPO / "specs").glob("*.l2h")),
    pytest.param("examples/sweep.l2h", marks=pytest.mark.slow),  # 12 points × 6 targets
    "examples/walkthrough.l2h",
    "examples/family/u1-b6-ddp.l2h",  # a chain of two bases
]


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """relative path → (mode, bytes) of every file and directory under ``root``."""
    out: dict[str, tuple[int, bytes]] = {".": (root.stat().st_mode & 0o7777, b"")}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = (p.stat().st_mode & 0o7777, b"" if p.is_dir() else p.read_bytes())
    return out


def diagnostics_of(o: driver.Outcome) -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in o.diagnostics]


@pytest.mark.parametrize("spec", SPECS)
def test_recompiling_gives_byte_identical_job_directories(
    spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    # a copy of the spec's directory (with the bases it extends) somewhere else
    shutil.copytree((REPO / spec).parent, tmp_path / "copy")
    copy = tmp_path / "copy" / Path(spec).name
    compiled = 0
    for target in targets.TARGETS:
        a, b = tmp_path / "a" / target, tmp_path / "b" / target
        monkeypatch.chdir(REPO)
        first = driver.compile(spec, target, a)
        monkeypatch.chdir(elsewhere)
        old = os.umask(0o077)  # the tree's modes must not depend on the umask
        try:
            second = driver.compile(str(copy), target, b)
        finally:
            os.umask(old)
        assert first.ok == second.ok, (target, first.diagnostics, second.diagnostics)
        if not first.ok:
            # the same verdict, in the same words (only the path differs)
            assert diagnostics_of(first) == [
                (c, m.replace(str(copy), spec)) for c, m in diagnostics_of(second)
            ]
            continue
        compiled += 1
        ta, tb = tree(a), tree(b)
        assert list(ta) == list(tb), target
        for rel in ta:
            assert ta[rel] == tb[rel], (target, rel)
        leaks = re.compile(
            "|".join(
                re.escape(s)
                for s in (str(tmp_path), str(REPO), os.path.expanduser("~"))
                if len(s) > 1
            )
        )
        for rel, (_, data) in ta.items():
            text = data.decode("utf-8", errors="replace")
            assert not leaks.search(text), (target, rel, leaks.search(text))
        # a third compilation over the first (--force) gives the same tree again
        monkeypatch.chdir(REPO)
        assert driver.compile(spec, target, a, force=True).ok
        assert tree(a) == ta
    assert compiled >= 1, spec
