"""A tampering corpus for `l2hmcc verify`: a compiled job changed in one hostile way each.

Every case asserts the exact findings (code, path, message), that verify never reads outside
the job (an outside file's content is never quoted), that it neither hangs nor runs out of
memory on links to devices and FIFOs, and that it changes nothing on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from l2hmcc import cli, driver, verify

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "specs/u1-smoke.l2h"
SECRET = "TOP-SECRET-CONTENT"


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything under ``root``, links not followed: type, mode and content or target."""
    found: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = p.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with p.open("rb") as f:
                    digest = hashlib.sha256(f.read(1 << 20)).hexdigest()
                found[rel] = ("file", st.st_mode, st.st_size, digest)
            else:
                found[rel] = ("other", st.st_mode)
    return found


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pristine") / "job"
    outcome = driver.compile(str(SMOKE), "pytorch", out)
    assert outcome.ok, outcome.diagnostics
    return out


def edit_record(job: Path, change: Callable[[dict[str, object]], None]) -> None:
    record = json.loads((job / "manifest.json").read_text())
    change(record)
    (job / "manifest.json").write_text(json.dumps(record))


def replace_with_link(path: Path, target: Path) -> None:
    shutil.copyfile(path, target)
    path.unlink()
    path.symlink_to(target)


# Each case: (setup(job, outside), [(code, path relative to the job or "", message text)]).
Setup = Callable[[Path, Path], object]
CASES: dict[str, tuple[Setup, list[tuple[str, str, str]]]] = {
    "entry-leaving-the-job": (
        lambda job, out: edit_record(
            job,
            lambda r: r["files"].append(  # type: ignore[attr-defined]
                {
                    "path": "../outside/secret.txt",
                    "sha256": hashlib.sha256(SECRET.encode()).hexdigest(),
                    "executable": False,
                }
            ),
        ),
        [("E408", "", "lists `../outside/secret.txt`, which is not a job file")],
    ),
    "path-no-file-can-have": (
        lambda job, out: edit_record(
            job,
            lambda r: r["files"][0].__setitem__("path", "tr\ud800ain.py"),  # type: ignore[index]
        ),
        [("E408", "", "lists `tr\ud800ain.py`, which is not a job file")],
    ),
    "absolute-spec-file": (
        lambda job, out: edit_record(
            job,
            lambda r: r["spec"].__setitem__("file", str(out / "secret.txt")),  # type: ignore[attr-defined]
        ),
        [("E408", "", "names the spec copy `/")],
    ),
    "spec-copy-linked-to-dev-zero": (
        lambda job, out: ((job / "spec.l2h").unlink(), (job / "spec.l2h").symlink_to("/dev/zero")),
        [
            ("E409", "spec.l2h", "`spec.l2h` is a symbolic link"),
            ("E407", "spec.l2h", "spec.l2h`: is a symbolic link (or lies under one), not a file"),
        ],
    ),
    "spec-copy-is-a-fifo": (
        lambda job, out: ((job / "spec.l2h").unlink(), os.mkfifo(job / "spec.l2h")),
        [
            ("E409", "spec.l2h", "`spec.l2h` is not a regular file"),
            ("E407", "spec.l2h", "spec.l2h`: is not a regular file"),
        ],
    ),
    "record-is-a-fifo": (
        lambda job, out: ((job / "manifest.json").unlink(), os.mkfifo(job / "manifest.json")),
        [("E408", "", "manifest.json` is not a regular file")],
    ),
    "record-linked-outside": (
        lambda job, out: replace_with_link(job / "manifest.json", out / "manifest.json"),
        [("E408", "", "manifest.json` is a symbolic link")],
    ),
    "unknown-target": (
        lambda job, out: edit_record(job, lambda r: r["target"].__setitem__("name", "fortran")),  # type: ignore[attr-defined]
        [("E408", "", "records the target `fortran`, which this l2hmcc (0.1.0) does not know")],
    ),
    "deeply-nested-json": (
        lambda job, out: (job / "manifest.json").write_text("[" * 100_000 + "]" * 100_000),
        [("E408", "", "is not valid JSON: nested too deeply")],
    ),
    "not-written-by-l2hmcc": (
        lambda job, out: edit_record(job, lambda r: r.__setitem__("generated_by", "me")),
        [("E408", "", "was not written by l2hmcc")],
    ),
    "huge-recorded-override": (
        lambda job, out: edit_record(
            job, lambda r: r.__setitem__("overrides", ["train.steps=1" + "0" * 5000])
        ),
        [("E407", "spec.l2h", "is too large for `train.steps`")],
    ),
    "file-linked-to-an-identical-copy-outside": (
        lambda job, out: replace_with_link(job / "train.py", out / "train.py"),
        [("E409", "train.py", "`train.py` is a symbolic link")],
    ),
    "runtime-directory-linked-outside": (
        lambda job, out: (
            shutil.copytree(job / "l2hmcc_runtime", out / "rt"),
            shutil.rmtree(job / "l2hmcc_runtime"),
            (job / "l2hmcc_runtime").symlink_to(out / "rt"),
        ),
        [
            ("E403", "l2hmcc_runtime", "(a symbolic link)"),
            ("E409", "*", "is a symbolic link (or lies under one)"),
        ],
    ),
    "extra-link-to-a-directory": (
        lambda job, out: (job / "data").symlink_to(out),
        [("E403", "data", "`data` is not part of the job (a symbolic link)")],
    ),
    "extra-file-in-runtime-pycache": (
        lambda job, out: (
            (job / "l2hmcc_runtime/__pycache__").mkdir(),
            (job / "l2hmcc_runtime/__pycache__/evil.py").write_text("import os\n"),
            (job / "l2hmcc_runtime/__pycache__/__init__.cpython-311.pyc").write_bytes(b"\0"),
        ),
        [("E403", "l2hmcc_runtime/__pycache__/evil.py", "(a file)")],
    ),
    "pyc-of-no-carried-module": (
        lambda job, out: (
            (job / "l2hmcc_runtime/__pycache__").mkdir(),
            (job / "l2hmcc_runtime/__pycache__/evil.cpython-311.pyc").write_bytes(b"\0"),
        ),
        [("E403", "l2hmcc_runtime/__pycache__/evil.cpython-311.pyc", "(a file)")],
    ),
    "pbs-log-names-inside-the-runtime": (
        lambda job, out: (
            (job / "l2hmcc_runtime/pt/u1.o123").write_text("x"),
            (job / "l2hmcc_runtime/u1.e1").write_text("x"),
        ),
        [
            ("E403", "l2hmcc_runtime/pt/u1.o123", "(a file)"),
            ("E403", "l2hmcc_runtime/u1.e1", "(a file)"),
        ],
    ),
    "output-outside-the-job-top-level": (
        lambda job, out: (
            (job / "l2hmcc_runtime/output").mkdir(),
            (job / "l2hmcc_runtime/output/x.json").write_text("{}"),
        ),
        [("E403", "l2hmcc_runtime/output/x.json", "(a file)")],
    ),
    "empty-directories": (
        lambda job, out: ((job / "empty").mkdir(), (job / "l2hmcc_runtime/pt/nested").mkdir()),
        [
            ("E403", "empty", "(an empty directory)"),
            ("E403", "l2hmcc_runtime/pt/nested", "(an empty directory)"),
        ],
    ),
    "extra-fifo-and-socket-name": (
        lambda job, out: os.mkfifo(job / "pipe"),
        [("E403", "pipe", "(a FIFO, socket or device)")],
    ),
    "file-over-the-size-cap": (
        lambda job, out: os.truncate(job / "train.py", (64 << 20) + 1),
        [("E409", "train.py", "is larger than 64 MiB")],
    ),
    "what-runs-write-where-they-write-it": (
        lambda job, out: (
            (job / "output/history").mkdir(parents=True),
            (job / "output/summary.json").write_text("{}"),
            (job / "output/link").symlink_to(out),
            (job / "u1_smoke.o4242").write_text("log"),
            (job / "u1_smoke.e4242").write_text("log"),
            (job / "hostfile").write_text("x"),
            (job / "l2hmcc_runtime/pt/__pycache__").mkdir(),
            (job / "l2hmcc_runtime/pt/__pycache__/trainer.cpython-311.pyc").write_bytes(b"\0"),
        ),
        [],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_job(
    case: str, pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup, expected = CASES[case]
    job = tmp_path / "job"
    shutil.copytree(pristine, job, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    setup(job, outside)
    before = snapshot(tmp_path)

    report = verify.verify(job)
    found = [
        (
            d.code,
            "" if d.primary.span.file == str(job) else os.path.relpath(d.primary.span.file, job),
            d.message,
        )
        for d in report.diagnostics
    ]
    wildcard = [e for e in expected if e[1] == "*"]
    exact = [e for e in expected if e[1] != "*"]
    for code, rel, text in exact:
        assert any(c == code and (r == rel or rel == "") and text in m for c, r, m in found), (
            code,
            rel,
            text,
            found,
        )
    for c, r, m in found:
        matched = any(c == code and (r == rel or rel == "") and t in m for code, rel, t in exact)
        matched = matched or any(c == code and t in m for code, _, t in wildcard)
        assert matched, f"unexpected finding {c} {r}: {m}"
    if wildcard:
        assert any(c == wildcard[0][0] for c, _, _ in found)
    assert report.ok is (not expected)

    rc, out, err = cli.main(["verify", str(job)]), *capsys.readouterr()
    assert rc == (0 if not expected else 2 if expected[0][0] == "E408" else 1)
    assert SECRET not in out + err and "bug in l2hmcc" not in out + err
    rc = cli.main(["verify", "--format", "json", str(job)])
    json.loads(capsys.readouterr().out)
    assert snapshot(tmp_path) == before  # verify changed nothing, inside or outside the job
