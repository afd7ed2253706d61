"""What a job directory carries reads as a self-contained document: the runtime copied into
every job and the templates of its generated files cite no development history (issue numbers,
the request notes under docs/, the workspace outside the repository)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORY = re.compile(r"\bissues? \d+|requests-\d|\.\./shared|/work/", re.IGNORECASE)


def test_the_carried_runtime_and_templates_cite_no_history() -> None:
    files = [
        *sorted((ROOT / "l2hmcc/runtime").rglob("*.py")),
        *sorted((ROOT / "templates").rglob("*.j2")),
    ]
    assert len(files) > 30
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if HISTORY.search(line)
    ]
    assert found == []
