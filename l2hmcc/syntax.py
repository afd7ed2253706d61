"""Parse `.l2h` text into a syntax tree of frozen dataclasses, each node with its `Span`.

The tree mirrors what the user wrote, nothing more: blocks, attributes and values, in order.
Spans are excluded from equality (``field(compare=False)``), so two trees compare equal when
they say the same thing however it was laid out, which is what the formatter round-trip
tests need. Comments are collected beside the tree (for ``fmt``), not inside it.

The Lark LALR parser is built once per grammar version and cached on disk (Lark's ``cache=``
option), so a whole ``l2hmcc check`` process stays well under a quarter of a second. Parse
errors become friendly diagnostics via `UnexpectedInput.match_examples` and a table of known
mistakes (`_EXAMPLES`).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from l2hmcc import __version__
from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.source import Source, Span

if TYPE_CHECKING:
    from lark import Lark, Token

#: Lists, calls and blocks nest at most this deep (no field needs more than two).
MAX_DEPTH = 32


# ---------------------------------------------------------------------------------------------
# The syntax tree


@dataclass(frozen=True)
class Name:
    """A key, block name or label as written."""

    span: Span = field(compare=False, repr=False)
    text: str


@dataclass(frozen=True)
class Number:
    """``8``, ``-1``, ``0.1``, ``1e-3``: ``text`` as written, ``value`` parsed (int if it has
    no ``.`` and no exponent; ±inf for a literal too long to convert, see `MAX_INT_DIGITS`)."""

    span: Span = field(compare=False, repr=False)
    text: str
    value: int | float


@dataclass(frozen=True)
class String:
    """``"text"``: ``text`` is the literal with its quotes and escapes, ``value`` the string."""

    span: Span = field(compare=False, repr=False)
    text: str
    value: str


@dataclass(frozen=True)
class Bool:
    span: Span = field(compare=False, repr=False)
    value: bool


@dataclass(frozen=True)
class Ident:
    """An identifier value such as ``merged`` or ``U1``."""

    span: Span = field(compare=False, repr=False)
    name: str


@dataclass(frozen=True)
class Duration:
    """``1h30m`` or ``01:30:00`` as written; `lower` turns it into minutes."""

    span: Span = field(compare=False, repr=False)
    text: str


@dataclass(frozen=True)
class ListValue:
    span: Span = field(compare=False, repr=False)
    items: tuple[Value, ...]


@dataclass(frozen=True)
class Call:
    """``linear(4.0, 6.0)``: a constructor name and positional arguments."""

    span: Span = field(compare=False, repr=False)
    name: Name
    args: tuple[Value, ...]


Value = Number | String | Bool | Ident | Duration | ListValue | Call


@dataclass(frozen=True)
class Attribute:
    """``key = value``."""

    span: Span = field(compare=False, repr=False)
    key: Name
    value: Value


@dataclass(frozen=True)
class Block:
    """``kind [label] { items }``; ``span`` runs from the kind to the closing brace."""

    span: Span = field(compare=False, repr=False)
    kind: Name
    label: Name | None
    items: tuple[Item, ...]

    @property
    def header(self) -> Span:
        """The span of ``kind [label]``: where messages about the block as a whole point."""
        last = self.label or self.kind
        if last.span.file != self.kind.span.file:
            last = self.kind  # a composed block whose label came from the base spec
        s, e = self.kind.span, last.span
        return Span(s.file, s.line, s.col, e.end_line, e.end_col, s.start, e.end)


Item = Block | Attribute


@dataclass(frozen=True)
class Comment:
    span: Span
    text: str


@dataclass(frozen=True)
class Extends:
    """``extends "base.l2h"``: the spec this one is composed over (`l2hmcc.compose`)."""

    span: Span = field(compare=False, repr=False)
    path: String


@dataclass(frozen=True)
class SpecFile:
    """A whole spec: its ``extends`` line if any, its top-level items in order, and its
    comments (for the formatter)."""

    span: Span = field(compare=False, repr=False)
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)
    extends: Extends | None = None


@dataclass(frozen=True)
class ParseResult:
    tree: SpecFile | None
    diagnostics: list[Diagnostic]


# ---------------------------------------------------------------------------------------------
# The parser (built once, cached on disk)


class _CommentCollector:
    """Lark lexer callback for the ignored COMMENT terminal."""

    def __init__(self) -> None:
        self.tokens: list[Token] = []

    def __call__(self, token: Token) -> Token:
        self.tokens.append(token)
        return token


_COMMENTS = _CommentCollector()
_PARSER: Lark | None = None


def grammar_text() -> str:
    """The grammar as shipped inside the package (``l2hmcc.grammar/l2h.lark``)."""
    return resources.files("l2hmcc.grammar").joinpath("l2h.lark").read_text(encoding="utf-8")


def cache_dir() -> Path:
    """Where the built parser is cached: ``$L2HMCC_CACHE``, else ``$XDG_CACHE_HOME/l2hmcc``,
    else ``~/.cache/l2hmcc``."""
    env = os.environ.get("L2HMCC_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "l2hmcc"


def _cache_file(grammar: str) -> str | bool:
    import lark

    key = hashlib.sha256(f"{grammar}\0{lark.__version__}\0{__version__}".encode()).hexdigest()
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False  # no writable cache: build the parser every time (slower, still correct)
    if not os.access(directory, os.W_OK):
        return False
    return str(directory / f"l2h-parser-{key[:20]}.lark")


def parser() -> Lark:
    """The LALR parser for the grammar, with positions propagated to every tree node."""
    global _PARSER
    if _PARSER is None:
        from lark import Lark

        text = grammar_text()
        _PARSER = Lark(
            text,
            parser="lalr",
            start=["start", "value_only"],
            propagate_positions=True,
            maybe_placeholders=True,
            lexer_callbacks={"COMMENT": _COMMENTS},
            cache=_cache_file(text),
        )
    return _PARSER


# ---------------------------------------------------------------------------------------------
# Parsing


class _TooDeep(Exception):
    def __init__(self, span: Span) -> None:
        self.span = span


def parse(source: Source) -> ParseResult:
    """Parse a whole spec. Never raises for bad input: errors come back as diagnostics."""
    from lark.exceptions import UnexpectedInput

    p = parser()
    _COMMENTS.tokens = []
    try:
        tree = p.parse(source.text, start="start")
    except UnexpectedInput as e:
        return ParseResult(None, [_syntax_error(source, e)])
    except RecursionError:
        return ParseResult(None, [_too_deep(source.start_span)])
    comments = tuple(
        Comment(source.span(t.start_pos or 0, t.end_pos or 0), str(t)) for t in _COMMENTS.tokens
    )
    builder = _Builder(source)
    extends: Extends | None = None
    items: list[Item] = []
    try:
        for child in tree.children:
            if getattr(child, "data", None) != "extends":
                items.append(builder.item(child, 0))
                continue
            node = builder.extends(child)
            if extends is not None or items:
                return ParseResult(None, [_misplaced_extends(node, extends)])
            extends = node
    except _TooDeep as e:
        return ParseResult(None, [_too_deep(e.span)])
    except RecursionError:
        return ParseResult(None, [_too_deep(source.start_span)])
    whole = source.span(0, len(source.text))
    return ParseResult(SpecFile(whole, tuple(items), comments, extends), [])


def _misplaced_extends(node: Extends, first: Extends | None) -> Diagnostic:
    if first is not None:
        return error(
            "E015",
            "a spec extends at most one other spec",
            node.span,
            "second `extends`",
            secondary=[Label(first.span, "first `extends`")],
            help="compose in a chain instead: the base spec may itself extend another",
        )
    return error(
        "E015",
        "`extends` must come before the first block",
        node.span,
        "too late",
        help="move this line to the top of the file (comments may precede it)",
    )


def parse_value(source: Source) -> tuple[Value | None, list[Diagnostic]]:
    """Parse a lone value (the right-hand side of a ``--set`` override)."""
    from lark.exceptions import UnexpectedInput

    try:
        tree = parser().parse(source.text, start="value_only")
        return _Builder(source).value(tree.children[0], 0), []
    except UnexpectedInput as e:
        return None, [_syntax_error(source, e)]
    except (_TooDeep, RecursionError):
        return None, [_too_deep(source.start_span)]


def _too_deep(span: Span) -> Diagnostic:
    return error("E014", f"nesting deeper than {MAX_DEPTH} levels", span, "too deep here")


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def _unescape(literal: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), literal[1:-1])


#: Integer literals longer than this are not converted (Python refuses beyond 4300 digits, and
#: converting is quadratic); they stand for ±infinity, which lowering reports as too large.
MAX_INT_DIGITS = 1000


def _number(text: str) -> int | float:
    """The value of a NUMBER token: an int if it has no ``.`` and no exponent, else a float
    (which may be infinite: ``1e999``)."""
    if re.fullmatch(r"[+-]?\d+", text):
        if len(text.lstrip("+-").lstrip("0")) > MAX_INT_DIGITS:
            return -math.inf if text.startswith("-") else math.inf
        return int(text)
    return float(text)


class _Builder:
    """Lark tree → syntax tree. Recursion is bounded by `MAX_DEPTH`."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def span_of(self, node: Any) -> Span:  # a lark Tree or Token
        from lark import Token

        if isinstance(node, Token):
            return self.source.span(node.start_pos or 0, node.end_pos or 0)
        meta = node.meta
        if getattr(meta, "empty", True):
            return self.source.start_span
        return self.source.span(meta.start_pos, meta.end_pos)

    def name(self, tok: Any) -> Name:
        return Name(self.span_of(tok), str(tok))

    def extends(self, node: Any) -> Extends:
        (tok,) = node.children
        text = str(tok)
        path = String(self.span_of(tok), text, _unescape(text))
        return Extends(self.span_of(node), path)

    def item(self, node: Any, depth: int) -> Item:
        if depth > MAX_DEPTH:
            raise _TooDeep(self.span_of(node))
        if node.data == "attribute":
            key, value = node.children
            return Attribute(self.span_of(node), self.name(key), self.value(value, depth + 1))
        kind, label, *items = node.children
        return Block(
            self.span_of(node),
            self.name(kind),
            self.name(label) if label is not None else None,
            tuple(self.item(i, depth + 1) for i in items),
        )

    def value(self, node: Any, depth: int) -> Value:
        span = self.span_of(node)
        if depth > MAX_DEPTH:
            raise _TooDeep(span)
        from lark import Token

        if isinstance(node, Token):  # pragma: no cover - every value rule wraps its token
            raise TypeError(f"unexpected token {node!r}")
        kind = node.data
        children = [c for c in node.children if c is not None]
        if kind == "number":
            text = str(children[0])
            return Number(span, text, _number(text))
        if kind == "string":
            text = str(children[0])
            return String(span, text, _unescape(text))
        if kind in ("true", "false"):
            return Bool(span, kind == "true")
        if kind == "duration":
            return Duration(span, str(children[0]))
        if kind == "ident":
            return Ident(span, str(children[0]))
        if kind == "list":
            return ListValue(span, tuple(self.value(c, depth + 1) for c in children))
        if kind == "call":
            name, *args = children
            return Call(span, self.name(name), tuple(self.value(a, depth + 1) for a in args))
        raise TypeError(f"unknown value rule {kind!r}")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# Friendly syntax errors

