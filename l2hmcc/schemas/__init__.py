"""The committed JSON Schemas of the IR, of a job's manifest.json and a sweep's sweep.json,
and of a job's output/summary.json and output/run.json (`l2hmcc.results`).

``python -m l2hmcc.schemas`` rewrites them; ``tests/test_schemas.py`` fails when they are
out of date, so a change to the IR shows up in review as a schema diff.
"""

from __future__ import annotations

import json
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent


def generate() -> dict[str, str]:
    """File name → JSON text of every schema, as committed."""
    from pydantic import BaseModel

    from l2hmcc.ir import Spec
    from l2hmcc.manifest import Manifest, SweepManifest
    from l2hmcc.results import RunRecord, Summary

    models: tuple[tuple[str, type[BaseModel]], ...] = (
        ("ir.schema.json", Spec),
        ("manifest.schema.json", Manifest),
        ("sweep.schema.json", SweepManifest),
        ("summary.schema.json", Summary),
        ("run.schema.json", RunRecord),
    )
    out = {}
    for name, model in models:
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[name] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def write() -> list[Path]:
    written = []
    for name, text in generate().items():
        path = DIRECTORY / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
