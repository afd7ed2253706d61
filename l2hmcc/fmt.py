"""The canonical layout of a spec (``l2hmcc fmt``), comments kept.

Canonical means: one attribute per line, four-space indents, `key = value` with single
spaces, lists and calls on one line (`[16, 16]`, `linear(4.0, 6.0)`), an `extends` line
first, one blank line between top-level blocks, at most one blank line between attributes where the author had
one, numbers and strings exactly as written. Formatting is idempotent, and a formatted
spec parses to the same syntax tree as the original (tested with Hypothesis).

Comments are not in the syntax tree; they are placed by position. A comment on the same line
as the end of an attribute (or after a `{` or `}`) stays at the end of that line; every other
comment goes on its own line before the next thing that follows it in the source, at that
thing's indentation.
"""

from __future__ import annotations

import re

from l2hmcc.source import Source
from l2hmcc.syntax import (
    Attribute,
    Block,
    Bool,
    Call,
    Comment,
    Duration,
    Extends,
    Ident,
    Item,
    ListValue,
    Number,
    SpecFile,
    String,
    Value,
)

INDENT = "    "


def format_value(v: Value) -> str:
    if isinstance(v, Number | String | Duration):
        return v.text
    if isinstance(v, Bool):
        return "true" if v.value else "false"
    if isinstance(v, Ident):
        return v.name
    if isinstance(v, ListValue):
        return "[" + ", ".join(format_value(x) for x in v.items) + "]"
    assert isinstance(v, Call)
    return f"{v.name.text}(" + ", ".join(format_value(x) for x in v.args) + ")"


_BLANK_LINE = re.compile(r"\n[ \t\r\f]*\n")


class _Formatter:
    def __init__(self, source: Source, comments: tuple[Comment, ...]) -> None:
        self.text = source.text
        self.comments = sorted(comments, key=lambda c: c.span.start)
        self.next = 0  # index of the first comment not yet written
        self.lines: list[str] = []
        self.last_end = 0  # source offset of the end of what was written last

    # -- comments ---------------------------------------------------------------------------
    def own_line_comments(self, before: int, depth: int) -> None:
        """Write, each on its own line, the comments that start before offset ``before``."""
        while self.next < len(self.comments) and self.comments[self.next].span.start < before:
            c = self.comments[self.next]
            self.gap(c.span.start)
            self.lines.append(INDENT * depth + c.text.rstrip())
            self.last_end = c.span.end
            self.next += 1

    def trailing_comment(self, line: int, after: int, before: int) -> str:
        """The comment on source ``line`` between offsets ``after`` and ``before``, if any,
        formatted to end the current output line."""
        if self.next < len(self.comments):
            c = self.comments[self.next]
            if c.span.line == line and after <= c.span.start < before:
                self.next += 1
                self.last_end = c.span.end
                return "  " + c.text.rstrip()
        return ""

    def blank_between(self, end: int, start: int) -> bool:
        return bool(_BLANK_LINE.search(self.text, end, start)) if end < start else False

    def gap(self, start: int) -> None:
        """Keep one blank line where the author left one (never right after a `{`)."""
        if (
            not self.lines
            or self.lines[-1] == ""
            or self.lines[-1].split("#")[0].rstrip().endswith("{")
        ):
            return
        if self.blank_between(self.last_end, start):
            self.lines.append("")

    # -- items ------------------------------------------------------------------------------
    def items(self, items: tuple[Item, ...], depth: int, close: int, top: bool) -> None:
        for i, item in enumerate(items):
            if top and i and self.lines[-1] != "":
                self.lines.append("")  # blocks are separated by one blank line
            self.own_line_comments(item.span.start, depth)
            self.gap(item.span.start)
            following = items[i + 1].span.start if i + 1 < len(items) else close
            if isinstance(item, Attribute):
                self.attribute(item, depth, following)
            else:
                self.block(item, depth, following)

    def attribute(self, a: Attribute, depth: int, following: int) -> None:
        self.own_line_comments(a.span.end, depth)  # comments inside a multi-line value
        line = f"{INDENT * depth}{a.key.text} = {format_value(a.value)}"
        self.last_end = a.span.end
        self.lines.append(line + self.trailing_comment(a.span.end_line, a.span.end, following))

    def block(self, b: Block, depth: int, following: int) -> None:
        head = b.kind.text + (f" {b.label.text}" if b.label else "")
        lbrace = self.text.index("{", b.header.end)
        rbrace = b.span.end - 1
        has_inner_comments = (
            self.next < len(self.comments) and self.comments[self.next].span.start < rbrace
        )
        if not b.items and not has_inner_comments:
            self.last_end = b.span.end
            trail = self.trailing_comment(self.line_of(rbrace), rbrace, following)
            self.lines.append(f"{INDENT * depth}{head} {{}}" + trail)
            return
        first = b.items[0].span.start if b.items else rbrace
        self.last_end = lbrace + 1
        trail = self.trailing_comment(self.line_of(lbrace), lbrace, first)
        self.lines.append(f"{INDENT * depth}{head} {{" + trail)
        self.items(b.items, depth + 1, rbrace, top=False)
        self.own_line_comments(rbrace, depth + 1)
        self.last_end = b.span.end
        trail = self.trailing_comment(self.line_of(rbrace), rbrace, following)
        self.lines.append(f"{INDENT * depth}}}" + trail)

    def extends(self, e: Extends, following: int) -> None:
        """``extends "base.l2h"``, first, followed by a blank line before the first block."""
        self.own_line_comments(e.span.start, 0)
        self.last_end = e.span.end
        trail = self.trailing_comment(e.span.end_line, e.span.end, following)
        self.lines.append(f"extends {e.path.text}{trail}")
        self.lines.append("")

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1


def format_spec(tree: SpecFile, source: Source) -> str:
    """The canonical text of a parsed spec (``source`` is the text it was parsed from)."""
    f = _Formatter(source, tree.comments)
    if tree.extends is not None:
        f.extends(tree.extends, tree.items[0].span.start if tree.items else len(source.text))
    f.items(tree.items, 0, len(source.text), top=True)
    f.own_line_comments(len(source.text) + 1, 0)
    return "\n".join(f.lines).strip("\n") + "\n"
