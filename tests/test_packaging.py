"""The wheel ships the grammar, the templates and the schemas inside the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_grammar_templates_and_schemas(tmp_path: Path) -> None:
    # Build from a copy of the tracked sources, so the build cannot touch the work tree.
    src = tmp_path / "src"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        rel = Path(name.decode())
        if rel.parts[0] in ("tests", "bench", "docs", ".ci") or not (ROOT / rel).is_file():
            continue
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("l2hmcc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "l2hmcc/grammar/l2h.lark" in names
    assert "l2hmcc/templates/__init__.py" in names
    templates = {n for n in names if n.startswith("l2hmcc/templates/") and n.endswith(".j2")}
    shipped = {
        "l2hmcc/" + p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*.j2")
    }
    assert shipped <= templates
    assert {"l2hmcc/schemas/ir.schema.json", "l2hmcc/schemas/manifest.schema.json"} <= names
    assert "l2hmcc/cli.py" in names and "l2hmcc/checks/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "l2hmcc = l2hmcc.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
