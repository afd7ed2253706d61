"""Shared pytest options and fixtures (keep this file small; add yours below)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

GOLDENS = Path(__file__).parent / "goldens"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/goldens/ instead of comparing (review the diff)",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden("pbs/x.pbs", text)``: compare ``text`` with tests/goldens/pbs/x.pbs, or write it
    there under ``--update-goldens``."""
    update = bool(request.config.getoption("--update-goldens"))

    def check(relative: str, text: str) -> None:
        path = GOLDENS / relative
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.is_file(), f"missing golden {path}; run pytest --update-goldens and review"
        expected = path.read_text(encoding="utf-8")
        assert text == expected, f"{path} differs; run pytest --update-goldens and review the diff"

    return check
