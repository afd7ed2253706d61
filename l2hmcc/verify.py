"""``l2hmcc verify JOBDIR``: is this directory still what its record says, and would today's
compiler write the same?

Two questions, answered separately:

1. *The files*: every file the record lists is recomputed (sha256 and executable bit); an
   edited (E401), missing (E402) or mode-changed (E404) file is reported, and so is a file the
   record does not list (E403: files, symbolic links, special files, empty directories),
   except what a run writes where runs write it (`manifest.is_run_artifact`: ``output/``,
   the runtime's ``__pycache__/``, PBS logs). The directory is untrusted input: only the
   paths its record names are read, never through a symbolic link, only regular files, at
   most `manifest.MAX_FILE_BYTES` each (E409); a record that is not valid is E408.
2. *The compiler*: the directory is compiled again in memory from the spec copies it carries,
   with the recorded overrides, target and sweep point, and compared with the record. Every
   file today's compiler would write differently (E405), add or leave out is reported with a
   short unified diff against the file on disk. A spec copy that no longer compiles is E407.

Findings are `Diagnostic`s (codes E401–E407) pointing at the files (``--> JOBDIR/train.py``);
`Report.to_json` is the machine form. Exit codes: 0 everything matches, 1 differences,
2 not a job directory (E406).
"""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import l2hmcc
from l2hmcc import manifest, record
from l2hmcc.diagnostics import Diagnostic, diagnostic_to_json, error
from l2hmcc.source import Span

DIFF_LINES = 12
"""Lines of unified diff shown per file."""
DIFF_FILES = 10
"""Files shown with a diff; the rest are listed by name."""


@dataclass
class Change:
    path: str
    status: str
    """``changed``, ``added`` (today's compiler writes it, the record has none), ``removed``
    (the record has it, today's compiler does not write it), ``mode``."""
    diff: str = ""


@dataclass
class Report:
    directory: Path
    kind: str = "job"
    record_name: str = ""
    recorded_version: str = ""
    checked: int = 0
    problems: dict[str, list[str]] = field(
        default_factory=lambda: {"edited": [], "missing": [], "extra": [], "mode": []}
    )
    recompile: str = "same"
    """``same``, ``different``, ``failed`` (the spec copy does not compile), ``skipped``."""
    changes: list[Change] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    compile_diagnostics: list[Diagnostic] = field(default_factory=list)
    usage_error: bool = False

    @property
    def ok(self) -> bool:
        return not self.diagnostics and not self.usage_error

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "kind": self.kind,
            "record": self.record_name,
            "ok": self.ok,
            "recorded_version": self.recorded_version,
            "compiler_version": l2hmcc.__version__,
            "files": {"checked": self.checked, **self.problems},
            "recompile": {
                "status": self.recompile,
                "changes": [
                    {"path": c.path, "status": c.status, "diff": c.diff} for c in self.changes
                ],
                "diagnostics": [diagnostic_to_json(d) for d in self.compile_diagnostics],
            },
            "diagnostics": [diagnostic_to_json(d) for d in self.diagnostics],
        }


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _short(sha: str) -> str:
    return sha[:12] + "…"


def verify(directory: str | Path) -> Report:
    root = Path(directory)
    report = Report(root)
    try:
        rec = record.read(root)
    except record.RecordError as e:
        report.usage_error = True
        code = "E408" if e.invalid else "E406"
        report.diagnostics.append(error(code, str(e), Span.whole_file(str(root))))
        return report
    report.kind, report.record_name = rec.kind, rec.record_name
    report.recorded_version = rec.common.l2hmcc_version
    _check_files(rec, report)
    _check_compiler(rec, report)
    return report


def _where(root: Path, rel: str) -> Span:
    return Span.whole_file(str(root / rel))


def _check_files(rec: record.JobRecord, report: Report) -> None:
    root = rec.root
    listed = {f.path for f in rec.files}
    for f in rec.files:
        report.checked += 1
        try:
            data, mode = manifest.read_job_file(root, f.path)
        except manifest.JobFileError as e:
            if e.kind == "missing":
                report.problems["missing"].append(f.path)
                report.diagnostics.append(
                    error(
                        "E402",
                        f"`{f.path}` is missing",
                        _where(root, f.path),
                        help=f"{rec.record_name} lists it (sha256 {_short(f.sha256)})",
                    )
                )
            else:
                report.problems["edited"].append(f.path)
                report.diagnostics.append(
                    error(
                        "E409",
                        f"`{f.path}` {e.what}",
                        _where(root, f.path),
                        help=f"{rec.record_name} lists a regular file here"
                        f" (sha256 {_short(f.sha256)}); verify reads nothing outside the job",
                    )
                )
            continue
        now = _sha(data)
        if now != f.sha256:
            report.problems["edited"].append(f.path)
            report.diagnostics.append(
                error(
                    "E401",
                    f"`{f.path}` was edited after compilation",
                    _where(root, f.path),
                    help=f"recorded sha256 {_short(f.sha256)}, now {_short(now)}",
                )
            )
        executable = bool(mode & 0o100)
        if executable != f.executable:
            report.problems["mode"].append(f.path)
            want = "executable" if f.executable else "not executable"
            report.diagnostics.append(
                error(
                    "E404",
                    f"`{f.path}` should be {want}",
                    _where(root, f.path),
                    help=f"chmod {'+' if f.executable else '-'}x {f.path}",
                )
            )
    roots, log_dirs = manifest.job_roots(rec.common)
    for rel, what in manifest.strangers(root, {*listed, rec.record_name}, roots, log_dirs):
        report.problems["extra"].append(rel)
        report.diagnostics.append(
            error(
                "E403",
                f"`{rel}` is not part of the job ({what})",
                _where(root, rel),
                help=f"{rec.record_name} does not list it; run outputs belong in"
                f" `{manifest.RUN_OUTPUT_DIR}/`",
            )
        )