#: Known mistakes, by the code they get. `match_examples` finds the entry whose parser state
#: matches the failing one.
_EXAMPLES: dict[str, list[str]] = {
    "E002": [
        "a { b 1 }",
        "a { b 1.5 }",
        'a { b "x" }',
        "a { b [1] }",
        "a { b true }",
        "a { b 1h }",
        "a { b c d }",
        "a { b c 1 }",
        "a { b c }",
        "a b c",
        "a 1",
    ],
    "E003": [
        "a {",
        "a { b = 1",
        "a { b { c = 1 }",
        "a { b = c",
        "a b {",
    ],
    "E004": [
        "a { b = [1, 2 }",
        "a { b = [1 c = 2 }",
        "a { b = [1, 2",
        "a { b = [",
        "a { b = f(1, 2 }",
        "a { b = f(1 c = 2 }",
        "a { b = f(",
        "a { b = f(1",
    ],
    "E006": ["}", "a { } }", "a { b = 1 } }"],
    "E007": [
        "a { b = }",
        "a { b = c = 1 }",
        "a { b = 1 c = = 2 }",
        "a { b = ",
    ],
    "E008": ["a { b = 1, c = 2 }", "a { b = c, d = 2 }", 'a { b = "x", d = 2 }'],
}

_TOKEN_NAMES = {
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "EQUAL": "`=`",
    "COMMA": "`,`",
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "DURATION": "a duration",
    "CLOCK": "a duration",
    "TRUE": "`true`",
    "FALSE": "`false`",
    "EXTENDS": "`extends`",
    "$END": "the end of the file",
}


