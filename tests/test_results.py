"""The published layouts of a job's summary.json and run.json (`l2hmcc.results`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from l2hmcc import schemas


@pytest.mark.parametrize("name", ["summary.schema.json", "run.schema.json"])
def test_committed_schema_is_current_and_documented(name: str) -> None:
    committed = (schemas.DIRECTORY / name).read_text(encoding="utf-8")
    assert committed == schemas.generate()[name], (
        f"{name} is out of date: run `python -m l2hmcc.schemas` and commit the diff"
    )
    schema = json.loads(committed)
    missing: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, prop in node.get("properties", {}).items():
                if "description" not in prop:
                    missing.append(f"{path}.{key}")
            for key, value in node.items():
                walk(value, f"{path}/{key}")

    walk(schema, "")
    assert missing == []


def test_summary_schema_has_the_issue_s_fields() -> None:
    schema = json.loads((schemas.DIRECTORY / "summary.schema.json").read_text())
    sampler = schema["$defs"]["Sampler"]["properties"]
    for key in ("acceptance", "plaquette", "q2", "tau_int_q", "trajectories_per_s"):
        assert key in sampler
    assert {"equilibrated", "equilibrium"} <= set(sampler)
    assert set(schema["$defs"]["Equilibrium"]["properties"]) >= {"drift_z", "threshold", "reason"}
    assert set(schema["$defs"]["Plaquette"]["properties"]) >= {"mean", "err", "exact"}
    assert set(schema["$defs"]["TauInt"]["properties"]) == {"value", "err", "converged"}
    assert {"l2hmc", "hmc", "improvement", "improvement_note", "spec_sha256"} <= set(
        schema["properties"]
    )
