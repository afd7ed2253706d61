"""The driver: compile writes a complete job; bad input of any kind gives diagnostics only."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l2hmcc import driver, targets
from l2hmcc.bundle import Bundle
from l2hmcc.syntax import parse

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(ROOT.glob("specs/*.l2h"))
EXAMPLES = sorted(ROOT.glob("examples/*.l2h"))


@pytest.mark.parametrize("path", [*SPECS, *EXAMPLES], ids=lambda p: p.name)
def test_shipped_specs_check_clean(path: Path) -> None:
    outcome = driver.check(str(path))
    assert outcome.diagnostics == [] and outcome.spec is not None


def target_of(path: Path) -> str:
    spec = driver.load(str(path)).spec
    assert spec is not None
    backend = spec.distributed.backend
    return "pytorch" if backend == "none" else f"pytorch-{backend}"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_compile_writes_spec_copy_and_manifest(path: Path, tmp_path: Path) -> None:
    target = target_of(path)
    outcome = driver.compile(str(path), target, tmp_path / "job")
    assert outcome.ok, outcome.diagnostics
    job = tmp_path / "job"
    assert (job / "spec.l2h").read_bytes() == path.read_bytes()
    manifest = json.loads((job / "manifest.json").read_text())
    assert manifest["spec"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["target"]["name"] == target
    assert manifest["ir"]["experiment"]["name"] == outcome.spec.experiment.name  # type: ignore[union-attr]
    listed = {f["path"] for f in manifest["files"]}
    assert listed == {p.relative_to(job).as_posix() for p in job.rglob("*") if p.is_file()} - {
        "manifest.json"
    }


def test_default_output_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = driver.compile(str(ROOT / "specs/u1-smoke.l2h"), "pytorch")
    assert outcome.ok and outcome.out_dir == Path("jobs/u1_smoke-pytorch")
    again = driver.compile(str(ROOT / "specs/u1-smoke.l2h"), "pytorch")
    assert [d.code for d in again.diagnostics] == ["E304"]


def test_overrides_that_pin_every_sweep_give_one_job(tmp_path: Path) -> None:
    fixed = driver.compile(
        str(ROOT / "examples/sweep.l2h"),
        "pytorch",
        tmp_path / "j",
        overrides=("lattice.beta=4.0", "dynamics.leapfrog=4", "train.lr=1e-3"),
    )
    assert fixed.ok, fixed.diagnostics
    manifest = json.loads((tmp_path / "j/manifest.json").read_text())
    assert manifest["overrides"] == ["lattice.beta=4.0", "dynamics.leapfrog=4", "train.lr=1e-3"]
    assert manifest["ir"]["sweeps"] == []


def test_a_target_that_adds_files_and_one_that_crashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Emits(targets.PendingTarget):
        def render(self, spec: object, ctx: targets.RenderContext) -> Bundle:
            b = Bundle()
            b.add("train.py", f"# from {ctx.spec_name}\n", executable=True)
            return b

    class Crashes(targets.PendingTarget):
        def render(self, spec: object, ctx: targets.RenderContext) -> Bundle:
            raise RuntimeError("boom")

    monkeypatch.setitem(targets.TARGETS, "pytorch", Emits("pytorch", "pytorch", "none", "t"))
    spec = str(ROOT / "specs/u1-smoke.l2h")
    assert driver.compile(spec, "pytorch", tmp_path / "a").ok
    assert json.loads((tmp_path / "a/manifest.json").read_text())["files"][0] == {
        "path": "train.py",
        "sha256": hashlib.sha256(b"# from u1-smoke.l2h\n").hexdigest(),
        "executable": True,
    }
    monkeypatch.setitem(targets.TARGETS, "pytorch", Crashes("pytorch", "pytorch", "none", "t"))
    outcome = driver.compile(spec, "pytorch", tmp_path / "b")
    assert [d.code for d in outcome.diagnostics] == ["E305"]
    assert not (tmp_path / "b").exists()


# --- robustness: nothing but diagnostics, whatever the input ---------------------------------

TOKENS = [
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "=",
    ",",
    '"',
    "#",
    "\n",
    " ",
    "sweep(",
    "1e999",
    "-0",
    "lattice",
    "job",
    "true",
    "0",
    "1h",
    "00:99",
    "\x00",
    "\xff",
    "é",
    "SU3",
    "[[[[",
    'extends "fuzz.l2h"\n',  # itself: a cycle
    'extends "nope.l2h"\n',
    "extends ",
]
MUTATION = st.tuples(
    st.sampled_from(["insert", "delete", "replace", "duplicate"]),
    st.integers(0, 10**6),
    st.integers(0, 40),
    st.sampled_from(TOKENS),
)


def check_never_raises(data: bytes, target: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.l2h"
        path.write_bytes(data)
        outcome = driver.check(str(path), target=target)
        if outcome.ok:
            assert outcome.spec is not None
        else:
            assert outcome.diagnostics
        formatted = driver.format_file(str(path))
        if formatted.formatted is not None:
            path.write_text(formatted.formatted, encoding="utf-8")
            again = driver.parse_file(str(path))
            assert again.tree == formatted.tree


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SPECS),
    st.lists(MUTATION, min_size=1, max_size=6),
    st.sampled_from([None, "pytorch", "tensorflow", "pytorch-deepspeed"]),
)
def test_mutated_specs_give_only_diagnostics(
    path: Path, mutations: list[tuple[str, int, int, str]], target: str | None
) -> None:
    text = path.read_text(encoding="utf-8")
    for op, pos, length, token in mutations:
        pos %= len(text) + 1
        if op == "insert":
            text = text[:pos] + token + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + length :]
        elif op == "replace":
            text = text[:pos] + token + text[pos + len(token) :]
        else:
            text = text[:pos] + text[pos : pos + length] * 2 + text[pos + length :]
    check_never_raises(text.encode("utf-8", "surrogatepass"), target)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_only_diagnostics(data: bytes) -> None:
    check_never_raises(data, None)


def test_tree_equality_after_format_uses_parse() -> None:
    # format_file's tree is the parse of the original; its output parses to the same tree.
    outcome = driver.format_file(str(ROOT / "examples/walkthrough.l2h"))
    assert outcome.formatted is not None and outcome.tree is not None
    from l2hmcc.source import Source

    assert parse(Source("x", outcome.formatted)).tree == outcome.tree


def test_check_knows_every_target_without_importing_the_generators() -> None:
    """`check --target` reads the target's framework and backend from the system database;
    the registry of generators must agree with it."""
    from l2hmcc import systems

    assert list(systems.TARGETS) == list(targets.TARGETS)
    for name, t in targets.TARGETS.items():
        facts = driver.target_facts(name)
        assert facts is not None and (facts.framework, facts.backend) == (t.framework, t.backend)
    assert driver.target_facts("pytorch-dp") is None