#: Things people write for durations that are not durations (`1.5h`, `90min`, `2hours`).
_BAD_DURATION = re.compile(
    r"(?<![\w.])(\d+\.\d+[hms]|\d+(?:\.\d+)?(?:min|mins|minutes?|hrs?|hours?|secs?|seconds?|d|days?))\b"
)


def _describe(token_type: str) -> str:
    return _TOKEN_NAMES.get(token_type, f"`{token_type}`")


def _code(text: str, upto: int) -> str:
    """``text[:upto]`` with comments and the insides of strings blanked out (offsets kept), so
    that what looks like a bracket or a name there is not taken for one."""
    out = list(text[:upto])
    i = 0
    while i < upto:
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i, upto)
            end = upto if nl < 0 else nl
            out[i:end] = " " * (end - i)
            i = end
        elif ch == '"':
            m = _STRING_PREFIX.match(text, i)
            end = min(m.end() if m else i + 1, upto)
            inner_end = end - 1 if end - i >= 2 and text[end - 1] == '"' else end
            out[i + 1 : inner_end] = " " * (inner_end - i - 1)
            i = end
        else:
            i += 1
    return "".join(out)


_STRING_PREFIX = re.compile(r'"([^"\\\n]|\\.)*"?')


def _unclosed(text: str, upto: int, pairs: dict[str, str]) -> list[int]:
    """Offsets of the brackets in ``text[:upto]`` still open at ``upto`` (strings and
    comments skipped)."""
    stack: list[int] = []
    closers = {v: k for k, v in pairs.items()}
    code = _code(text, upto)
    for i, ch in enumerate(code):
        if ch in pairs:
            stack.append(i)
        elif ch in closers and stack and code[stack[-1]] == closers[ch]:
            stack.pop()
    return stack