def _disk(root: Path, rel: str) -> bytes | None:
    """A job file's bytes, or None where it is missing or not a regular file of the job."""
    try:
        return manifest.read_job_file(root, rel)[0]
    except manifest.JobFileError:
        return None


def _text(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def unified(path: str, old: bytes | None, new: bytes | None, limit: int = DIFF_LINES) -> str:
    """A unified diff of two versions of a file, cut to ``limit`` lines."""
    a, b = _text(old), _text(new)
    if a is None or b is None:
        return "(binary files differ)\n"
    lines = list(
        difflib.unified_diff(a, b, fromfile=f"{path} (recorded)", tofile=f"{path} (recompiled)")
    )
    lines = [line if line.endswith("\n") else line + "\n" for line in lines]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more diff lines)\n"]
    return "".join(lines)


def _check_compiler(rec: record.JobRecord, report: Report) -> None:
    root = rec.root
    outcome = record.recompile(rec)
    if not outcome.ok or outcome.bundle is None:
        report.recompile = "failed"
        report.compile_diagnostics = list(outcome.diagnostics)
        errors = [d for d in outcome.diagnostics if d.is_error]
        first = errors[0].message if errors else "no output"
        report.diagnostics.append(
            error(
                "E407",
                f"the spec copy does not compile with l2hmcc {l2hmcc.__version__}: {first}",
                _where(root, rec.common.spec.file),
                help=f"{len(errors)} error{'s' * (len(errors) != 1)}; `l2hmcc check` on the"
                " spec copy shows them",
            )
        )
        return
    recorded: dict[str, tuple[str, bool]] = {f.path: (f.sha256, f.executable) for f in rec.files}
    recorded[rec.record_name] = (_sha(rec.raw), False)
    new = dict(outcome.bundle.items())
    changes: list[Change] = []
    for path in [*recorded, *(p for p in new if p not in recorded)]:
        old_bytes = rec.raw if path == rec.record_name else _disk(root, path)
        if path not in new:
            changes.append(Change(path, "removed", unified(path, old_bytes, None)))
        elif path not in recorded:
            changes.append(Change(path, "added", unified(path, None, new[path].data)))
        elif new[path].sha256 != recorded[path][0]:
            changes.append(Change(path, "changed", unified(path, old_bytes, new[path].data)))
        elif new[path].executable != recorded[path][1]:
            changes.append(Change(path, "mode"))
    report.changes = changes
    if not changes:
        return
    report.recompile = "different"
    if report.recorded_version == l2hmcc.__version__:
        versions = (
            f"l2hmcc {l2hmcc.__version__} wrote this job too: its templates or system facts,"
            f" or the recorded overrides in {rec.record_name}, changed since"
        )
    else:
        versions = (
            f"this job was compiled by l2hmcc {report.recorded_version}; this is"
            f" l2hmcc {l2hmcc.__version__}"
        )
    words = {
        "changed": "would write `{}` differently",
        "added": "would also write `{}`",
        "removed": "would not write `{}`",
        "mode": "would write `{}` with another mode",
    }
    for c in changes:
        report.diagnostics.append(
            error(
                "E405",
                "today's compiler " + words[c.status].format(c.path),
                _where(root, c.path),
                help=versions,
            )
        )


def render_text(report: Report) -> str:
    """Diagnostics, each E405 followed by its (short) diff, then a one-line verdict."""
    from l2hmcc.diagnostics import render_text as render

    out: list[str] = []
    shown = 0
    by_path = {c.path: c for c in report.changes}
    for d in report.diagnostics:
        out.append(render([d], {}))
        if d.code == "E405":
            rel = os.path.relpath(d.primary.span.file, report.directory)
            change = by_path.get(Path(rel).as_posix())
            if change is not None and change.diff and shown < DIFF_FILES:
                shown += 1
                out.append("".join(f"    {line}" for line in change.diff.splitlines(True)))
                out.append("\n")
    if report.compile_diagnostics:
        out.append(render(report.compile_diagnostics, {}))
    out.append(summary(report) + "\n")
    return "".join(out)


def summary(report: Report) -> str:
    where = str(report.directory)
    if report.usage_error:
        return f"error: cannot verify `{where}`"
    p = report.problems
    files = (
        f"{report.checked} files match {report.record_name}"
        if not any(p.values())
        else ", ".join(f"{len(v)} {k}" for k, v in p.items() if v)
    )
    compiled = {
        "same": f"l2hmcc {l2hmcc.__version__} compiles it to the same files",
        "different": f"l2hmcc {l2hmcc.__version__} would write {len(report.changes)}"
        f" file{'s' * (len(report.changes) != 1)} differently",
        "failed": f"the spec copy does not compile with l2hmcc {l2hmcc.__version__}",
        "skipped": "not recompiled",
    }[report.recompile]
    verdict = "ok" if report.ok else "differences"
    return f"{verdict}: {where}: {files}; {compiled}"
