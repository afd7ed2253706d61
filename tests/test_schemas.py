"""The committed JSON Schemas are current, and document every field."""

from __future__ import annotations

from typing import Any

import pytest

from l2hmcc import schemas


@pytest.mark.parametrize("name", ["ir.schema.json", "manifest.schema.json", "sweep.schema.json"])
def test_committed_schema_is_current(name: str) -> None:
    committed = (schemas.DIRECTORY / name).read_text(encoding="utf-8")
    assert committed == schemas.generate()[name], (
        f"{name} is out of date: run `python -m l2hmcc.schemas` and commit the diff"
    )


def _properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        for key, prop in node.get("properties", {}).items():
            out.append((f"{path}.{key}", prop))
        for key, value in node.items():
            out.extend(_properties(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_properties(value, f"{path}[{i}]"))
    return out


def test_every_ir_field_has_a_description() -> None:
    import json

    schema = json.loads(schemas.generate()["ir.schema.json"])
    props = _properties(schema)
    assert len(props) > 60
    missing = [p for p, prop in props if "description" not in prop]
    assert missing == []