def _syntax_error(source: Source, e: Exception) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedInput

    text = source.text
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream or 0
        ch = text[pos]
        if ch == '"':
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            return error(
                "E005",
                "unterminated string",
                source.span(pos, end),
                'this string has no closing `"`',
                help='close the string on the same line: "..."',
            )
        if ch == ";":
            return error(
                "E008",
                "`;` between attributes",
                source.span(pos, pos + 1),
                "remove this",
                help="separate attributes with spaces or newlines",
            )
        shown = ch if ch.isprintable() and not ch.isspace() else repr(ch)
        return error(
            "E001",
            f"unexpected character `{shown}`",
            source.span(pos, pos + 1),
            "not valid here",
            help="names, numbers, strings, `{ } [ ] ( ) = ,` and `#` comments make up a spec",
        )
    assert isinstance(e, UnexpectedInput)
    token = getattr(e, "token", None)
    ttype = getattr(token, "type", "$END")
    at_end = ttype == "$END"
    if at_end:
        span = source.span(len(text), len(text))
    else:
        assert token is not None
        span = source.span(token.start_pos or 0, token.end_pos or 0)
    if bad := _BAD_DURATION.search(text, max(0, span.start - 40), span.start + 1):
        return error(
            "E113",
            f"`{bad.group(0)}` is not a duration",
            source.span(bad.start(), bad.end()),
            "not a duration",
            help="write whole units: `1h30m`, `90m`, `45s` or `01:30:00`",
        )
    code = _match(e)
    # An example matches a parser state, whatever the token; these codes are about one token.
    if (code == "E006" and ttype != "RBRACE") or (code == "E008" and ttype != "COMMA"):
        code = None
    found = "the end of the file" if at_end else f"`{token}`"
    open_braces = _unclosed(text, len(text) if at_end else span.start, {"{": "}"})
    open_brackets = _unclosed(text, len(text) if at_end else span.start, {"[": "]", "(": ")"})
    if at_end and open_brackets and code != "E003":
        code = "E004"
    if at_end and not open_brackets and open_braces:
        code = "E003"
    if code == "E002":
        return _missing_equals(source, span, found, ttype, bool(open_braces))
    if code == "E003":
        opened = [Label(source.span(o, o + 1), "this `{` is never closed") for o in open_braces]
        return error(
            "E003",
            "unclosed `{`: the file ends inside a block",
            span if at_end else opened[-1].span if opened else span,
            "the file ends here" if at_end else "",
            secondary=opened[-1:] if at_end else (),
            help="add the missing `}`",
        )
    if code == "E004":
        opened = [Label(source.span(o, o + 1), "opened here") for o in open_brackets]
        closer = "]" if open_brackets and text[open_brackets[-1]] == "[" else ")"
        return error(
            "E004",
            f"expected `{closer}` to close the {'list' if closer == ']' else 'call'}, found {found}",
            span,
            f"expected `,` or `{closer}`",
            secondary=opened[-1:],
            help=f"add the missing `{closer}`",
        )
    if code == "E006":
        return error(
            "E006", "unexpected `}`: no block is open here", span, "nothing to close", help=None
        )
    if code == "E007":
        return error(
            "E007",
            f"expected a value after `=`, found {found}",
            span,
            "expected a value",
            help="values are numbers, strings, names, `true`/`false`, durations, lists or calls",
        )
    if code == "E008":
        return error(
            "E008",
            "`,` between attributes",
            span,
            "remove this",
            help="separate attributes with spaces or newlines; commas separate list items",
        )
    expected = sorted(
        {_describe(t) for t in getattr(e, "expected", set()) or set() if not t.startswith("_")}
    )
    return error(
        "E001",
        f"unexpected {found}",
        span,
        "not expected here",
        help=f"expected {', '.join(expected)}" if expected else None,
    )


