"""Diagnostics: the registry, sorting, and rustc-style and JSON rendering."""

from __future__ import annotations

import json
import re
from pathlib import Path

from l2hmcc.codes import CODES, explain
from l2hmcc.diagnostics import Label, Severity, error, finalize, render_json, render_text, summary
from l2hmcc.source import Source, Span

PACKAGE = Path(__file__).resolve().parent.parent / "l2hmcc"


def test_every_code_used_in_the_compiler_is_registered_and_explained() -> None:
    used = set()
    for path in PACKAGE.rglob("*.py"):
        if "runtime" in path.parts:
            continue
        used |= set(re.findall(r'"([EW]\d{3})"', path.read_text(encoding="utf-8")))
    assert used - set(CODES) == set()
    for code, info in CODES.items():
        assert re.fullmatch(r"[EW]\d{3}", code)
        assert info.title and len(info.explanation) > 40, code


def test_explain_is_case_insensitive() -> None:
    text = explain("e102")
    assert text is not None and text.startswith("E102: unknown key")
    assert explain("E999") is None


def test_warning_codes_are_warnings() -> None:
    span = Source("f", "x").span(0, 1)
    assert error("W001", "m", span).severity is Severity.WARNING
    assert error("E104", "m", span).severity is Severity.ERROR


def test_finalize_sorts_by_position_and_drops_duplicates() -> None:
    src = Source("f", "a = 1\nb = 2\n")
    late = error("E104", "late", src.span(6, 7))
    early = error("E102", "early", src.span(0, 1))
    assert finalize([late, early, late]) == [early, late]


def test_render_text_is_rustc_style() -> None:
    src = Source("spec.l2h", "dynamics {\n    leapfrogs = 8\n}\n")
    d = error(
        "E102",
        "unknown key `leapfrogs` in `dynamics`",
        src.span(15, 24),
        "unknown key",
        secondary=[Label(src.span(0, 8), "in this block")],
        help="did you mean `leapfrog`?",
    )
    text = render_text([d], {"spec.l2h": src})
    assert text.splitlines() == [
        "error[E102]: unknown key `leapfrogs` in `dynamics`",
        " --> spec.l2h:2:5",
        "  |",
        "1 | dynamics {",
        "  | -------- in this block",
        "2 |     leapfrogs = 8",
        "  |     ^^^^^^^^^ unknown key",
        "  = help: did you mean `leapfrog`?",
        "",
    ]
    assert "\x1b[" not in text


def test_colour_output_has_ansi_escapes_and_same_text() -> None:
    src = Source("f", "x = 1\n")
    d = error("E009", "attribute `x` outside a block", src.span(0, 1), "here")
    plain = render_text([d], {"f": src})
    coloured = render_text([d], {"f": src}, color=True)
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_long_lines_are_windowed_around_the_label() -> None:
    line = "a { " + "b = 1 " * 100 + "c = @ }"
    src = Source("f", line)
    pos = line.index("@")
    text = render_text([error("E001", "bad", src.span(pos, pos + 1), "here")], {"f": src})
    shown = text.splitlines()[3]
    assert len(shown) < 140 and "@" in shown
    caret_line = text.splitlines()[4]
    assert caret_line.index("^") == shown.index("@")


def test_file_level_diagnostics_show_no_source_line() -> None:
    d = error("E010", "cannot read `x`", Span.whole_file("x"))
    assert render_text([d], {}).splitlines()[:2] == ["error[E010]: cannot read `x`", " --> x"]


def test_json_rendering() -> None:
    src = Source("f", "x = 1\n")
    d = error("E009", "outside", src.span(0, 1), "here", help="move it")
    [obj] = json.loads(render_json([d]))
    assert obj["code"] == "E009" and obj["severity"] == "error" and obj["help"] == "move it"
    assert obj["primary"] == {
        "file": "f",
        "line": 1,
        "col": 1,
        "end_line": 1,
        "end_col": 2,
        "message": "here",
    }


def test_summary_counts() -> None:
    src = Source("f", "x")
    ds = [error("E001", "a", src.span(0, 1)), error("W001", "b", src.span(0, 1))]
    assert summary(ds) == "1 error and 1 warning"
