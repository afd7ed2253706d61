"""Parsing: values, spans, comments, and friendly syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from l2hmcc import syntax
from l2hmcc.source import Source
from l2hmcc.syntax import (
    Attribute,
    Block,
    Bool,
    Call,
    Duration,
    Ident,
    ListValue,
    Number,
    String,
    parse,
    parse_value,
)


def one_value(text: str) -> syntax.Value:
    result = parse(Source("t", f"b {{ k = {text} }}"))
    assert result.tree is not None, result.diagnostics
    [block] = result.tree.items
    assert isinstance(block, Block)
    [attr] = block.items
    assert isinstance(attr, Attribute)
    return attr.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8", Number(None, "8", 8)),  # type: ignore[arg-type]
        ("-1", Number(None, "-1", -1)),  # type: ignore[arg-type]
        ("0.1", Number(None, "0.1", 0.1)),  # type: ignore[arg-type]
        ("1e-3", Number(None, "1e-3", 1e-3)),  # type: ignore[arg-type]
        (".5", Number(None, ".5", 0.5)),  # type: ignore[arg-type]
        ('"a \\"q\\" \\\\ #"', String(None, '"a \\"q\\" \\\\ #"', 'a "q" \\ #')),  # type: ignore[arg-type]
        ("true", Bool(None, True)),  # type: ignore[arg-type]
        ("false", Bool(None, False)),  # type: ignore[arg-type]
        ("true_ish", Ident(None, "true_ish")),  # type: ignore[arg-type]
        ("debug-scaling", Ident(None, "debug-scaling")),  # type: ignore[arg-type]
        ("1h30m", Duration(None, "1h30m")),  # type: ignore[arg-type]
        ("45s", Duration(None, "45s")),  # type: ignore[arg-type]
        ("01:30:00", Duration(None, "01:30:00")),  # type: ignore[arg-type]
        ("[]", ListValue(None, ())),  # type: ignore[arg-type]
    ],
)
def test_values(text: str, expected: syntax.Value) -> None:
    assert one_value(text) == expected


def test_lists_calls_and_trailing_commas() -> None:
    v = one_value("eras([4.0, 5.0,],)")
    assert isinstance(v, Call) and v.name.text == "eras"
    [arg] = v.args
    assert isinstance(arg, ListValue) and [x.value for x in arg.items] == [4.0, 5.0]  # type: ignore[union-attr]
    assert one_value("auto()") == Call(None, syntax.Name(None, "auto"), ())  # type: ignore[arg-type]


def test_spans_point_at_the_text() -> None:
    text = "experiment x {\n    seed = 42  # c\n}\n"
    result = parse(Source("s.l2h", text))
    assert result.tree is not None
    [block] = result.tree.items
    assert isinstance(block, Block)
    assert (block.span.line, block.span.end_line) == (1, 3)
    assert text[block.span.start : block.span.end].endswith("}")
    assert block.label is not None and block.label.span.col == 12
    [attr] = block.items
    assert isinstance(attr, Attribute)
    assert (attr.key.span.line, attr.key.span.col) == (2, 5)
    assert text[attr.value.span.start : attr.value.span.end] == "42"
    assert [c.text for c in result.tree.comments] == ["# c"]
    assert result.tree.comments[0].span.line == 2


def test_equality_ignores_layout_and_comments() -> None:
    a = parse(Source("a", "lattice { shape = [4, 4] } # x"))
    b = parse(Source("b", "lattice {\n  shape = [4,\n 4]\n}\n"))
    assert a.tree == b.tree
    c = parse(Source("c", "lattice { shape = [4, 5] }"))
    assert a.tree != c.tree


def test_newlines_carry_no_meaning() -> None:
    one = parse(Source("a", "a { b = 1 c = [1, 2] d { e = f(1) } }"))
    many = parse(Source("b", "a\n{\nb\n=\n1\nc = [\n1,\n2\n]\nd {\ne = f(\n1)\n}\n}\n"))
    assert one.tree == many.tree


@pytest.mark.parametrize(
    ("text", "code", "line", "col"),
    [
        ("dynamics { leapfrog 8 }", "E002", 1, 21),
        ("a { } dynamics { leapfrog 8 }", "E002", 1, 27),
        # the word that lacks its `=`, not the token after it
        ("network { activation swish }", "E002", 1, 22),
        ("a { b = c d }", "E002", 1, 11),
        ("a { b = 1 c }", "E002", 1, 11),
        ("d { step_size = 0.05 learnable  directions = merged }", "E002", 1, 22),
        ("distributed ddp launcher = x }", "E001", 1, 17),
        ("lattice {\n  group = U1\n", "E003", 3, 1),
        ("a { b = [1, 2 }", "E004", 1, 15),
        ("a { b = f(1, 2 }", "E004", 1, 16),
        ('a { b = "x }', "E005", 1, 9),
        ("a { } }", "E006", 1, 7),
        ("a { b = }", "E007", 1, 9),
        ("a { b = 1, c = 2 }", "E008", 1, 10),
        ("a { b = 1; c = 2 }", "E008", 1, 10),
        ("a { b = @ }", "E001", 1, 9),
        ("[", "E001", 1, 1),
    ],
)
def test_syntax_errors(text: str, code: str, line: int, col: int) -> None:
    result = parse(Source("t", text))
    assert result.tree is None
    [d] = result.diagnostics
    assert (d.code, d.primary.span.line, d.primary.span.col) == (code, line, col), d


def test_a_qualifier_after_a_value_is_explained() -> None:
    [d] = parse(Source("t", "d { step_size = 0.05 learnable  directions = merged }")).diagnostics
    assert d.message == "`learnable` has no `=` and no value"
    assert d.help is not None
    assert "`directions = …` starts the next attribute" in d.help
    assert "learnable_step_size = true" in d.help
    [d] = parse(Source("t", "network { activation swish }")).diagnostics
    assert (d.message, d.help) == (
        "expected `=` after `activation`, found `swish`",
        "write `activation = swish`; `name label {` opens a labelled block",
    )


def test_unclosed_brace_points_at_the_open_brace() -> None:
    [d] = parse(Source("t", "a { b { c = 1 }")).diagnostics
    assert d.code == "E003"
    assert [lab.span.col for lab in d.secondary] == [3]


@pytest.mark.parametrize("depth", [33, 100, 20_000])
def test_deep_nesting_is_a_diagnostic(depth: int) -> None:
    text = "a { b = " + "[" * depth + "1" + "]" * depth + " }"
    [d] = parse(Source("t", text)).diagnostics
    assert d.code == "E014"


def test_deep_blocks_are_a_diagnostic() -> None:
    text = "a { " * 5000 + "}" * 5000
    [d] = parse(Source("t", text)).diagnostics
    assert d.code == "E014"


def test_parse_value_for_overrides() -> None:
    value, diags = parse_value(Source("--set[1]", "   [8, 8]"))
    assert not diags and isinstance(value, ListValue) and value.span.col == 4
    value, diags = parse_value(Source("--set[1]", "[8"))
    assert value is None and diags[0].code == "E004"


def test_grammar_is_loaded_from_the_package_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = syntax.grammar_text()
    assert "start: (extends | _item)*" in text
    monkeypatch.setenv("L2HMCC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(syntax, "_PARSER", None)
    syntax.parser()
    files = list((tmp_path / "cache").glob("l2h-parser-*.lark"))
    assert len(files) == 1 and files[0].stat().st_size > 0
    monkeypatch.setattr(syntax, "_PARSER", None)  # a second build loads the cache
    assert parse(Source("t", "a { b = 1 }")).tree is not None


def test_unwritable_cache_still_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("L2HMCC_CACHE", str(blocker / "sub"))
    monkeypatch.setattr(syntax, "_PARSER", None)
    assert parse(Source("t", "a { b = 1 }")).tree is not None
    monkeypatch.setattr(syntax, "_PARSER", None)