#: One or two names that end the code before a syntax error (`_code`: comments blanked).
_LAST_NAMES = re.compile(r"(?:(?<![\w.-])([A-Za-z_][\w-]*)\s+)?(?<![\w.-])([A-Za-z_][\w-]*)\s*$")
#: The end of an attribute's value (number, string, name, duration, `]`, `)`), then spaces
#: on the same line.
_AFTER_VALUE = re.compile(r"=\s*(?:[^\s={}]+|\"[^\"\n]*\")[ \t]+$")
#: An `=` (and spaces) right before a name: the name is a value.
_VALUE_NEXT = re.compile(r"=\s*$")
_QUALIFIER = (
    "a word that qualifies the value before it is a key of its own"
    " (e.g. `learnable_step_size = true`)"
)


def _missing_equals(
    source: Source, span: Span, found: str, token: str, in_block: bool
) -> Diagnostic:
    """E002, put on the word that lacks its `=` rather than on the token the parser choked on:

    * `key word }` / `key word other`: `=` missing between them (on `word`);
    * `stray key = 1` / `stray }`: a word with no `=` and no value, typically a qualifier after
      a value (`step_size = 0.05 learnable`), which the help explains (on `stray`)."""
    text = _code(source.text, span.start)
    m = _LAST_NAMES.search(text)
    if m is not None and m.group(1) is not None and not in_block and token != "LBRACE":
        return error(
            "E001",
            f"expected `{{` after `{m.group(1)} {m.group(2)}`, found {found}",
            span,
            "expected `{` before this",
            help="a block is `name {…}` or, for the labelled ones, `name label {…}`"
            " (`distributed ddp {…}`, `job polaris {…}`)",
        )
    if not in_block:
        m = None
    if m is not None and m.group(1) is not None and _VALUE_NEXT.search(text, 0, m.start(1)):
        m = _LAST_NAMES.search(text, m.start(2))  # the first name is a value
    if m is None or (m.group(1) is None and token not in ("RBRACE", "$END")):
        return error(
            "E002",
            f"expected `=` after the key, found {found}",
            span,
            "expected `=` before this",
            help="attributes are written `key = value`; `name {` opens a nested block",
        )
    first, second = m.group(1), m.group(2)
    if first is not None and token != "EQUAL":
        return error(
            "E002",
            f"expected `=` after `{first}`, found `{second}`",
            source.span(m.start(2), m.end(2)),
            "expected `=` before this",
            help=f"write `{first} = {second}`; `name label {{` opens a labelled block",
        )
    stray, at = (first, m.start(1)) if first is not None else (second, m.start(2))
    following = f"`{second} = …` starts the next attribute; " if first is not None else ""
    if _AFTER_VALUE.search(text, 0, at):
        fix = f"{_QUALIFIER}: write `{stray} = VALUE`, or remove `{stray}`"
    else:
        fix = f"write `{stray} = VALUE` (or `{stray} {{ … }}` for a nested block), or remove it"
    return error(
        "E002",
        f"`{stray}` has no `=` and no value",
        source.span(at, at + len(stray)),
        "not followed by `=`",
        help=following + fix,
    )


