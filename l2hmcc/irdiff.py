"""``l2hmcc diff A B``: what differs between two experiments, field by field.

A and B are specs or job directories. Each side is resolved to its IR (a spec: lowered, with
the target's backend if ``--target``; a job directory: the IR its manifest recorded, which is
what ran) and the two IRs are compared as data, not as text: a change of layout, comments or
of how a value is written (``1e-3`` vs ``0.001``) is no difference, and a defaulted field
that the other side sets is one. Each change names the IR field path, the old and the new
value, and where each side's value was written (``file:line:col``; a job directory's
locations point into its spec copies), or that it is a default.

Objects are compared key by key; lists are compared whole (a list is one value, as in the
spec), except the spec's sweeps, compared per swept key (``sweeps[lattice.beta]``); a union
whose variant changes (``lattice.beta`` from ``constant`` to ``linear``,
``distributed`` from ``ddp`` to ``deepspeed``) is one change of the whole object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from l2hmcc.source import Span

if TYPE_CHECKING:
    from l2hmcc.diagnostics import Diagnostic
    from l2hmcc.source import Source
    from l2hmcc.spanmap import SpanMap

#: Tags of the IR's discriminated unions: a different tag is a different variant.
_TAGS = ("kind", "backend")


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


@dataclass
class Side:
    """One side of a diff: what was given, its IR as JSON data, where its fields were written."""

    given: str
    kind: str
    """``spec`` or ``job``."""
    ir: dict[str, Any] | None = None
    spans: SpanMap | None = None
    target: str | None = None
    diagnostics: list[Diagnostic] | None = None
    sources: dict[str, Source] | None = None
    error: str | None = None


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any
    old_at: Span | None
    new_at: Span | None

    @property
    def status(self) -> str:
        if self.old is ABSENT:
            return "added"
        return "removed" if self.new is ABSENT else "changed"


def compare(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """``(path, old, new)`` for every leaf that differs, in the order of ``a``'s keys then
    ``b``'s new ones."""
    if isinstance(a, dict) and isinstance(b, dict):
        if any(t in a and t in b and a[t] != b[t] for t in _TAGS):
            return [(path, a, b)]
        out: list[tuple[str, Any, Any]] = []
        for key in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}.{key}" if path else str(key)
            out.extend(compare(a.get(key, ABSENT), b.get(key, ABSENT), sub))
        return out
    if a is not ABSENT and b is not ABSENT and type(a) is type(b) and a == b:
        return []
    return [(path, a, b)]


def comparable(ir: dict[str, Any]) -> dict[str, Any]:
    """The IR as compared: ``sweeps`` keyed by the swept path (``sweeps[lattice.beta]``), so
    that a sweep that changes is one change at its own key."""
    out = dict(ir)
    if "sweeps" in out:
        out["sweeps"] = {s["path"]: s["values"] for s in out["sweeps"]}
    return out


def _display(path: str) -> str:
    if path.startswith("sweeps."):
        return f"sweeps[{path.removeprefix('sweeps.')}]"
    return path


def location(spans: SpanMap | None, path: str) -> Span | None:
    """Where the value at ``path`` was written: its own value span, or the value of an
    enclosing field (``lattice.beta`` for ``lattice.beta.start``), or for a block the block's
    header; None for a default."""
    if spans is None:
        return None
    if path.startswith("sweeps[") and path.endswith("]"):
        return spans.values.get(path[len("sweeps[") : -1])  # the `sweep(...)` call
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        span = spans.values.get(".".join(parts[:i]))
        if span is not None:
            return span
    return spans.keys.get(path)  # a whole block (a union's variant): its header


def diff(a: Side, b: Side) -> list[FieldChange]:
    assert a.ir is not None and b.ir is not None
    changes = []
    for raw, old, new in compare(comparable(a.ir), comparable(b.ir)):
        path = _display(raw)
        changes.append(
            FieldChange(path, old, new, location(a.spans, path), location(b.spans, path))
        )
    if a.target and b.target and a.target != b.target:
        changes.insert(0, FieldChange("(target)", a.target, b.target, None, None))
    return changes


# ---------------------------------------------------------------------------------------------
# Loading a side


def load_side(given: str, target: str | None) -> Side:
    """A spec (checked, with ``target``'s backend if given) or a job directory (its recorded
    IR; spans from lowering its spec copies again)."""
    from l2hmcc import driver, record

    if record.is_job_directory(given):
        side = Side(given, "job")
        try:
            rec = record.read(given)
        except record.RecordError as e:
            side.error = str(e)
            return side
        if rec.job is None:
            side.error = (
                f"`{given}` is a sweep directory: diff two of its points"
                " (their job directories), or the spec with two `--set` values"
            )
            return side
        side.ir = rec.job.ir.model_dump(mode="json")
        side.target = rec.job.target.name
        loaded = record.load(rec)
        side.spans = loaded.spans
        side.sources = loaded.sources
        return side
    side = Side(given, "spec", target=target)
    outcome = driver.check(given, target=target)
    side.diagnostics, side.sources = outcome.diagnostics, outcome.sources
    if outcome.spec is None or not outcome.ok:
        side.error = f"`{given}` has errors"
        return side
    side.ir = outcome.spec.model_dump(mode="json")
    side.spans = outcome.spans
    return side


# ---------------------------------------------------------------------------------------------
# Output


def show_value(v: Any) -> str:
    if v is ABSENT:
        return "(absent)"
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


def show_location(span: Span | None) -> str:
    return "(default)" if span is None else str(span)


def render_text(a: Side, b: Side, changes: list[FieldChange]) -> str:
    lines = [f"--- {a.given}", f"+++ {b.given}"]
    for c in changes:
        lines.append(f"{c.path}: {show_value(c.old)} → {show_value(c.new)}")
        if c.path != "(target)":
            lines.append(f"    {show_location(c.old_at)} → {show_location(c.new_at)}")
    n = len(changes)
    lines.append(
        "no differences" if not n else f"{n} field differs" if n == 1 else f"{n} fields differ"
    )
    return "\n".join(lines) + "\n"


def _json_location(span: Span | None) -> dict[str, Any] | None:
    if span is None:
        return None
    return {"file": span.file, "line": span.line, "col": span.col}


def to_json(a: Side, b: Side, changes: list[FieldChange]) -> dict[str, Any]:
    def side(s: Side) -> dict[str, Any]:
        return {"given": s.given, "kind": s.kind, "target": s.target}

    return {
        "a": side(a),
        "b": side(b),
        "same": not changes,
        "changes": [
            {
                "path": c.path,
                "status": c.status,
                "old": None if c.old is ABSENT else c.old,
                "new": None if c.new is ABSENT else c.new,
                "old_location": _json_location(c.old_at),
                "new_location": _json_location(c.new_at),
            }
            for c in changes
        ],
    }
