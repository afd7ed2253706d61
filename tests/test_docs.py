"""The documentation says what the code does: every key documented, the README's commands."""

from __future__ import annotations

import os
import re
from pathlib import Path

from l2hmcc.blocks import BLOCKS

ROOT = Path(__file__).resolve().parent.parent


def test_language_reference_documents_every_block_and_key() -> None:
    text = (ROOT / "docs/language.md").read_text(encoding="utf-8")
    sections = re.split(r"\n### ", text)
    for block, schema in BLOCKS.items():
        [section] = [s for s in sections if s.startswith(f"`{block}")]
        for key in [*schema.keys, *schema.nested]:
            assert f"`{key}" in section, f"{block}.{key} is not documented"


def test_walkthrough_uses_every_key() -> None:
    text = (ROOT / "examples/walkthrough.l2h").read_text(encoding="utf-8")
    skip = {
        "steps",
        "zero_stage",
        "find_unused_parameters",
        "fp16_allreduce",
        "account",
        "queue",
        "filesystems",
    }
    for schema in BLOCKS.values():
        for key in schema.keys:
            if key not in skip:
                assert re.search(rf"\b{key} = ", text), key


def test_readme_has_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "scripts/demo.sh" in text and "scripts/test.sh" in text
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert os.access(ROOT / script, os.X_OK)
    assert "scripts/test.sh" in (ROOT / ".ci/run").read_text()


def test_architecture_names_every_stage() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for module in ("source", "syntax", "lower", "ir", "checks", "targets", "emit", "driver", "cli"):
        assert f"{module}" in text


def test_readme_spec_checks_clean(tmp_path: Path) -> None:
    from l2hmcc import driver

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    spec = text.split("## A spec", 1)[1].split("```")[1]
    path = tmp_path / "readme.l2h"
    path.write_text(spec, encoding="utf-8")
    outcome = driver.check(str(path), target="pytorch-deepspeed")
    assert outcome.diagnostics == []
