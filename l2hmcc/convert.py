"""Value converters: a syntax-tree value → its IR value, or a diagnostic.

A converter takes the value, the key path it is written at (for messages) and the lowering
`Context` (which collects diagnostics, spans and sweeps); it returns the IR value, or records
a diagnostic (wrong type, too large, unknown choice with a "did you mean") and raises
`Reject`. The schema table (`l2hmcc.blocks.BLOCKS`) names the converter of every key.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any

from l2hmcc.diagnostics import Diagnostic, did_you_mean, error, quote_list
from l2hmcc.source import Span
from l2hmcc.spanmap import SpanMap
from l2hmcc.syntax import (
    Attribute,
    Bool,
    Call,
    Duration,
    Ident,
    ListValue,
    Number,
    String,
    Value,
)


class Reject(Exception):
    """The value was rejected; its diagnostic has been recorded."""


def describe(v: Value) -> str:
    """How a value is named in messages: ``the string `"8"` ``, ``a list``…"""
    if isinstance(v, Number):
        return f"the number `{v.text}`"
    if isinstance(v, String):
        return f"the string `{_clip(v.text)}`"
    if isinstance(v, Bool):
        return f"`{'true' if v.value else 'false'}`"
    if isinstance(v, Ident):
        return f"the name `{v.name}`"
    if isinstance(v, Duration):
        return f"the duration `{v.text}`"
    if isinstance(v, ListValue):
        return "a list"
    return f"a call `{v.name.text}(...)`"


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


class Context:
    """Collects diagnostics, spans and sweeps while lowering."""

    def __init__(self, file_span: Span, *, allow_sweep: bool = True) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.spans = SpanMap(file_span)
        self.sweeps: list[tuple[str, Attribute, Call, list[Any]]] = []
        self.allow_sweep = allow_sweep

    def reject(self, d: Diagnostic) -> Reject:
        self.diagnostics.append(d)
        return Reject()

    def wrong_type(self, path: str, v: Value, expected: str, help: str | None = None) -> Reject:
        return self.reject(
            error(
                "E103",
                f"`{path}` expects {expected}, got {describe(v)}",
                v.span,
                f"expected {expected}",
                help=help,
            )
        )


Converter = Callable[[Value, str, Context], Any]


def _no_sweep(v: Value, path: str, ctx: Context) -> None:
    if isinstance(v, Call) and v.name.text == "sweep":
        raise ctx.reject(
            error(
                "E112",
                "`sweep(...)` must be the whole value of an attribute",
                v.span,
                "not allowed here",
                help=f"write `{path.split('.')[-1]} = sweep(a, b, ...)` with whole values",
            )
        )


#: Integers in the IR fit a signed 64-bit integer (what the generated code and JSON readers
#: take); a larger literal is reported as too large for its key (E115).
MAX_INTEGER = 2**63 - 1


def _too_large(v: Number, path: str, ctx: Context, limit: str) -> Reject:
    digits = len(v.text.lstrip("+-"))
    shown = v.text if len(v.text) <= 24 else f"{v.text[:10]}…{v.text[-6:]} ({digits} characters)"
    return ctx.reject(
        error(
            "E115",
            f"`{shown}` is too large for `{path}`",
            v.span,
            f"at most {limit}",
            help="a typo? check the number of digits",
        )
    )


def integer(v: Value, path: str, ctx: Context) -> int:
    _no_sweep(v, path, ctx)
    if isinstance(v, Number):
        if isinstance(v.value, int):
            if abs(v.value) > MAX_INTEGER:
                raise _too_large(v, path, ctx, "2^63 - 1")
            return v.value
        if math.isinf(v.value) and re.fullmatch(r"[+-]?\d+", v.text):
            raise _too_large(v, path, ctx, "2^63 - 1")  # a literal too long to convert
        # 1e3 is a natural way to write a thousand steps; 1.5 is not an integer.
        if "e" in v.text.lower() and math.isfinite(v.value) and v.value.is_integer():
            if abs(v.value) > MAX_INTEGER:
                raise _too_large(v, path, ctx, "2^63 - 1")
            return int(v.value)
    if isinstance(v, String) and re.fullmatch(r"\s*[+-]?\d+\s*", v.value):
        raise ctx.wrong_type(path, v, "an integer", help=f"remove the quotes: {v.value.strip()}")
    raise ctx.wrong_type(path, v, "an integer")


def number(v: Value, path: str, ctx: Context) -> float:
    _no_sweep(v, path, ctx)
    if isinstance(v, Number):
        try:
            value = float(v.value)
        except OverflowError:  # an integer literal beyond the largest float
            raise _too_large(v, path, ctx, "1.8e308") from None
        if math.isinf(value):
            raise _too_large(v, path, ctx, "1.8e308")
        return value
    if isinstance(v, String) and re.fullmatch(r"\s*[+-]?[\d.eE+-]+\s*", v.value):
        raise ctx.wrong_type(path, v, "a number", help=f"remove the quotes: {v.value.strip()}")
    raise ctx.wrong_type(path, v, "a number")


def boolean(v: Value, path: str, ctx: Context) -> bool:
    _no_sweep(v, path, ctx)
    if isinstance(v, Bool):
        return v.value
    help = None
    if isinstance(v, Ident | String) and str(
        getattr(v, "name", getattr(v, "value", ""))
    ).lower() in (
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
    ):
        help = "write `true` or `false` (lower case, no quotes)"
    raise ctx.wrong_type(path, v, "`true` or `false`", help=help)


def string(v: Value, path: str, ctx: Context) -> str:
    _no_sweep(v, path, ctx)
    if isinstance(v, String):
        return v.value
    help = f'quote it: "{v.name}"' if isinstance(v, Ident) else None
    raise ctx.wrong_type(path, v, 'a string in double quotes ("...")', help=help)


def name_or_string(v: Value, path: str, ctx: Context) -> str:
    _no_sweep(v, path, ctx)
    if isinstance(v, String):
        return v.value
    if isinstance(v, Ident):
        return v.name
    raise ctx.wrong_type(path, v, "a name or a string")


def env_value(v: Value, path: str, ctx: Context) -> str:
    _no_sweep(v, path, ctx)
    if isinstance(v, String):
        return v.value
    if isinstance(v, Ident | Duration):
        return v.name if isinstance(v, Ident) else v.text
    if isinstance(v, Number):
        return v.text
    if isinstance(v, Bool):
        return "true" if v.value else "false"
    raise ctx.wrong_type(path, v, "a string, number or name")


def choice(literal: Any) -> Converter:
    """An identifier out of an IR `Literal` type (the IR is the one list of choices)."""
    choices: tuple[str, ...] = typing.get_args(literal)

    def convert(v: Value, path: str, ctx: Context) -> str:
        _no_sweep(v, path, ctx)
        if isinstance(v, Ident) and v.name in choices:
            return v.name
        if isinstance(v, Ident):
            guess = did_you_mean(v.name, choices)
            raise ctx.reject(
                error(
                    "E105",
                    f"unknown value `{v.name}` for `{path}`; expected {quote_list(choices)}",
                    v.span,
                    "unknown value",
                    help=f"did you mean `{guess}`?" if guess else None,
                )
            )
        help = None
        if isinstance(v, String) and v.value in choices:
            help = f"write `{v.value}` without quotes"
        elif isinstance(v, Number) and (guess := did_you_mean(v.text, choices)):
            help = f"did you mean `{guess}`?"
        raise ctx.wrong_type(path, v, f"one of {quote_list(choices)}", help=help)

    return convert


#: A list reports at most this many wrong elements.
MAX_LIST_ERRORS = 20


def list_of(elem: Converter, *, scalar_ok: bool = False) -> Converter:
    def convert(v: Value, path: str, ctx: Context) -> list[Any]:
        _no_sweep(v, path, ctx)
        if not isinstance(v, ListValue):
            if scalar_ok:
                return [elem(v, path, ctx)]
            raise ctx.wrong_type(path, v, "a list `[...]`")
        out = []
        bad = 0
        for i, item in enumerate(v.items):
            ctx.spans.values[f"{path}.{i}"] = item.span
            try:
                out.append(elem(item, path, ctx))
            except Reject:
                bad += 1
                if bad == MAX_LIST_ERRORS:  # the rest are most likely the same mistake
                    break
        if bad:
            raise Reject()
        return out

    return convert


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")

_CLOCK = re.compile(r"(\d+):(\d\d)(?::(\d\d))?")


def minutes(v: Value, path: str, ctx: Context) -> int:
    """A duration (``1h30m``, ``90m``, ``01:30:00``) in whole minutes; a bare integer is
    read as minutes."""
    _no_sweep(v, path, ctx)
    if isinstance(v, Number) and isinstance(v.value, int):
        return integer(v, path, ctx)
    if not isinstance(v, Duration):
        raise ctx.wrong_type(path, v, "a duration such as `1h30m` or `01:30:00`")
    if max(len(run) for run in re.findall(r"\d+", v.text)) > 12:  # int() of it could fail
        raise ctx.reject(
            error(
                "E115",
                f"`{v.text[:24]}{'…' if len(v.text) > 24 else ''}` is too large for `{path}`",
                v.span,
                "too large",
                help="a typo? check the number of digits",
            )
        )
    if m := _CLOCK.fullmatch(v.text):
        h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
        if mi >= 60 or s >= 60:
            raise ctx.reject(
                error(
                    "E113",
                    f"`{v.text}`: minutes and seconds of a clock time are below 60",
                    v.span,
                    "not a valid clock time",
                    help="write HH:MM:SS, e.g. `01:30:00`",
                )
            )
    else:
        m = _DURATION.fullmatch(v.text)
        assert m is not None  # the DURATION terminal only matches this shape
        h, mi, s = int(m[1] or 0), int(m[2] or 0), int(m[3] or 0)
    total = h * 3600 + mi * 60 + s
    if total % 60:
        raise ctx.reject(
            error(
                "E113",
                f"`{path}` is a whole number of minutes, got `{v.text}`",
                v.span,
                "seconds are not allowed here",
                help=f"round to `{total // 60}m` or `{total // 60 + 1}m`",
            )
        )
    return total // 60


def _call(v: Value, path: str, ctx: Context, names: Sequence[str], what: str) -> Call:
    if not isinstance(v, Call):
        raise ctx.wrong_type(path, v, what)
    if v.name.text == "sweep":
        _no_sweep(v, path, ctx)
    if v.name.text not in names:
        guess = did_you_mean(v.name.text, names)
        raise ctx.reject(
            error(
                "E111",
                f"unknown function `{v.name.text}` for `{path}`; expected {quote_list(names)}",
                v.name.span,
                "unknown function",
                help=f"did you mean `{guess}`?" if guess else None,
            )
        )
    return v


def _arity(c: Call, path: str, ctx: Context, n: int, usage: str) -> None:
    if len(c.args) != n:
        raise ctx.reject(
            error(
                "E111",
                f"`{c.name.text}` takes {n} argument{'s' * (n != 1)}, got {len(c.args)}",
                c.span,
                f"expected {usage}",
                help=f"write `{usage}`",
            )
        )


def beta(v: Value, path: str, ctx: Context) -> dict[str, Any]:
    """``4.0`` | ``linear(a, b)`` | ``geometric(a, b)`` | ``eras([a, b, ...])``."""
    _no_sweep(v, path, ctx)
    if isinstance(v, Number):
        ctx.spans.values[f"{path}.value"] = v.span
        return {"kind": "constant", "value": number(v, path, ctx)}
    what = "a number or `linear(a, b)`, `geometric(a, b)`, `eras([a, b, ...])`"
    c = _call(v, path, ctx, ("linear", "geometric", "eras"), what)
    if c.name.text == "eras":
        _arity(c, path, ctx, 1, "eras([4.0, 5.0, 6.0])")
        values = list_of(number)(c.args[0], f"{path}.values", ctx)
        return {"kind": "eras", "values": values}
    _arity(c, path, ctx, 2, f"{c.name.text}(start, end)")
    ctx.spans.values[f"{path}.start"] = c.args[0].span
    ctx.spans.values[f"{path}.end"] = c.args[1].span
    start = number(c.args[0], path, ctx)
    end = number(c.args[1], path, ctx)
    return {"kind": c.name.text, "start": start, "end": end}


def hmc_step_size(v: Value, path: str, ctx: Context) -> dict[str, Any]:
    """``0.1`` | ``auto`` | ``auto(0.8)``."""
    _no_sweep(v, path, ctx)
    if isinstance(v, Number):
        ctx.spans.values[f"{path}.value"] = v.span
        return {"kind": "fixed", "value": number(v, path, ctx)}
    if isinstance(v, Ident) and v.name == "auto":
        return {"kind": "auto"}
    c = _call(v, path, ctx, ("auto",), "a number or `auto(acceptance)`")
    if not c.args:
        return {"kind": "auto"}
    _arity(c, path, ctx, 1, "auto(0.8)")
    ctx.spans.values[f"{path}.target_acceptance"] = c.args[0].span
    return {"kind": "auto", "target_acceptance": number(c.args[0], path, ctx)}
