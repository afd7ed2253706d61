"""Where each IR field came from: the `SpanMap` (IR field path → the span of what the user
wrote), and pydantic's validation errors turned into diagnostics at those spans.

Lowering (`l2hmcc.lower`) fills the map; the checks, ``diff`` and ``show`` look fields up in
it, so every later message points at the user's text, even one found by a pydantic validator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from l2hmcc import ir
from l2hmcc.diagnostics import Diagnostic, did_you_mean, error, quote_list
from l2hmcc.source import Span


@dataclass
class SpanMap:
    """IR field path (``train.lr``, ``lattice.shape.1``) → the span of what the user wrote.

    ``values`` holds value spans, ``keys`` the spans of keys and block headers. Lookups fall
    back to the nearest enclosing path that has a span, then to the start of the file, so a
    message about a defaulted field points at its block."""

    file_span: Span
    values: dict[str, Span] = field(default_factory=dict)
    keys: dict[str, Span] = field(default_factory=dict)

    def written(self, path: str) -> bool:
        """Whether the user wrote this field (or block) rather than leaving it defaulted."""
        return path in self.values or path in self.keys

    def value(self, path: str) -> Span:
        for p in _ancestors(path):
            if p in self.values:
                return self.values[p]
            if p in self.keys:
                return self.keys[p]
        return self.file_span

    def key(self, path: str) -> Span:
        for p in _ancestors(path):
            if p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
        return self.file_span


def _ancestors(path: str) -> Iterator[str]:
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        yield ".".join(parts[:i])


def length_is_fine(err: Any) -> bool:
    if err["type"] not in ("too_short", "too_long") or not isinstance(err["input"], list | tuple):
        return False
    n, ctx = len(err["input"]), err.get("ctx") or {}
    return bool(ctx.get("min_length", 0) <= n <= ctx.get("max_length", n))


def ir_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as an IR path, without union tags:
    ``('distributed', 'deepspeed', 'zero_stage')`` → ``distributed.zero_stage``."""
    parts: list[str] = []
    skip = False
    for i, part in enumerate(loc):
        if skip:
            skip = False
            continue
        parts.append(str(part))
        if ".".join(parts) in ir.TAGGED_UNIONS and i + 1 < len(loc):
            skip = True
    return ".".join(parts)


_BOUNDS = {
    "greater_than_equal": ("≥", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("≤", "le"),
    "less_than": ("<", "lt"),
}


def pydantic_diagnostic(err: Any, spans: SpanMap) -> Diagnostic:
    path = ir_path(err["loc"])
    span = spans.value(path)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    shown = _user_path(path)
    if kind in _BOUNDS:
        sym, key = _BOUNDS[kind]
        bound = f"{ctx.get(key):g}" if isinstance(ctx.get(key), float) else ctx.get(key)
        return error(
            "E104",
            f"`{shown}` must be {sym} {bound}, got {got}",
            span,
            f"out of range (must be {sym} {bound})",
        )
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        actual = len(got) if isinstance(got, list | tuple) else ctx.get("actual_length")
        what = "at least" if kind == "too_short" else "at most"
        noun = "dimension" if path == "lattice.shape" else "entry"
        plural = {"dimension": "dimensions", "entry": "entries"}
        return error(
            "E104",
            f"`{shown}` needs {what} {bound} {plural[noun]}, got {actual}",
            span,
            f"{actual} {noun if actual == 1 else plural[noun]}",
        )
    if kind == "string_too_long":
        return error(
            "E104",
            f"`{shown}` is at most {ctx.get('max_length')} characters long",
            span,
            "too long",
        )
    if kind == "string_pattern_mismatch":
        return error(
            "E104",
            f"`{shown}` may contain only letters, digits, `_`, `-` and `.`, got `{got}`",
            span,
            "invalid name",
        )
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        guess = did_you_mean(str(got), choices) if choices else None
        return error(
            "E105",
            f"unknown value `{got}` for `{shown}`; expected {quote_list(choices)}",
            span,
            "unknown value",
            help=f"did you mean `{guess}`?" if guess else None,
        )
    if kind == "finite_number":
        return error("E104", f"`{shown}` must be a finite number", span, "not finite")
    return error("E103", f"`{shown}`: {err['msg']}", span, "invalid value")


def _user_path(path: str) -> str:
    """The IR path as the user wrote it (``job.walltime_min`` → ``job.walltime``,
    ``job.continue_jobs`` → ``job.continue``)."""
    path = re.sub(r"\.walltime_min\b", ".walltime", path)
    return re.sub(r"\.continue_jobs\b", ".continue", path)
