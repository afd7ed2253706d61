#!/usr/bin/env python3
"""The long fuzz run: ``python scripts/fuzz.py --inputs 100000 --seed 1``.

Feeds mutated specs (numeric extremes, long literals, deep nesting, odd bytes, ``extends``
lines), ``--set`` overrides and mutated job records to l2hmcc in-process (see
tests/fuzz_helpers.py) and prints how many inputs and calls ran, and how many ended in an
internal error, a "bug in l2hmcc" diagnostic or a hang (a call over ``--limit`` seconds).
Exit status 1 if any did; the first failures are printed with their inputs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))

from fuzz_helpers import Fuzzer  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inputs", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--limit", type=float, default=20.0, help="CPU seconds (x6 wall) before a call is a hang"
    )
    p.add_argument("--every", type=int, default=5000, help="print progress every N inputs")
    p.add_argument(
        "--disk", action="store_true", help="write every spec to disk and `fmt` it (slower)"
    )
    args = p.parse_args()
    os.environ.pop("L2HMCC_TRACEBACK", None)
    start = time.monotonic()
    scratch = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="l2hmcc-fuzz-", dir=scratch) as work:
        fuzzer = Fuzzer(Path(work), seed=args.seed, limit_s=args.limit, memory=not args.disk)
        done = shown = 0
        while done < args.inputs:
            n = min(args.every, args.inputs - done)
            fuzzer.run(n)
            done += n
            s = fuzzer.stats
            print(
                f"{done} inputs, {sum(s.calls.values())} calls, {len(s.failures)} failures,"
                f" {time.monotonic() - start:.0f} s",
                flush=True,
            )
            for f in s.failures[shown:]:
                print(f"  {f.kind} in {f.what}: {f.input[:300]}", flush=True)
            shown = len(s.failures)
    s = fuzzer.stats
    wall = time.monotonic() - start
    cpu = time.process_time()
    print(f"seed {args.seed}: {s.inputs} inputs, wall {wall:.0f} s, CPU {cpu:.0f} s")
    print("calls: " + ", ".join(f"{k} {v}" for k, v in sorted(s.calls.items())))
    print(
        f"internal errors: {s.count('internal')}, 'bug in l2hmcc' diagnostics:"
        f" {s.count('bug-diagnostic')}, hangs: {s.count('hang')}"
    )
    top = ", ".join(f"{c} {n}" for c, n in s.codes.most_common(15))
    print(f"most frequent diagnostics: {top}")
    for f in s.failures[:10]:
        print(f"\n--- {f.kind} in {f.what}: {f.input[:600]}\n{f.detail[-2000:]}")
    return 1 if s.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
