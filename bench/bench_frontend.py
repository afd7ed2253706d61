"""Whole-process wall time of `l2hmcc check` and `l2hmcc compile` per shipped spec.

Each command runs as a fresh process, as a user would run it (the console script next to
this Python, else ``python -m l2hmcc``), ``--runs`` times after one warm-up run (which also
fills the parser cache); the table shows the median and the minimum in seconds. The target
for ``compile`` follows the spec's `distributed` block. The goal is a median ≤ 0.25 s.

    .venv/bin/python bench/bench_frontend.py [--runs 15] [SPEC ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 0.25


def command() -> list[str]:
    script = Path(sys.executable).with_name("l2hmcc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "l2hmcc"]


def target_for(spec: Path) -> str:
    sys.path.insert(0, str(ROOT))
    from l2hmcc import driver

    outcome = driver.load(str(spec))
    backend = outcome.spec.distributed.backend if outcome.spec is not None else "none"
    return "pytorch" if backend == "none" else f"pytorch-{backend}"


def timed(argv: list[str], runs: int) -> tuple[float, float] | None:
    """(median, min) wall time, or None (with the error printed) if the command fails."""
    subprocess.run(argv, capture_output=True, check=False)  # warm-up (parser cache, page cache)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            print(f"{' '.join(argv)} failed:\n{proc.stderr.decode()}", file=sys.stderr)
            return None
    return statistics.median(times), min(times)


def cell(t: tuple[float, float] | None) -> str:
    return "failed".rjust(15) if t is None else f"{t[0]:>7.3f} / {t[1]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    specs = args.specs or sorted((ROOT / "specs").glob("*.l2h"))
    cmd = command()
    print(f"command: {' '.join(cmd)}; {args.runs} runs each; seconds (median / min)")
    print(f"{'spec':<22} {'check':>15} {'compile':>15}  target")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            target = target_for(spec)
            check = timed([*cmd, "check", str(spec)], args.runs)
            out = Path(tmp) / spec.stem
            comp = timed(
                [*cmd, "compile", str(spec), "--target", target, "-o", str(out), "--force"],
                args.runs,
            )
            worst = max([worst, *(t[0] for t in (check, comp) if t is not None)])
            print(f"{spec.name:<22} {cell(check)} {cell(comp)}  {target}")
    verdict = "within" if worst <= GOAL_S else "OVER"
    print(f"worst median {worst:.3f} s: {verdict} the {GOAL_S} s goal")


if __name__ == "__main__":
    main()
