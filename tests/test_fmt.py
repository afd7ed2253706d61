"""The formatter: canonical, idempotent, comment-preserving, and tree-preserving.

Hypothesis builds random specs, prints them with random layout and comments, and checks that
formatting keeps the syntax tree (spans aside) and every comment, and is idempotent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l2hmcc.fmt import format_spec
from l2hmcc.source import Source
from l2hmcc.syntax import parse

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted([*ROOT.glob("specs/*.l2h"), *ROOT.glob("examples/*.l2h")])


def fmt(text: str) -> str:
    result = parse(Source("t", text))
    assert result.tree is not None, result.diagnostics
    return format_spec(result.tree, Source("t", text))


def comments(text: str) -> list[str]:
    result = parse(Source("t", text))
    assert result.tree is not None
    return sorted(c.text.rstrip() for c in result.tree.comments)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_specs_are_formatted(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert fmt(text) == text


def test_canonical_layout() -> None:
    text = 'experiment x { seed = 1  description = "d" }  # tail\nlattice{shape=[4,4]}'
    assert fmt(text) == (
        "experiment x {\n"
        "    seed = 1\n"
        '    description = "d"\n'
        "}  # tail\n"
        "\n"
        "lattice {\n"
        "    shape = [4, 4]\n"
        "}\n"
    )


def test_comments_stay_where_they_belong() -> None:
    text = (
        "# header\n\n"
        "lattice {  # on the brace\n"
        "    group = U1  # trailing\n\n"
        "    # before shape\n"
        "    shape = [4,\n"
        "      # inside a list\n"
        "      4]\n"
        "    # before the brace\n"
        "}\n"
        "train {}\n"
        "# the end\n"
    )
    assert fmt(text) == (
        "# header\n\n"
        "lattice {  # on the brace\n"
        "    group = U1  # trailing\n\n"
        "    # before shape\n"
        "    # inside a list\n"
        "    shape = [4, 4]\n"
        "    # before the brace\n"
        "}\n\n"
        "train {}\n"
        "# the end\n"
    )


# --- Hypothesis: random trees, random layout -----------------------------------------------

NAMES = st.sampled_from(["a", "b", "group", "shape", "beta", "x_1", "debug-scaling", "true_x"])
SCALARS = st.one_of(
    st.integers(-1000, 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["1e-3", ".5", "-0.25", "1h30m", "45m", "01:30:00", "true", "false"]),
    st.text(st.characters(codec="utf-8", exclude_characters='"\\\n\r'), max_size=8).map(
        lambda s: f'"{s}"'
    ),
    NAMES,
)


def values(depth: int = 2) -> st.SearchStrategy[str]:
    if depth == 0:
        return SCALARS
    inner = values(depth - 1)
    return st.one_of(
        SCALARS,
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(NAMES, st.lists(inner, max_size=3)).map(
            lambda t: f"{t[0]}(" + ", ".join(t[1]) + ")"
        ),
    )


@st.composite
def specs(draw: st.DrawFn) -> str:
    """Spec text with random whitespace, newlines and comments between tokens (and maybe an
    `extends` line first)."""
    pieces: list[str] = []

    def gap() -> str:
        ws = draw(st.sampled_from([" ", "  ", "\n", "\n\n", "\t", " \n  "]))
        if draw(st.integers(0, 4)) == 0:
            ws += f"  # c{draw(st.integers(0, 99))}\n"
        return ws

    def block(depth: int) -> None:
        pieces.append(draw(NAMES))
        if draw(st.booleans()):
            pieces.append(" " + draw(NAMES))
        pieces.append(gap() + "{" + gap())
        for _ in range(draw(st.integers(0, 4))):
            if depth < 2 and draw(st.integers(0, 3)) == 0:
                block(depth + 1)
            else:
                pieces.append(draw(NAMES) + draw(st.sampled_from([" = ", "=", " =\n"])))
                pieces.append(draw(values()))
            pieces.append(gap())
        pieces.append("}" + gap())

    if draw(st.booleans()):
        pieces.append("# leading\n")
    if draw(st.booleans()):
        pieces.append('extends "base.l2h"' + gap())
    for _ in range(draw(st.integers(0, 4))):
        block(0)
    return "".join(pieces)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_format_keeps_the_tree_and_comments_and_is_idempotent(text: str) -> None:
    original = parse(Source("t", text))
    assert original.tree is not None, (text, original.diagnostics)
    once = fmt(text)
    assert parse(Source("t", once)).tree == original.tree
    assert comments(once) == comments(text)
    assert fmt(once) == once
    assert not re.search(r"[ \t]+\n", once)  # no trailing whitespace
