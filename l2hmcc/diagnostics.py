"""Diagnostics are data: a code, a severity, a message, labelled spans and a help line.

Every stage reports problems as `Diagnostic` values instead of raising; the driver collects
them, sorts and de-duplicates them (`finalize`), and the CLI renders them rustc-style
(`render_text`) or as JSON (`render_json`). Every code lives in `l2hmcc.codes.CODES` with a
one-line title and the long explanation that ``l2hmcc explain CODE`` prints.
"""

from __future__ import annotations

import difflib
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from l2hmcc.source import Source, Span


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Label:
    """A span with a short message shown next to its carets."""

    span: Span
    message: str = ""


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a spec. ``primary`` is where it is; ``secondary`` labels point at
    related places (the first definition of a duplicate, the other side of a contradiction)."""

    code: str
    severity: Severity
    message: str
    primary: Label
    secondary: tuple[Label, ...] = ()
    help: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str, str]:
        s = self.primary.span
        return (s.file, s.start, s.end, self.code, self.message)


def error(
    code: str,
    message: str,
    span: Span,
    label: str = "",
    *,
    secondary: Iterable[Label] = (),
    help: str | None = None,
) -> Diagnostic:
    """An error diagnostic; the severity of a ``W`` code is a warning."""
    severity = Severity.WARNING if code.startswith("W") else Severity.ERROR
    return Diagnostic(code, severity, message, Label(span, label), tuple(secondary), help)


def finalize(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sort by position, then code, and drop exact duplicates (two passes finding the same
    fact at the same place say it once)."""
    seen: set[tuple[str, Span, str]] = set()
    out = []
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        key = (d.code, d.primary.span, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    """The closest choice to a misspelt ``word`` (case differences first), if any is close."""
    for c in choices:
        if c.lower() == word.lower():
            return c
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def quote_list(choices: Sequence[str]) -> str:
    quoted = [f"`{c}`" for c in choices]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


# ---------------------------------------------------------------------------------------------
# Rendering


def _expand_tabs(text: str) -> str:
    return text.replace("\t", "    ")


def _display_col(line: str, col: int) -> int:
    """0-based display column of a 1-based character column (tabs shown as four spaces)."""
    return len(_expand_tabs(line[: col - 1]))


@dataclass
class _Out:
    """Collects (text, style) segments; styles are rich style names, ignored in plain text."""

    segments: list[tuple[str, str]] = field(default_factory=list)

    def add(self, text: str, style: str = "") -> None:
        self.segments.append((text, style))


_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.NOTE: "bold cyan"}


#: Source lines longer than this are shown as a window around the labels.
_MAX_LINE = 120


def _window(text: str, labels: list[tuple[Label, bool]]) -> tuple[str, int]:
    """The part of a long line worth showing, and how many characters were cut on the left
    (so that label columns can be shifted). Short lines come back whole."""
    if len(text) <= _MAX_LINE:
        return text, 0
    first = min(lab.span.col for lab, _ in labels) - 1
    left = max(0, first - 40)
    cut = text[left : left + _MAX_LINE]
    prefix = "..." if left else ""
    suffix = "..." if left + _MAX_LINE < len(text) else ""
    return prefix + cut + suffix, left - len(prefix)


def _render_one(d: Diagnostic, sources: Mapping[str, Source], out: _Out) -> None:
    sev = _STYLE[d.severity]
    out.add(f"{d.severity.value}[{d.code}]", sev)
    out.add(f": {d.message}\n", "bold")
    labels = [(d.primary, True), *((lab, False) for lab in d.secondary)]
    # Group labels per file; the primary's file first.
    files: list[str] = []
    for lab, _ in labels:
        if lab.span.file not in files:
            files.append(lab.span.file)
    shown_lines = [
        lab.span.line for lab, _ in labels if lab.span.file in sources and lab.span.line > 0
    ]
    width = len(str(max(shown_lines, default=1)))
    pad = " " * width
    for i, file in enumerate(files):
        first = next(lab for lab, _ in labels if lab.span.file == file)
        arrow = "-->" if i == 0 else ":::"
        out.add(f"{pad}{arrow} ", "bold blue")
        out.add(f"{first.span}\n")
        src = sources.get(file)
        if src is None or all(lab.span.line == 0 for lab, _ in labels if lab.span.file == file):
            continue
        out.add(f"{pad} |\n", "bold blue")
        by_line: dict[int, list[tuple[Label, bool]]] = {}
        for lab, primary in labels:
            if lab.span.file == file and lab.span.line > 0:
                by_line.setdefault(lab.span.line, []).append((lab, primary))
        previous = None
        for line_no in sorted(by_line):
            if previous is not None and line_no > previous + 1:
                out.add(f"{'.' * width}\n" if width > 2 else "...\n", "bold blue")
            previous = line_no
            text, shift = _window(src.line_text(line_no), by_line[line_no])
            out.add(f"{line_no:>{width}} | ", "bold blue")
            out.add(_expand_tabs(text) + "\n")
            for lab, primary in sorted(by_line[line_no], key=lambda lp: lp[0].span.col):
                s = lab.span
                start = _display_col(text, s.col - shift)
                end_col = s.end_col - shift if s.end_line == s.line else len(text) + 1
                end_col = min(end_col, len(text) + 1)
                end = max(start + 1, _display_col(text, end_col))
                mark = ("^" if primary else "-") * (end - start)
                out.add(f"{pad} | ", "bold blue")
                style = sev if primary else "bold blue"
                out.add(
                    " " * start + mark + (f" {lab.message}" if lab.message else "") + "\n", style
                )
    if d.help:
        out.add(f"{pad} = ", "bold blue")
        out.add("help", "bold")
        out.add(f": {d.help}\n")
    out.add("\n")


def summary(diagnostics: list[Diagnostic]) -> str:
    n_err = sum(d.severity is Severity.ERROR for d in diagnostics)
    n_warn = sum(d.severity is Severity.WARNING for d in diagnostics)
    parts = []
    if n_err:
        parts.append(f"{n_err} error{'s' * (n_err != 1)}")
    if n_warn:
        parts.append(f"{n_warn} warning{'s' * (n_warn != 1)}")
    return " and ".join(parts)


def render_text(
    diagnostics: Iterable[Diagnostic], sources: Mapping[str, Source], *, color: bool = False
) -> str:
    """rustc-style text. With ``color`` the result carries ANSI escapes (rendered by rich,
    imported only then)."""
    out = _Out()
    for d in diagnostics:
        _render_one(d, sources, out)
    if not color:
        return "".join(text for text, _ in out.segments)
    from rich.console import Console  # lazily: plain output must not pay for rich
    from rich.text import Text

    console = Console(force_terminal=True, color_system="standard", width=10_000, highlight=False)
    text = Text()
    for chunk, style in out.segments:
        text.append(chunk, style=style or None)
    with console.capture() as cap:
        console.print(text, end="", soft_wrap=True)
    return cap.get()


def diagnostic_to_json(d: Diagnostic) -> dict[str, Any]:
    def label(lab: Label) -> dict[str, Any]:
        s = lab.span
        return {
            "file": s.file,
            "line": s.line,
            "col": s.col,
            "end_line": s.end_line,
            "end_col": s.end_col,
            "message": lab.message,
        }

    return {
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        "primary": label(d.primary),
        "secondary": [label(lab) for lab in d.secondary],
        "help": d.help,
    }


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([diagnostic_to_json(d) for d in diagnostics], indent=2, ensure_ascii=False)
