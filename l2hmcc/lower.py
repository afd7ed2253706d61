"""Lower the syntax tree to the IR, keeping a map from IR paths back to source spans.

The grammar only knows blocks and attributes; this module knows which blocks and keys exist
(`BLOCKS`, the schema table), converts each value to its IR type, fills in the defaults that
depend on other fields (x update and precision per gauge group, evaluation chains), and
validates the result with pydantic. Every problem becomes a diagnostic pointing at the user's
text: unknown keys get a "did you mean", wrong types say what was expected and what was found,
and pydantic's range errors are mapped back through the `SpanMap`.

`sweep(a, b, ...)` values are typed here: the field gets the first value, the spec records the
scan in `Spec.sweeps`, and every other value is checked by lowering the spec again with that
value in place (so `leapfrog = sweep(4, 0)` reports the 0).
"""

from __future__ import annotations

import difflib
import math
import re
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError

from l2hmcc import ir
from l2hmcc.diagnostics import Diagnostic, Label, error, finalize
from l2hmcc.source import Source, Span
from l2hmcc.syntax import (
    Attribute,
    Block,
    Bool,
    Call,
    Duration,
    Ident,
    Item,
    ListValue,
    Name,
    Number,
    SpecFile,
    String,
    Value,
    parse_value,
)

# ---------------------------------------------------------------------------------------------
# Span map


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


@dataclass(frozen=True)
class SweepSite:
    """A ``key = sweep(a, b, ...)`` attribute: its key path (``lattice.beta``), the attribute
    and the call, whose arguments are the values of the scan (`l2hmcc.sweep` expands them)."""

    path: str
    attribute: Attribute
    call: Call


@dataclass(frozen=True)
class LowerResult:
    spec: ir.Spec | None
    spans: SpanMap
    diagnostics: list[Diagnostic]
    sweeps: tuple[SweepSite, ...] = ()


# ---------------------------------------------------------------------------------------------
# Value converters: syntax value -> IR value, or a diagnostic


class _Reject(Exception):
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


def did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    """The closest choice to a misspelt ``word`` (case differences first), if any is close."""
    for c in choices:
        if c.lower() == word.lower():
            return c
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _quote_list(choices: Sequence[str]) -> str:
    quoted = [f"`{c}`" for c in choices]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


class _Ctx:
    """Collects diagnostics, spans and sweeps while lowering."""

    def __init__(self, file_span: Span, *, allow_sweep: bool = True) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.spans = SpanMap(file_span)
        self.sweeps: list[tuple[str, Attribute, Call, list[Any]]] = []
        self.allow_sweep = allow_sweep

    def reject(self, d: Diagnostic) -> _Reject:
        self.diagnostics.append(d)
        return _Reject()

    def wrong_type(self, path: str, v: Value, expected: str, help: str | None = None) -> _Reject:
        return self.reject(
            error(
                "E103",
                f"`{path}` expects {expected}, got {describe(v)}",
                v.span,
                f"expected {expected}",
                help=help,
            )
        )


Converter = Callable[[Value, str, _Ctx], Any]


def _no_sweep(v: Value, path: str, ctx: _Ctx) -> None:
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


def _too_large(v: Number, path: str, ctx: _Ctx, limit: str) -> _Reject:
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


def integer(v: Value, path: str, ctx: _Ctx) -> int:
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


def number(v: Value, path: str, ctx: _Ctx) -> float:
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


def boolean(v: Value, path: str, ctx: _Ctx) -> bool:
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


def string(v: Value, path: str, ctx: _Ctx) -> str:
    _no_sweep(v, path, ctx)
    if isinstance(v, String):
        return v.value
    help = f'quote it: "{v.name}"' if isinstance(v, Ident) else None
    raise ctx.wrong_type(path, v, 'a string in double quotes ("...")', help=help)


def name_or_string(v: Value, path: str, ctx: _Ctx) -> str:
    _no_sweep(v, path, ctx)
    if isinstance(v, String):
        return v.value
    if isinstance(v, Ident):
        return v.name
    raise ctx.wrong_type(path, v, "a name or a string")


