"""``--set block.key=value``: each override is parsed against its own `Source` (messages point
into the option's text) and applied to the syntax tree before lowering, replacing or adding
the attribute (and, for a block the spec leaves out, the block with its default label).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from l2hmcc.diagnostics import Diagnostic, error
from l2hmcc.source import Source
from l2hmcc.syntax import (
    Attribute,
    Block,
    Item,
    Name,
    SpecFile,
    Value,
    parse_value,
)


@dataclass(frozen=True)
class Override:
    """One ``--set block.key=value``, parsed, with its own `Source` for messages."""

    source: Source
    path: tuple[Name, ...]
    value: Value


#: A ``--set`` is one value: at most this many characters (a spec may hold 1 MiB).
MAX_OVERRIDE_CHARS = 1 << 16


def override_source(text: str, index: int) -> Source:
    """The `Source` of the ``index``-th ``--set`` (1-based), as messages name it."""
    return Source(f"{_SOURCE_PREFIX}{index}]", text)


_SOURCE_PREFIX = "--set["


def created_by_override(block: Block) -> bool:
    """Whether an override created ``block`` (the spec and its bases leave it out)."""
    return block.kind.span.file.startswith(_SOURCE_PREFIX)


def parse_override(text: str, index: int) -> tuple[Override | None, list[Diagnostic]]:
    """Parse ``block.key=value`` (the text of the ``index``-th ``--set``)."""
    src = override_source(text, index)
    name = src.name
    if len(text) > MAX_OVERRIDE_CHARS:
        return None, [
            error(
                "E116",
                f"`--set {text[:24]}…` is {len(text)} characters long;"
                f" an override is at most {MAX_OVERRIDE_CHARS}",
                src.span(0, 0),
                "too long",
                help="put long values in the spec (or a spec that `extends` it)",
            )
        ]
    eq = text.find("=")
    if eq <= 0:
        shown = text if len(text) <= 80 else f"{text[:60]}…"
        return None, [
            error(
                "E114",
                f"`--set {shown}` is not `block.key=value`",
                src.span(0, len(text)),
                "expected `=`",
                help="e.g. `--set train.steps=100`",
            )
        ]
    names: list[Name] = []
    start = 0
    for seg in text[:eq].split("."):
        end = start + len(seg)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", seg):
            return None, [
                error(
                    "E114",
                    f"`{seg[:60]}` is not a key name" if seg else "empty key name in the path",
                    src.span(start, max(end, start + 1)),
                    "expected a name",
                    help="e.g. `--set train.steps=100`",
                )
            ]
        names.append(Name(src.span(start, end), seg))
        start = end + 1
    if len(names) < 2:
        return None, [
            error(
                "E114",
                "an override names a block and a key",
                src.span(0, eq),
                "expected `block.key`",
                help=f"e.g. `--set train.{text[:eq]}=...`",
            )
        ]
    # Parse the value with spans into the full override text (pad the key part).
    value, diags = parse_value(Source(name, " " * (eq + 1) + text[eq + 1 :]))
    if value is None:
        return None, diags
    return Override(src, tuple(names), value), []


def apply_overrides(tree: SpecFile, overrides: Sequence[Override]) -> SpecFile:
    """The tree with each override's attribute set (replacing or adding it; missing blocks
    are created). Values keep their spans into the override text."""
    for ov in overrides:
        tree = replace(tree, items=_set(tree.items, ov.path, ov.value))
    return tree


def _set(items: tuple[Item, ...], path: tuple[Name, ...], value: Value) -> tuple[Item, ...]:
    head, rest = path[0], path[1:]
    if not rest:
        attr = Attribute(value.span, head, value)
        for i, it in enumerate(items):
            if isinstance(it, Attribute) and it.key.text == head.text:
                return (*items[:i], attr, *items[i + 1 :])
        return (*items, attr)
    for i, it in enumerate(items):
        if isinstance(it, Block) and it.kind.text == head.text:
            new = replace(it, items=_set(it.items, rest, value))
            return (*items[:i], new, *items[i + 1 :])
    # A block the spec leaves out gets the label of its defaults (`job local`, ...).
    default = _DEFAULT_LABELS.get(head.text)
    label = Name(head.span, default) if default else None
    block = Block(head.span, head, label, _set((), rest, value))
    return (*items, block)


_DEFAULT_LABELS = {"job": "local", "distributed": "none"}
