"""Small helpers that lay out generated Python the way ``ruff format`` does.

The generated ``train.py`` must already be ruff-format stable (no formatter subprocess at
compile time; goldens stay byte-identical). Templates lay out the fixed code; the few lines
whose length depends on the spec (imports, calls) are laid out here: on one line when they fit
in ruff's default 88 columns, otherwise one item per line with a trailing comma (ruff's
"magic trailing comma" then keeps them so).
"""

from __future__ import annotations

from collections.abc import Iterable

LINE_LENGTH = 88
"""ruff format's default line length (a job directory has no ruff configuration)."""

INDENT = "    "


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's isort order within one ``from`` import: CONSTANTS, Classes, then functions."""
    if name.isupper() and len(name) > 1:
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    return kind, name.lower()


def from_import(module: str, names: Iterable[str]) -> str:
    """``from module import a, b`` (sorted like ruff's isort), wrapped when too long."""
    ordered = sorted(set(names), key=_isort_key)
    if not ordered:
        raise ValueError(f"from_import({module!r}): no names")
    line = f"from {module} import {', '.join(ordered)}"
    if len(line) <= LINE_LENGTH:
        return line
    body = "".join(f"{INDENT}{n},\n" for n in ordered)
    return f"from {module} import (\n{body})"


def import_sort_key(line: str) -> tuple[int, str]:
    """Order of import statements within one block: ``import x`` lines first, then
    ``from x import`` lines, each by module name (ruff's isort defaults)."""
    words = line.split()
    return (0 if words[0] == "import" else 1), words[1].lower()
