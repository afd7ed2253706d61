"""bench/bench_frontend.py still runs (one run, one spec; no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_frontend_runs() -> None:
    r = subprocess.run(
        [sys.executable, "bench/bench_frontend.py", "--runs", "1", "specs/u1-smoke.l2h"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "u1-smoke.l2h" in r.stdout and "worst median wall" in r.stdout
