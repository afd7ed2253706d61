"""Every IR field reaches the generated job, or says why not.

For each shipped spec (and the walkthrough) rendered by the targets it is meant for, every
leaf field of the IR is changed to another valid value and the job rendered again: a field is
consumed when some such change changes a generated file (``manifest.json``, which records the
whole IR, is not part of a target's render). A field no change reaches must be on
``COMPILER_ONLY`` with the reason; and the list holds nothing that is in fact consumed.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from l2hmcc import driver, ir, targets
from l2hmcc.targets.base import RenderContext

ROOT = Path(__file__).resolve().parent.parent

#: (spec, IR changes, targets): the shipped specs with the targets they are written for, the
#: walkthrough (every key written), and variants for what no shipped spec chooses.
BASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("specs/u1.l2h", {}, ("pytorch", "tensorflow")),
    ("specs/u1-seed.l2h", {}, ("pytorch",)),
    ("specs/u1-report.l2h", {}, ("pytorch",)),
    ("specs/su3.l2h", {}, ("pytorch-deepspeed",)),
    ("specs/aurora.l2h", {}, ("pytorch-ddp",)),
    ("examples/walkthrough.l2h", {}, ("pytorch-ddp",)),
    ("specs/su3-smoke.l2h", {}, ("tensorflow",)),
    (
        "specs/u1-smoke.l2h",
        {"distributed": {"backend": "horovod"}, "dynamics.mask": "random"},
        ("pytorch-horovod", "tensorflow-horovod"),
    ),
]

#: IR fields that no generated file holds, and why.
COMPILER_ONLY = {
    "ir_version": "the version of the IR's own layout (manifest.json)",
    "sweeps": "expanded into one job per point by sweep.py before rendering",
    "lattice.action": "one choice (`wilson`): nothing to vary",
}

CTX = RenderContext(spec_name="t.l2h", spec_text="", spec_sha256="0" * 64, version="0")


def leaves(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every leaf field path of ``model``, union variants included (their tags left out)."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = info.annotation
        models = [a for a in _flatten(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not models:
            if name not in ("kind", "backend") or not prefix:
                yield path
            continue
        for m in models:
            yield from leaves(m, path + ".")


def _flatten(ann: Any) -> list[Any]:
    args = typing.get_args(ann)
    if not args or typing.get_origin(ann) is typing.Literal:
        return [ann]
    if typing.get_origin(ann) is typing.Annotated:
        return _flatten(args[0])
    out = []
    for a in args:
        out.extend(_flatten(a))
    return out


def candidates(value: Any, info: Any) -> list[Any]:
    literal = [a for a in _flatten(info.annotation) if typing.get_origin(a) is typing.Literal]
    if literal:
        return [c for a in literal for c in typing.get_args(a) if c != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2]
    if isinstance(value, float):
        return [value * 1.5, value * 0.5, value + 0.1]
    if isinstance(value, str):
        return [value + "x", "prod", "debug-scaling"]
    if isinstance(value, list):
        if value and isinstance(value[0], str):
            return [[*value, "x"], value[:-1], ["home"]]
        if value:
            return [[*value, value[-1]], value[:-1], [v * 2 for v in value]]
        return [["home"], [1]]
    if isinstance(value, dict):
        return [{**value, "L2HMCC_TEST": "1"}]
    if value is None:
        return [2, "debug", "x"]
    return []


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    out = dict(data)
    out[head] = value if not rest else set_path(data[head], rest, value)
    return out


def field_info(spec: ir.Spec, path: str) -> tuple[Any, Any] | None:
    """(the value, its FieldInfo) at ``path`` of this spec, or None where the path is absent
    (another union variant, a null block)."""
    obj: Any = spec
    *parents, name = path.split(".")
    for p in parents:
        obj = getattr(obj, p, None)
        if obj is None:
            return None
    if not isinstance(obj, BaseModel) or name not in type(obj).model_fields:
        return None
    return getattr(obj, name), type(obj).model_fields[name]


def rendered(spec: ir.Spec, target: str) -> dict[str, bytes] | None:
    t = targets.get(target)
    assert t is not None
    try:
        bundle = t.render(spec, CTX)
    except Exception:  # an odd combination of mutated values: not a usable mutation
        return None
    return {p: bundle[p].data for p in bundle}


@pytest.fixture(scope="module")
def consumed() -> dict[str, str]:
    """Each consumed leaf path and the base that showed it."""
    found: dict[str, str] = {}
    paths = list(leaves(ir.Spec))
    for spec_path, edits, target_names in BASES:
        outcome = driver.load(str(ROOT / spec_path))
        assert outcome.spec is not None, outcome.diagnostics
        data = outcome.spec.model_dump(mode="json")
        for path, value in edits.items():
            data = set_path(data, path, value)
        base = ir.Spec.model_validate(data)
        data = base.model_dump(mode="json")
        for target in target_names:
            reference = rendered(base, target)
            assert reference is not None
            for path in paths:
                if path in found:
                    continue
                got = field_info(base, path)
                if got is None:
                    continue
                value, info = got
                jvalue = _dump(base, path)
                for c in candidates(jvalue if value is not None else None, info):
                    try:
                        changed = ir.Spec.model_validate(set_path(data, path, c))
                    except (ValidationError, KeyError, TypeError):
                        continue
                    out = rendered(changed, target)
                    if out is not None and out != reference:
                        found[path] = f"{spec_path} ({target})"
                        break
    return found


def _dump(spec: ir.Spec, path: str) -> Any:
    data: Any = spec.model_dump(mode="json")
    for p in path.split("."):
        data = data[p]
    return data


def test_every_ir_field_is_consumed_or_listed(consumed: dict[str, str]) -> None:
    paths = set(leaves(ir.Spec))
    listed = {p for p in paths if any(p == c or p.startswith(c + ".") for c in COMPILER_ONLY)}
    missing = sorted(paths - set(consumed) - listed)
    assert missing == [], f"IR fields no generated file holds: {missing}"


def test_compiler_only_fields_are_not_consumed(consumed: dict[str, str]) -> None:
    wrongly = {c for c in COMPILER_ONLY for p in consumed if p == c or p.startswith(c + ".")}
    assert wrongly == set()