def env_value(v: Value, path: str, ctx: _Ctx) -> str:
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

    def convert(v: Value, path: str, ctx: _Ctx) -> str:
        _no_sweep(v, path, ctx)
        if isinstance(v, Ident) and v.name in choices:
            return v.name
        if isinstance(v, Ident):
            guess = did_you_mean(v.name, choices)
            raise ctx.reject(
                error(
                    "E105",
                    f"unknown value `{v.name}` for `{path}`; expected {_quote_list(choices)}",
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
        raise ctx.wrong_type(path, v, f"one of {_quote_list(choices)}", help=help)

    return convert


#: A list reports at most this many wrong elements.
MAX_LIST_ERRORS = 20


def list_of(elem: Converter, *, scalar_ok: bool = False) -> Converter:
    def convert(v: Value, path: str, ctx: _Ctx) -> list[Any]:
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
            except _Reject:
                bad += 1
                if bad == MAX_LIST_ERRORS:  # the rest are most likely the same mistake
                    break
        if bad:
            raise _Reject()
        return out

    return convert


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_CLOCK = re.compile(r"(\d+):(\d\d)(?::(\d\d))?")


def minutes(v: Value, path: str, ctx: _Ctx) -> int:
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


def _call(v: Value, path: str, ctx: _Ctx, names: Sequence[str], what: str) -> Call:
    if not isinstance(v, Call):
        raise ctx.wrong_type(path, v, what)
    if v.name.text == "sweep":
        _no_sweep(v, path, ctx)
    if v.name.text not in names:
        guess = did_you_mean(v.name.text, names)
        raise ctx.reject(
            error(
                "E111",
                f"unknown function `{v.name.text}` for `{path}`; expected {_quote_list(names)}",
                v.name.span,
                "unknown function",
                help=f"did you mean `{guess}`?" if guess else None,
            )
        )
    return v


def _arity(c: Call, path: str, ctx: _Ctx, n: int, usage: str) -> None:
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


def beta(v: Value, path: str, ctx: _Ctx) -> dict[str, Any]:
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


def hmc_step_size(v: Value, path: str, ctx: _Ctx) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------------------------
# The schema table


@dataclass(frozen=True)
class Key:
    """One attribute of a block: its converter and the IR field it sets (same name unless
    ``ir``)."""

    convert: Converter
    ir: str | None = None


@dataclass(frozen=True)
class BlockSchema:
    keys: dict[str, Key]
    #: The label: (IR field it sets, converter), or None if the block takes no label.
    label: tuple[str, Converter] | None = None
    label_required: bool = False
    label_doc: str = ""
    #: The label selects a variant: under another label a block replaces the base's whole in
    #: an `extends` chain (`l2hmcc.compose.VARIANT_BLOCKS`, with the label an unlabelled
    #: block stands for in `l2hmcc.compose.UNLABELLED`, which equals ``label_default``).
    variant: bool = False
    label_default: str | None = None
    nested: dict[str, BlockSchema] = field(default_factory=dict)
    #: Free-form blocks (``env``) take any key; ``convert`` applies to every value.
    free: Converter | None = None
    required: tuple[str, ...] = ()


def _label_name(v: Value, path: str, ctx: _Ctx) -> str:
    assert isinstance(v, Ident)
    return v.name


BLOCKS: dict[str, BlockSchema] = {
    "experiment": BlockSchema(
        label=("name", _label_name),
        label_doc="the experiment's name (default: the spec's file name)",
        keys={"description": Key(string), "seed": Key(integer)},
    ),
    "lattice": BlockSchema(
        keys={
            "group": Key(choice(ir.GroupName)),
            "shape": Key(list_of(integer)),
            "action": Key(choice(ir.ActionName)),
            "beta": Key(beta),
            "start": Key(choice(ir.StartName)),
        },
        required=("group", "shape", "beta"),
    ),
    "dynamics": BlockSchema(
        keys={
            "leapfrog": Key(integer),
            "step_size": Key(number),
            "learnable_step_size": Key(boolean),
            "directions": Key(choice(ir.Directions)),
            "mask": Key(choice(ir.MaskKind)),
            "mask_seed": Key(integer),
            "x_update": Key(choice(ir.XUpdate)),
            "networks": Key(choice(ir.NetworkSharing)),
            "split_x": Key(boolean),
        }
    ),
    "network": BlockSchema(
        label=("kind", choice(ir.NetworkKind)),
        label_doc="the kind: l2hmc (the default) or none (no networks)",
        variant=True,
        label_default="l2hmc",
        keys={
            "embedding": Key(choice(ir.Embedding)),
            "hidden": Key(list_of(integer, scalar_ok=True)),
            "activation": Key(choice(ir.Activation)),
            "dropout": Key(number),
            "batch_norm": Key(boolean),
            "scale_s": Key(number),
            "scale_q": Key(number),
            "head_init": Key(number),
        },
        nested={
            "conv": BlockSchema(
                keys={
                    "filters": Key(list_of(integer, scalar_ok=True)),
                    "kernel": Key(list_of(integer, scalar_ok=True)),
                    "pool": Key(list_of(integer, scalar_ok=True)),
                    "padding": Key(choice(ir.ConvPadding)),
                },
                required=("filters",),
            )
        },
    ),
    "loss": BlockSchema(
        keys={
            "plaquette": Key(number),
            "charge": Key(number),
            "rmse": Key(number),
            "form": Key(choice(ir.LossForm)),
            "scale": Key(number),
            "aux_weight": Key(number),
        }
    ),
    "train": BlockSchema(
        keys={
            "steps": Key(integer),
            "eras": Key(integer),
            "steps_per_era": Key(integer),
            "chains": Key(integer),
            "optimizer": Key(choice(ir.Optimizer)),
            "lr": Key(number),
            "step_size_lr_factor": Key(number),
            "lr_schedule": Key(choice(ir.LrSchedule)),
            "lr_final": Key(number),
            "warmup_steps": Key(integer),
            "weight_decay": Key(number),
            "clip_norm": Key(number),
            "precision": Key(choice(ir.Precision)),
            "network_precision": Key(choice(ir.Precision)),
            "compile": Key(boolean),
            "checkpoint_every": Key(integer),
            "keep_checkpoints": Key(integer),
            "log_every": Key(integer),
        }
    ),
    "evaluate": BlockSchema(
        keys={
            "steps": Key(integer),
            "chains": Key(integer),
            "compile": Key(boolean),
            "ablation": Key(boolean),
        }
    ),
    "hmc": BlockSchema(
        keys={
            "steps": Key(integer),
            "chains": Key(integer),
            "step_size": Key(hmc_step_size),
            "trajectory_length": Key(number),
        }
    ),
    "thermalize": BlockSchema(
        keys={"max_trajectories": Key(integer), "window": Key(integer)},
    ),
    "distributed": BlockSchema(
        label=("backend", choice(ir.BackendName)),
        label_required=True,
        label_doc="the backend: none, ddp, horovod or deepspeed",
        variant=True,
        keys={
            "launcher": Key(name_or_string),
            "zero_stage": Key(integer),
            "find_unused_parameters": Key(boolean),
            "fp16_allreduce": Key(boolean),
        },
    ),
    "job": BlockSchema(
        label=("system", choice(ir.SystemName)),
        label_required=True,
        label_doc="the system: local, polaris, aurora or sunspot",
        variant=True,
        keys={
            "name": Key(name_or_string),
            "account": Key(string),
            "queue": Key(name_or_string),
            "nodes": Key(integer),
            "ranks_per_node": Key(integer),
            "walltime": Key(minutes, ir="walltime_min"),
            "filesystems": Key(list_of(name_or_string, scalar_ok=True)),
            "modules": Key(list_of(name_or_string, scalar_ok=True)),
            "preemptable": Key(boolean),
            "continue": Key(integer, ir="continue_jobs"),
        },
        nested={"env": BlockSchema(keys={}, free=env_value)},
    ),
}

#: Keys of the `distributed` block per backend (the IR model decides; this table only
#: phrases the error when a key belongs to another backend).
_BACKEND_KEYS = {
    name: set(model.model_fields) - {"backend"}
    for name, model in (
        ("none", ir.NoBackend),
        ("ddp", ir.DDP),
        ("horovod", ir.Horovod),
        ("deepspeed", ir.DeepSpeed),
    )
}

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ---------------------------------------------------------------------------------------------
# Lowering


#: The most points the sweeps of a spec may make (`l2hmcc.sweep.MAX_POINTS`; a test keeps
#: them equal).
MAX_SWEEP_POINTS = 1024


def lower(tree: SpecFile, source_name: str) -> LowerResult:
    """Lower a parsed spec to a resolved `ir.Spec` (None if there are errors)."""
    ctx = _Ctx(tree.span)
    spec = _lower(tree, source_name, ctx)
    diagnostics = list(ctx.diagnostics)
    # Check every other value of each sweep by lowering the spec with that value in place
    # (and every other sweep at its first value); not for more points than l2hmcc compiles,
    # which would take time in proportion for nothing.
    firsts: dict[int, Value] = {id(attr): call.args[0] for _, attr, call, _ in ctx.sweeps}
    calls = [call for _, _, call, _ in ctx.sweeps]
    count = math.prod(len(c.args) for c in calls)
    if count > MAX_SWEEP_POINTS:
        diagnostics.append(
            error(
                "E306",
                f"the sweeps make {count} points; l2hmcc compiles at most {MAX_SWEEP_POINTS}",
                calls[0].span,
                f"{' × '.join(str(len(c.args)) for c in calls)} points",
                secondary=[Label(c.span, "") for c in calls[1:]],
                help="split the scan into several specs (`extends` a common base)",
            )
        )
    for _path, attr, call, _values in ctx.sweeps if count <= MAX_SWEEP_POINTS else ():
        for arg in call.args[1:]:
            variant = replace_values(tree, {**firsts, id(attr): arg})
            vctx = _Ctx(tree.span, allow_sweep=False)
            _lower(variant, source_name, vctx)
            diagnostics.extend(vctx.diagnostics)
    sites = tuple(SweepSite(path, attr, call) for path, attr, call, _ in ctx.sweeps)
    return LowerResult(spec, ctx.spans, finalize(diagnostics), sites)


def replace_values(tree: SpecFile, values: dict[int, Value]) -> SpecFile:
    """The tree with the values of some attributes (keyed by ``id``) replaced."""

    def walk(items: tuple[Item, ...]) -> tuple[Item, ...]:
        out: list[Item] = []
        for it in items:
            if isinstance(it, Attribute) and id(it) in values:
                out.append(replace(it, value=values[id(it)]))
            elif isinstance(it, Block):
                out.append(replace(it, items=walk(it.items)))
            else:
                out.append(it)
        return tuple(out)

    return replace(tree, items=walk(tree.items))


def _lower(tree: SpecFile, source_name: str, ctx: _Ctx) -> ir.Spec | None:
    data: dict[str, Any] = {}
    seen: dict[str, Block] = {}
    for item in tree.items:
        if isinstance(item, Attribute):
            ctx.diagnostics.append(
                error(
                    "E009",
                    f"attribute `{item.key.text}` outside a block",
                    item.key.span,
                    "must be inside a block",
                    help=_home_of(item.key.text),
                )
            )
            continue
        kind = item.kind.text
        schema = BLOCKS.get(kind)
        if schema is None:
            guess = did_you_mean(kind, list(BLOCKS))
            ctx.diagnostics.append(
                error(
                    "E101",
                    f"unknown block `{kind}`",
                    item.kind.span,
                    "unknown block",
                    help=f"did you mean `{guess}`?"
                    if guess
                    else f"blocks are {_quote_list(list(BLOCKS))}",
                )
            )
            continue
        if kind in seen:
            ctx.diagnostics.append(
                error(
                    "E106",
                    f"duplicate block `{kind}`",
                    item.header,
                    "second definition",
                    secondary=[Label(seen[kind].header, "first defined here")],
                    help="merge the two blocks",
                )
            )
            continue
        seen[kind] = item
        data[kind] = _block(item, schema, kind, ctx)

    if "lattice" not in seen:
        ctx.diagnostics.append(
            error(
                "E108",
                "missing block `lattice`",
                ctx.spans.file_span,
                "",
                help="add e.g. `lattice { group = U1  shape = [16, 16]  beta = 4.0 }`",
            )
        )
    if "lattice" not in seen:
        return None
    # Go on after key and type errors (the rejected values are left out, so defaults stand
    # in), so that range and consistency errors are reported in the same run.
    _resolve(data, source_name, ctx)
    return _validate(data, ctx)


def _home_of(key: str) -> str:
    homes = [k for k, s in BLOCKS.items() if key in s.keys]
    if homes:
        return f"put it in {_quote_list([f'{h} {{ ... }}' for h in homes])}"
    return "attributes are written inside a block, e.g. `train { steps = 2000 }`"


def _block(block: Block, schema: BlockSchema, path: str, ctx: _Ctx) -> dict[str, Any]:
    ctx.spans.keys[path] = block.header
    out: dict[str, Any] = {}
    if block.label is not None:
        if schema.label is None:
            ctx.diagnostics.append(
                error(
                    "E110",
                    f"block `{path}` takes no label",
                    block.label.span,
                    "unexpected label",
                    help=f"write `{block.kind.text} {{ ... }}`"
                    + (
                        f"; did you mean `{block.label.text} = ...`?"
                        if block.label.text in schema.keys
                        else ""
                    ),
                )
            )
        else:
            field_name, convert_label = schema.label
            label_value = Ident(block.label.span, block.label.text)
            try:
                out[field_name] = convert_label(label_value, f"{path}.{field_name}", ctx)
                ctx.spans.values[f"{path}.{field_name}"] = block.label.span
            except _Reject:
                pass
    elif schema.label_required:
        ctx.diagnostics.append(
            error(
                "E110",
                f"block `{path}` needs a label: {schema.label_doc}",
                block.kind.span,
                "label missing",
                help=f"e.g. `{block.kind.text} {_label_example(path)} {{ ... }}`",
            )
        )
    first: dict[str, Name] = {}
    for item in block.items:
        if isinstance(item, Block):
            key = item.kind.text
            nested = schema.nested.get(key)
            if nested is None:
                ctx.diagnostics.append(_unknown(item.kind, path, schema, is_block=True))
                continue
            if key in first:
                ctx.diagnostics.append(_duplicate(item.kind, first[key], f"{path}.{key}", True))
                continue
            first[key] = item.kind
            out[key] = _block(item, nested, f"{path}.{key}", ctx)
            continue
        key = item.key.text
        kpath = f"{path}.{key}"
        if schema.free is not None:
            if not _ENV_NAME.fullmatch(key):
                ctx.diagnostics.append(
                    error(
                        "E104",
                        f"`{key}` is not a valid environment variable name",
                        item.key.span,
                        "letters, digits and `_` only",
                    )
                )
                continue
            convert: Converter = schema.free
            ir_name = key
        else:
            spec_key = schema.keys.get(key)
            if spec_key is None:
                ctx.diagnostics.append(_unknown(item.key, path, schema, is_block=False))
                continue
            convert, ir_name = spec_key.convert, spec_key.ir or key
        if key in first:
            ctx.diagnostics.append(_duplicate(item.key, first[key], kpath, False))
            continue
        first[key] = item.key
        ir_path = f"{path}.{ir_name}"
        ctx.spans.keys[ir_path] = item.key.span
        ctx.spans.values[ir_path] = item.value.span
        try:
            out[ir_name] = _attribute(item, convert, kpath, ctx)
        except _Reject:
            continue
    for req in schema.required:
        if req not in first:
            ctx.diagnostics.append(
                error(
                    "E109",
                    f"block `{path}` is missing `{req}`",
                    block.header,
                    f"needs `{req} = ...`",
                    help=_required_help(path, req),
                )
            )
    return out


def _attribute(item: Attribute, convert: Converter, path: str, ctx: _Ctx) -> Any:
    v = item.value
    if not (isinstance(v, Call) and v.name.text == "sweep"):
        return convert(v, path, ctx)
    if not ctx.allow_sweep:
        raise ctx.reject(error("E112", "nested sweep", v.span))
    if not v.args:
        raise ctx.reject(
            error(
                "E112",
                "`sweep()` needs at least one value",
                v.span,
                "empty sweep",
                help="write `sweep(a, b, ...)`",
            )
        )
    values = []
    bad = False
    for arg in v.args:
        try:
            values.append(convert(arg, path, ctx))
        except _Reject:
            bad = True
    if bad:
        raise _Reject()
    ctx.sweeps.append((path, item, v, values))
    ctx.spans.values.setdefault(path, v.span)  # sweeps are named by the key as written
    return values[0]


def _label_example(path: str) -> str:
    return {"distributed": "ddp", "job": "polaris"}.get(path, "NAME")


def _required_help(path: str, key: str) -> str:
    examples = {
        "lattice.group": "group = U1",
        "lattice.shape": "shape = [16, 16]",
        "lattice.beta": "beta = 4.0",
        "network.conv.filters": "filters = [4, 8]",
    }
    return f"add `{examples.get(f'{path}.{key}', f'{key} = ...')}`"


def _unknown(name: Name, path: str, schema: BlockSchema, *, is_block: bool) -> Diagnostic:
    key = name.text
    known = [*schema.keys, *schema.nested]
    guess = did_you_mean(key, known)
    what = "block" if is_block else "key"
    help: str | None
    if is_block and key in schema.keys:
        help = f"`{key}` is an attribute: write `{key} = ...`"
    elif not is_block and key in schema.nested:
        help = f"`{key}` is a block: write `{key} {{ ... }}`"
    elif guess:
        help = f"did you mean `{guess}`?"
    elif others := [b for b, s in BLOCKS.items() if key in s.keys]:
        help = f"`{key}` belongs in {_quote_list(others)}"
    else:
        help = f"`{path}` takes {_quote_list(known)}" if known else None
    return error(
        "E102" if not is_block else "E101",
        f"unknown {what} `{key}` in `{path}`",
        name.span,
        f"unknown {what}",
        help=help,
    )


def _duplicate(name: Name, first: Name, path: str, is_block: bool) -> Diagnostic:
    return error(
        "E106" if is_block else "E107",
        f"duplicate {'block' if is_block else 'key'} `{path}`",
        name.span,
        "second definition",
        secondary=[Label(first.span, "first defined here")],
        help="remove one of them",
    )


def _resolve(data: dict[str, Any], source_name: str, ctx: _Ctx) -> None:
    """Fill in the defaults that depend on other fields, and the train step forms."""
    exp = data.setdefault("experiment", {})
    if "name" not in exp:
        stem = PurePath(source_name).stem or "experiment"
        exp["name"] = re.sub(r"[^A-Za-z0-9_.-]", "-", stem).lstrip(".-") or "experiment"
    lattice = data.get("lattice", {})
    group = lattice.get("group", "U1")
    dyn = data.setdefault("dynamics", {})
    dyn.setdefault("x_update", "compact" if group == "U1" else "group")
    seed = exp.get("seed", ir.Experiment.model_fields["seed"].default)
    if 0 <= seed < 2**63:  # else `experiment.seed` is reported, and only there
        dyn.setdefault("mask_seed", seed)
    train = data.setdefault("train", {})
    train.setdefault("precision", "fp32" if group == "U1" else "fp64")
    net_default = train["precision"] if train["precision"] in ("fp32", "fp64") else "fp32"
    train.setdefault("network_precision", net_default)
    _resolve_steps(train, ctx)
    chains = train.get("chains", ir.Train.model_fields["chains"].default)
    evaluate = data.setdefault("evaluate", {})
    evaluate.setdefault("chains", chains)
    evaluate.setdefault("compile", train.get("compile", ir.Train.model_fields["compile"].default))
    data.setdefault("hmc", {}).setdefault("chains", chains)
    dist = data.get("distributed")
    if dist is not None:
        backend = dist.setdefault("backend", "none")
        for key in list(dist):
            if key != "backend" and key not in _BACKEND_KEYS.get(backend, set()):
                owners = [b for b, keys in _BACKEND_KEYS.items() if key in keys]
                ctx.diagnostics.append(
                    error(
                        "E102",
                        f"`{key}` is not an option of the `{backend}` backend",
                        ctx.spans.key(f"distributed.{key}"),
                        f"not a `{backend}` option",
                        help=f"`{key}` belongs to {_quote_list(owners)}",
                    )
                )
                del dist[key]
    _resolve_network(data, ctx)
    conv = (data.get("network") or {}).get("conv")
    if conv is not None and "filters" in conv:
        n = len(conv["filters"])
        conv.setdefault("kernel", [3] * n)
        conv.setdefault("pool", [1] * n)


def _resolve_network(data: dict[str, Any], ctx: _Ctx) -> None:
    """`network none` is no networks (IR ``null``): it takes no keys. `network l2hmc` is the
    same as an unlabelled `network` block."""
    net = data.get("network")
    if net is None:
        return
    kind = net.pop("kind", "l2hmc")
    if kind != "none":
        return
    for key in net:
        ctx.diagnostics.append(
            error(
                "E102",
                f"`{key}` is not an option of `network none`",
                ctx.spans.key(f"network.{key}"),
                "not an option of `network none`",
                secondary=[Label(ctx.spans.value("network.kind"), "no networks")],
                help="remove it, or write `network l2hmc { ... }` for networks",
            )
        )
    data["network"] = None


def _resolve_steps(train: dict[str, Any], ctx: _Ctx) -> None:
    steps = train.pop("steps", None)
    eras, per_era = train.get("eras"), train.get("steps_per_era")
    if steps is None:
        return
    if steps < 1:
        ctx.diagnostics.append(
            error(
                "E104",
                f"`train.steps` must be ≥ 1, got {steps}",
                ctx.spans.value("train.steps"),
                "out of range (must be ≥ 1)",
            )
        )
        return
    # `steps` is stored as steps_per_era: messages (and `l2hmcc diff`) about that field
    # point at what the user wrote.
    if "train.steps" in ctx.spans.values:
        ctx.spans.values.setdefault("train.steps_per_era", ctx.spans.values["train.steps"])
    if eras is None and per_era is None:
        train["eras"], train["steps_per_era"] = 1, steps
        return
    if per_era is None and eras:
        if steps % eras:
            ctx.diagnostics.append(
                error(
                    "E212",
                    f"`train.steps` = {steps} is not a multiple of `train.eras` = {eras}",
                    ctx.spans.value("train.steps"),
                    "not divisible",
                    secondary=[Label(ctx.spans.value("train.eras"), "eras")],
                    help="make steps a multiple of eras, or give `steps_per_era`",
                )
            )
            return
        train["steps_per_era"] = steps // eras
        return
    eras = eras or 1
    if per_era is not None and steps != eras * per_era:
        ctx.diagnostics.append(
            error(
                "E212",
                f"`train.steps` = {steps} disagrees with `eras` × `steps_per_era` ="
                f" {eras} × {per_era} = {eras * per_era}",
                ctx.spans.value("train.steps"),
                "conflicting step count",
                secondary=[Label(ctx.spans.value("train.steps_per_era"), "steps per era")],
                help="give either `steps` or `eras` with `steps_per_era`",
            )
        )


def _validate(data: dict[str, Any], ctx: _Ctx) -> ir.Spec | None:
    data["sweeps"] = [{"path": p, "values": _jsonable(vals)} for p, _, _, vals in ctx.sweeps]
    try:
        spec = ir.Spec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            if _length_is_fine(err):
                continue  # pydantic counts only the valid items; the bad item has its error
            if err["type"] == "missing":
                continue  # a required key: reported as E109, or its value was rejected
            ctx.diagnostics.append(_pydantic_diagnostic(err, ctx.spans))
        return None
    return None if any(d.is_error for d in ctx.diagnostics) else spec


def _length_is_fine(err: Any) -> bool:
    if err["type"] not in ("too_short", "too_long") or not isinstance(err["input"], list | tuple):
        return False
    n, ctx = len(err["input"]), err.get("ctx") or {}
    return bool(ctx.get("min_length", 0) <= n <= ctx.get("max_length", n))


def _jsonable(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


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


def _pydantic_diagnostic(err: Any, spans: SpanMap) -> Diagnostic:
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
            f"unknown value `{got}` for `{shown}`; expected {_quote_list(choices)}",
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


# ---------------------------------------------------------------------------------------------
# --set overrides


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
    return Source(f"--set[{index}]", text)


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