_EXAMPLE_STATES: dict[tuple[int, str], str] | None = None


def _state_key(e: Exception) -> tuple[int, str] | None:
    state = getattr(e, "state", None)
    position = getattr(state, "position", None)
    token = getattr(e, "token", None)
    if position is None:
        return None
    return int(position), str(getattr(token, "type", "$END"))


def _match(e: Exception) -> str | None:
    """The code of the known mistake whose parser state matches ``e``.

    Like `UnexpectedInput.match_examples`, but keyed on the LALR state and the token type
    only: Lark's version also compares the depth of the parser stack, so an example would
    match only at the same nesting depth and after the same number of blocks."""
    global _EXAMPLE_STATES
    from lark.exceptions import UnexpectedInput

    if _EXAMPLE_STATES is None:
        table: dict[tuple[int, str], str] = {}
        saved = _COMMENTS.tokens
        try:
            for code, examples in _EXAMPLES.items():
                for example in examples:
                    try:
                        parser().parse(example, start="start")
                    except UnexpectedInput as ex:
                        key = _state_key(ex)
                        if key is not None:
                            table.setdefault(key, code)
                            table.setdefault((key[0], "*"), code)
        finally:
            _COMMENTS.tokens = saved
        _EXAMPLE_STATES = table
    key = _state_key(e)
    if key is None:
        return None
    return _EXAMPLE_STATES.get(key) or _EXAMPLE_STATES.get((key[0], "*"))
