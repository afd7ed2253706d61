"""Whole-process wall time of `l2hmcc check` and `l2hmcc compile` per shipped spec.

Each command runs as a fresh process, as a user would run it (the console script next to
this Python, else ``python -m l2hmcc``), ``--runs`` times after one warm-up run (which also
fills the parser cache); the table shows the median and the minimum in seconds. The target
for ``compile`` follows the spec's `distributed` block. The goal is a median ≤ 0.25 s.

    .venv/bin/python bench/bench_frontend.py [--runs 15] [SPEC ...]
"""

from __future__ import annotations

import argparse
import os
import resource
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


#: Children run with bytecode caching on, as for an installed l2hmcc (pip compiles .pyc
#: files); a PYTHONDONTWRITEBYTECODE=1 environment would otherwise recompile every module of
#: the compiler in every run (about +0.1 s).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], runs: int) -> tuple[float, float, float] | None:
    """(median wall, min wall, median CPU) seconds, or None (with the error printed) if the
    command fails. CPU time (user + system of the child) is the steadier number on a shared
    machine; wall time is what the user waits."""
    # Warm-up: parser cache, bytecode, page cache.
    subprocess.run(argv, capture_output=True, check=False, env=ENV)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=False, env=ENV)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            print(f"{' '.join(argv)} failed:\n{proc.stderr.decode()}", file=sys.stderr)
            return None
    return statistics.median(walls), min(walls), statistics.median(cpus)


def cell(t: tuple[float, float, float] | None) -> str:
    return "failed".rjust(22) if t is None else f"{t[0]:>7.3f} / {t[1]:.3f} / {t[2]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    specs = args.specs or sorted((ROOT / "specs").glob("*.l2h"))
    cmd = command()
    print(f"command: {' '.join(cmd)}; {args.runs} runs each")
    print("seconds: median wall / min wall / median CPU (user+sys)")
    print(f"{'spec':<22} {'check':>22} {'compile':>22}  target")
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
    # The floor every run pays: the interpreter, and the two libraries the front end needs.
    for label, code in (
        ("(python -c pass)", "pass"),
        ("(import pydantic, lark)", "import pydantic, lark; pydantic.BaseModel"),
    ):
        floor = timed([sys.executable, "-c", code], args.runs)
        print(f"{label:<22} {cell(floor)}")
    verdict = "within" if worst <= GOAL_S else "OVER"
    load = os.getloadavg()[0]
    print(
        f"worst median wall {worst:.3f} s: {verdict} the {GOAL_S} s goal (load average {load:.1f})"
    )


if __name__ == "__main__":
    main()
