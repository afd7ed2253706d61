"""The bad-spec corpus: every file yields exactly the diagnostics its comments announce.

See tests/corpus/README.md for the expectation syntax (mypy style: ``# E: CODE [text]``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from l2hmcc import driver
from l2hmcc.codes import CODES
from l2hmcc.diagnostics import Diagnostic

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.l2h"))
_EXPECT = re.compile(r"#\s*([EW]):\s*([EW]\d{3})\s*([^#]*)")


@dataclass(frozen=True)
class Expected:
    file: str
    line: int
    code: str
    text: str


_EXTENDS = re.compile(r'^extends\s+"([^"]+)"', re.M)


def expectations(path: Path) -> tuple[list[Expected], list[str], str | None]:
    """The expectations of a corpus file and of the base specs it extends (under bases/),
    its overrides and its target."""
    expected: list[Expected] = []
    overrides: list[str] = []
    target = None
    chain = [path]
    while m := _EXTENDS.search(chain[-1].read_text(encoding="utf-8")):
        base = Path(os.path.normpath(chain[-1].parent / m.group(1)))
        if base in chain or not base.is_file():
            break
        chain.append(base)
    for base in chain[1:]:
        for lineno, line in enumerate(base.read_text(encoding="utf-8").splitlines(), start=1):
            for _sev, code, text in _EXPECT.findall(line):
                expected.append(Expected(str(base), lineno, code, text.strip()))
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        file, at = str(path), lineno
        if m := re.match(r"#\s*set:\s*(\S+)", line):
            overrides.append(m.group(1))
            file, at = f"--set[{len(overrides)}]", 1
        elif m := re.match(r"#\s*target:\s*(\S+)", line):
            target = m.group(1)
        for sev, code, text in _EXPECT.findall(line):
            assert code.startswith(sev), f"{path.name}:{lineno}: {sev} with {code}"
            expected.append(Expected(file, at, code, text.strip()))
    return expected, overrides, target


def matches(d: Diagnostic, e: Expected) -> bool:
    span = d.primary.span
    return (
        span.file == e.file
        and span.line == e.line
        and d.code == e.code
        and e.text in f"{d.message}\n{d.help or ''}"
    )


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_file(path: Path) -> None:
    expected, overrides, target = expectations(path)
    assert expected, f"{path.name} announces no diagnostics"
    outcome = driver.check(str(path), tuple(overrides), target)
    found = list(outcome.diagnostics)
    missing = [e for e in expected if not any(matches(d, e) for d in found)]
    unexpected = [d for d in found if not any(matches(d, e) for e in expected)]
    assert not missing and not unexpected, (
        "missing:\n"
        + "\n".join(f"  {e.file}:{e.line}: {e.code} {e.text!r}" for e in missing)
        + "\nunexpected:\n"
        + "\n".join(
            f"  {d.primary.span}: {d.code} {d.message} (help: {d.help})" for d in unexpected
        )
    )


def test_corpus_covers_every_spec_code() -> None:
    """Each code that a spec (rather than the file system or the CLI) can trigger has a
    corpus file."""
    covered = {e.code for p in FILES for e in expectations(p)[0]}
    not_from_specs = {"E010", "E011", "E012", "E013", "E114", "E303", "E304", "E305", "E306"}
    not_from_specs |= {"E018", "E360"}  # special files, `-o`: tests/test_hostile.py
    not_from_specs |= {c for c in CODES if c.startswith("E4")}  # verify: tests/test_verify.py
    # W007 fires for a pair in checks.honour.EAGER_LAYERS, empty while every runtime compiles
    # every group's layers: tests/test_checks.py fills it
    not_from_specs |= {"W007"}
    # E32x-E34x and W32x belong to the cluster checks (issue 5), tested in tests/test_checks_system*.
    mine = {c for c in CODES if not re.fullmatch(r"[EW]3[2-4]\d", c)}
    assert mine - not_from_specs - covered == set()
