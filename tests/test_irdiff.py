"""`l2hmcc diff`: golden outputs on the corpus of spec pairs under tests/corpus-diff/, the
comparison rules, job directories as sides, and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from l2hmcc import cli, driver, irdiff

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "corpus-diff"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("case", CASES)
def test_golden(
    case: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(CORPUS / case)
    outputs = {}
    for fmt in ("text", "json"):
        rc, out, err = run(["diff", "a.l2h", "b.l2h", "--format", fmt], capsys)
        assert err == "" and rc == (
            0 if out.endswith(("no differences\n", '"changes": []\n}\n')) else 1
        )
        outputs[fmt] = out
    json.loads(outputs["json"])
    for fmt, name in (("text", "expected.txt"), ("json", "expected.json")):
        path = CORPUS / case / name
        if request.config.getoption("--update-goldens"):
            path.write_text(outputs[fmt], encoding="utf-8")
            continue
        assert path.is_file(), f"missing golden {path}; run pytest --update-goldens and review"
        assert outputs[fmt] == path.read_text(encoding="utf-8"), (
            f"{path} differs; run pytest --update-goldens and review the diff"
        )


def test_the_corpus_covers_the_kinds_of_change() -> None:
    seen: set[str] = set()
    for case in CASES:
        data = json.loads((CORPUS / case / "expected.json").read_text())
        seen |= {c["status"] for c in data["changes"]}
        if data["same"]:
            seen.add("same")
        for c in data["changes"]:
            for key in ("old_location", "new_location"):
                loc = c[key]
                if loc is not None and loc["file"] == "base.l2h":
                    seen.add("located in a base spec")
                if loc is None:
                    seen.add("default")
            if isinstance(c["old"], dict) and isinstance(c["new"], dict):
                seen.add("variant")
    assert seen >= {"changed", "added", "removed", "same", "default", "variant"}
    assert "located in a base spec" in seen


def test_compare_rules() -> None:
    a = {"x": 1, "l": [1, 2], "u": {"kind": "p", "v": 1}, "o": {"k": 1.0, "d": {"A": "1"}}}
    b = {"x": 1, "l": [1, 2, 3], "u": {"kind": "q", "w": 1}, "o": {"k": 2.0, "d": {}}, "n": 0}
    assert irdiff.compare(a, b) == [
        ("l", [1, 2], [1, 2, 3]),  # lists compare whole
        ("u", {"kind": "p", "v": 1}, {"kind": "q", "w": 1}),  # another variant: one change
        ("o.k", 1.0, 2.0),
        ("o.d.A", "1", irdiff.ABSENT),
        ("n", irdiff.ABSENT, 0),
    ]
    assert irdiff.compare({"b": True}, {"b": 1}) == [("b", True, 1)]  # types count
    assert irdiff.compare(a, a) == []


def test_job_directories_and_a_spec_against_its_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ROOT / "specs/u1-smoke.l2h"
    a = driver.compile(str(spec), "pytorch", tmp_path / "a")
    b = driver.compile(str(spec), "pytorch-ddp", tmp_path / "b", overrides=("train.steps=40",))
    assert a.ok and b.ok
    rc, out, _ = run(["diff", str(tmp_path / "a"), str(tmp_path / "b")], capsys)
    lines = out.splitlines()
    assert rc == 1 and lines[2] == '(target): "pytorch" → "pytorch-ddp"'
    assert "train.steps_per_era: 20 → 40" in lines
    at = lines[lines.index("train.steps_per_era: 20 → 40") + 1]
    # the job's own spec copy on one side, the --set override on the other
    assert at == f"    {tmp_path}/a/spec.l2h:30:13 → --set[1]:1:13"
    rc, out, _ = run(["diff", str(spec), str(tmp_path / "a")], capsys)
    assert rc == 0 and out.endswith("no differences\n")


def test_errors_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.l2h"
    bad.write_text("lattice { group = U7 }\n")
    rc, out, err = run(["diff", str(bad), str(ROOT / "specs/u1.l2h")], capsys)
    assert rc == 2 and "error[E105]" in err and out == ""
    sweep = tmp_path / "sweep"
    assert driver.compile(str(ROOT / "examples/sweep.l2h"), "pytorch", sweep).ok
    rc, _, err = run(["diff", str(sweep), str(ROOT / "specs/u1.l2h")], capsys)
    assert rc == 2 and "is a sweep directory" in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["diff", "a", "b", "--target", "pytorch-dp"])
    assert exc.value.code == 2 and "did you mean `pytorch-ddp`" in capsys.readouterr().err
