"""Source text, spans, and reading files that are not specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from l2hmcc.source import MAX_SOURCE_BYTES, Source, SourceError, Span, decode_source, read_source


def test_positions_are_one_based_and_span_lines() -> None:
    src = Source("f", "ab\ncd\n\nef")
    assert src.position(0) == (1, 1)
    assert src.position(3) == (2, 1)
    assert src.position(4) == (2, 2)
    assert src.position(7) == (4, 1)
    s = src.span(1, 5)
    assert (s.line, s.col, s.end_line, s.end_col) == (1, 2, 2, 3)
    assert str(s) == "f:1:2"
    assert src.line_text(2) == "cd"
    assert src.line_text(3) == ""
    assert src.line_text(99) == ""


def test_crlf_lines_are_shown_without_carriage_return() -> None:
    assert Source("f", "a = 1\r\nb\r\n").line_text(1) == "a = 1"


def test_whole_file_span_prints_the_path_only() -> None:
    assert str(Span.whole_file("x.l2h")) == "x.l2h"


def test_read_source_reads_utf8_and_strips_bom(tmp_path: Path) -> None:
    p = tmp_path / "a.l2h"
    p.write_bytes("\ufeff# β\nlattice {}\n".encode())
    src = read_source(p)
    assert src.text.startswith("# β")
    assert src.name == str(p)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "E012"),
        (b"  \n\t\n", "E012"),
        (b"lattice {}\x00", "E011"),
        (b"\xff\xfe\xfd", "E011"),
        (b"a" * (MAX_SOURCE_BYTES + 1), "E013"),
    ],
)
def test_bad_bytes_raise_source_error(data: bytes, code: str) -> None:
    with pytest.raises(SourceError) as info:
        decode_source("x", data)
    assert info.value.code == code


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.l2h", tmp_path):
        with pytest.raises(SourceError) as info:
            read_source(path)
        assert info.value.code == "E010"
