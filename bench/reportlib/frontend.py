"""Compile latency of every shipped spec: whole ``l2hmcc check`` and ``l2hmcc compile``
processes, as a user runs them (``bench/bench_frontend.py``'s ``timed``: one warm-up run, then
``runs`` runs; median and minimum wall time and median CPU time of the child)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import bench_frontend  # bench/ is on sys.path (bench/report.py puts it there)

from .machine import REPO


def _row(t: tuple[float, float, float] | None) -> dict[str, float] | None:
    if t is None:
        return None
    return {"median_s": t[0], "min_s": t[1], "cpu_median_s": t[2]}


def run(specs: list[Path], runs: int, log: Any = print) -> dict[str, Any]:
    cmd = bench_frontend.command()
    rows = []
    with tempfile.TemporaryDirectory(prefix="report-frontend-") as tmp:
        for spec in specs:
            target = bench_frontend.target_for(spec)
            rel = spec.relative_to(REPO) if spec.is_relative_to(REPO) else spec
            check = bench_frontend.timed([*cmd, "check", str(spec)], runs)
            out = Path(tmp) / spec.stem
            compile_argv = [*cmd, "compile", str(spec), "--target", target, "-o", str(out)]
            comp = bench_frontend.timed([*compile_argv, "--force"], runs)
            rows.append(
                {"spec": str(rel), "target": target, "check": _row(check), "compile": _row(comp)}
            )
            log(f"  {rel}: check {_fmt(check)}, compile {_fmt(comp)} ({target})")
    floors = {
        label: _row(bench_frontend.timed([sys.executable, "-c", code], runs))
        for label, code in (
            ("python -c pass", "pass"),
            ("import pydantic, lark", "import pydantic, lark; pydantic.BaseModel"),
        )
    }
    return {
        "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
        "runs": runs,
        "goal_s": bench_frontend.GOAL_S,
        "specs": rows,
        "floors": floors,
    }


def _fmt(t: tuple[float, float, float] | None) -> str:
    return "failed" if t is None else f"{t[0]:.3f} s"
