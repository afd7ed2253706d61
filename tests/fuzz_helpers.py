"""A seeded mutation fuzzer for the compiler's front end, `verify` and the CLI, in-process.

Used by tests/test_hostile.py (a bounded run in the suite) and scripts/fuzz.py (the long run).
Each input is a mutated spec (from the shipped specs and the bad-spec corpus) with maybe some
``--set`` overrides, or a mutated record of a compiled job. An input passes when l2hmcc
answers with diagnostics: an exception escaping the driver, an "internal error" exit (3), a
diagnostic that says "this is a bug in l2hmcc", or a call that runs longer than the time limit
(a hang) is a failure, kept with the input that caused it.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import shutil
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l2hmcc import cli, driver, verify
from l2hmcc.compose import MemoryReader
from l2hmcc.diagnostics import Diagnostic, render_json, render_text

ROOT = Path(__file__).resolve().parent.parent
BUG = "bug in l2hmcc"

#: Keys the overrides and value mutations aim at (a few of every type).
KEYS = [
    "train.steps",
    "train.lr",
    "train.chains",
    "train.batch",
    "lattice.beta",
    "lattice.shape",
    "lattice.group",
    "dynamics.leapfrog",
    "dynamics.step_size",
    "network.hidden",
    "experiment.seed",
    "experiment.name",
    "job.walltime",
    "job.nodes",
    "job.ranks_per_node",
    "job.account",
    "job.modules",
    "job.env.FOO",
    "hmc.step_size",
    "evaluate.steps",
    "loss.charge",
    "distributed.zero_stage",
]

TARGETS = ["pytorch", "pytorch-ddp", "pytorch-deepspeed", "tensorflow", "tensorflow-horovod"]


def seeds() -> list[tuple[str, bytes]]:
    """(name, bytes) of every shipped spec and corpus file."""
    paths = sorted((ROOT / "specs").glob("*.l2h")) + sorted((ROOT / "tests/corpus").glob("*.l2h"))
    return [(p.name, p.read_bytes()) for p in paths if p.stat().st_size < 8192]


# --- value generators --------------------------------------------------------------------------


def extreme_number(rng: random.Random) -> str:
    choices: list[Callable[[], str]] = [
        lambda: "1" + "0" * rng.choice([19, 20, 308, 309, 400, 999, 1000, 1001, 4300, 4301, 6000]),
        lambda: "-" + "9" * rng.choice([19, 310, 4400]),
        lambda: rng.choice(
            ["1e308", "1e309", "-1e999", "1e-400", "2e-324", "1.7976931348623157e308"]
        ),
        lambda: rng.choice(["9223372036854775807", "9223372036854775808", "-9223372036854775809"]),
        lambda: "0." + "0" * rng.randint(1, 5000) + "1",
        lambda: "1e" + str(rng.randint(-(10**6), 10**6)),
        lambda: rng.choice(["0", "-0", "0.0", "-0.0", "00000", "+1", "1.", ".5", "1e", "--1"]),
        lambda: str(rng.randint(-(2**70), 2**70)),
        lambda: str(rng.random() * 10 ** rng.randint(-30, 30)),
        lambda: f"{rng.randint(0, 10**14)}h{rng.randint(0, 99)}m",
        lambda: "9" * rng.randint(10, 5000) + rng.choice(["h", "m", "s", ":00:00"]),
        lambda: f"{rng.randint(0, 999)}:{rng.randint(0, 99):02d}:{rng.randint(0, 99):02d}",
    ]
    return rng.choice(choices)()


def odd_text(rng: random.Random) -> str:
    pieces = [
        "\x00",
        "\ufeff",
        "\u2028",
        "\u202e",
        "\r",
        "\r\n",
        "\t",
        "\x1b[31m",
        "\x7f",
        "é",
        "𝔘",
        "\udcff",
        "\\",
        '"',
        "'",
        "$(rm -rf /)",
        "`id`",
        "; echo pwned",
        "{{ x }}",
        "{% raw %}",
        "#PBS -q debug",
        "\n#PBS -A x\n",
        "%s%n",
        "../../etc/passwd",
    ]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))


def long_literal(rng: random.Random) -> str:
    n = rng.choices([100, 1000, 10_000, 100_000, 600_000], weights=[50, 30, 15, 4, 1])[0]
    kind = rng.randrange(4)
    if kind == 0:
        return '"' + "x" * n + '"'
    if kind == 1:
        return "a" * n
    if kind == 2:
        return "[" + ", ".join(["1"] * min(n, 100_000)) + "]"
    return "sweep(" + ", ".join(str(i) for i in range(min(n, 5000))) + ")"


def deep(rng: random.Random) -> str:
    n = rng.choices([31, 32, 33, 100, 1000, 5000, 50_000], weights=[20, 20, 20, 20, 15, 4, 1])[0]
    kind = rng.randrange(4)
    if kind == 0:
        return "[" * n + "1" + "]" * n
    if kind == 1:
        return "f(" * n + "1" + ")" * n
    if kind == 2:
        return "x { " * n + "}" * n
    return "[" * n  # unclosed


def value(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return extreme_number(rng)
    if r < 0.6:
        return '"' + odd_text(rng).replace('"', "") + '"'
    if r < 0.75:
        return long_literal(rng)
    if r < 0.85:
        return deep(rng)
    return rng.choice(
        ["true", "auto", "auto(2)", "linear(1, 1e999)", "eras([])", "[]", "[8, 8]", "U1", "sweep()"]
    )


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(\.\d+)?([eE][-+]?\d+)?(?![\w.])")


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits of a spec's text."""
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(9)
        if op == 0 and (numbers := list(_NUMBER.finditer(text))):
            m = rng.choice(numbers)
            text = text[: m.start()] + extreme_number(rng) + text[m.end() :]
        elif op == 1 and "=" in text:
            eqs = [m.end() for m in re.finditer(r"= *", text)]
            at = rng.choice(eqs)
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            text = text[:at] + value(rng) + text[end:]
        elif op == 2:
            at = rng.randint(0, len(text))
            text = text[:at] + odd_text(rng) + text[at:]
        elif op == 3 and text:
            a = rng.randint(0, len(text) - 1)
            text = text[:a] + text[a + rng.randint(1, 40) :]
        elif op == 4:
            at = rng.randint(0, len(text))
            text = (
                text[:at]
                + rng.choice(["{", "}", "[", "]", "(", ")", "=", ",", '"', "#"])
                + text[at:]
            )
        elif op == 5:
            at = rng.randint(0, len(text))
            text = text[:at] + deep(rng) + text[at:]
        elif op == 6:
            at = rng.randint(0, len(text))
            text = text[:at] + long_literal(rng) + text[at:]
        elif op == 7:
            lines = text.splitlines(keepends=True)
            if lines:
                i = rng.randrange(len(lines))
                lines.insert(rng.randrange(len(lines) + 1), lines[i] * rng.randint(1, 50))
                text = "".join(lines)
        else:
            text = (
                rng.choice(
                    [
                        'extends "bases/u1.l2h"\n',
                        'extends "/dev/zero"\n',
                        'extends "."\n',
                        'extends ""\n',
                        'extends "' + "a/" * 2000 + '"\n',
                        'extends "\\u0000"\n',
                    ]
                )
                + text
            )
    return text


def override(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.7:
        return f"{rng.choice(KEYS)}={value(rng)}"
    if r < 0.85:
        return rng.choice(["=", "a=1", ".x=1", "train..steps=1", "train.steps", "x" * 70_000])
    return f"{rng.choice(KEYS)}{odd_text(rng)}={odd_text(rng)}"


def odd_bytes(data: bytes, rng: random.Random) -> bytes:
    """Byte-level damage: invalid UTF-8, NUL, truncation, random bytes."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        at = rng.randint(0, len(buf))
        if op == 0:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 1:
            buf[at:at] = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf"])
        elif op == 2:
            del buf[at:]
        else:
            buf[at:at] = b"\n" * rng.randint(1, 3)
    return bytes(buf)


# --- running inputs ----------------------------------------------------------------------------


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(cpu_s: float, wall_s: float | None = None) -> Iterator[None]:
    """Raise `Hang` after ``cpu_s`` seconds of CPU (a loop) or ``wall_s`` seconds of wall
    time (blocked, e.g. on a FIFO; default 6 × ``cpu_s``, so a loaded machine is no hang)."""
    wall_s = wall_s or 6 * cpu_s

    def cpu(signum: int, frame: Any) -> None:
        raise Hang(f"over {cpu_s} s of CPU")

    def wall(signum: int, frame: Any) -> None:
        raise Hang(f"over {wall_s} s")

    old_prof = signal.signal(signal.SIGPROF, cpu)
    old_alarm = signal.signal(signal.SIGALRM, wall)
    signal.setitimer(signal.ITIMER_PROF, cpu_s)
    signal.setitimer(signal.ITIMER_REAL, wall_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGPROF, old_prof)
        signal.signal(signal.SIGALRM, old_alarm)


@dataclass
class Failure:
    kind: str  # "internal", "bug-diagnostic", "hang"
    what: str
    input: str
    detail: str


@dataclass
class Stats:
    inputs: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)

    def count(self, kind: str) -> int:
        return sum(f.kind == kind for f in self.failures)


def _check_diagnostics(diags: list[Diagnostic], sources: dict[str, Any]) -> str | None:
    text = render_text(diags, sources)
    render_json(diags)
    for d in diags:
        if BUG in f"{d.message} {d.help or ''}":
            return f"{d.code}: {d.message}"
    return None if BUG not in text else "rendered text mentions a bug"


class Fuzzer:
    """Runs inputs in a scratch directory ``work`` (which holds a copy of the corpus bases,
    for ``extends``) and records failures in ``stats``."""

    def __init__(
        self, work: Path, *, seed: int, limit_s: float = 20.0, memory: bool = False
    ) -> None:
        self.work = work
        self.memory = memory
        self.rng = random.Random(seed)
        self.limit_s = limit_s
        self.stats = Stats()
        self.seeds = seeds()
        shutil.copytree(ROOT / "tests/corpus/bases", work / "bases", dirs_exist_ok=True)
        self.spec = work / "fuzz.l2h"
        self.job: Path | None = None
        self.job_manifest = b""
        self.job_spec = b""

    def _call(self, what: str, shown: str, fn: Callable[[], str | None]) -> None:
        self.stats.calls[what] += 1
        try:
            with time_limit(self.limit_s):
                problem = fn()
        except Hang as e:
            self.stats.failures.append(Failure("hang", what, shown, str(e)))
            return
        except Exception:
            self.stats.failures.append(Failure("internal", what, shown, traceback.format_exc()))
            return
        if problem is not None:
            kind = "internal" if problem.startswith("exit 3") else "bug-diagnostic"
            self.stats.failures.append(Failure(kind, what, shown, problem))

    def spec_input(self) -> tuple[bytes, tuple[str, ...]]:
        rng = self.rng
        _, data = rng.choice(self.seeds)
        r = rng.random()
        if r < 0.75:
            text = mutate(data.decode("utf-8", "replace"), rng)
            data = text.encode("utf-8", "surrogatepass")
        elif r < 0.9:
            data = odd_bytes(data, rng)
        overrides: tuple[str, ...] = ()
        if rng.random() < 0.3:
            overrides = tuple(override(rng) for _ in range(rng.randint(1, 3)))
        return data, overrides

    def run_spec(self, data: bytes, overrides: tuple[str, ...], *, render: bool) -> None:
        path = str(self.spec)
        # In memory where the disk adds nothing (no `extends` to resolve): the long run's
        # cheap path. The disk path (the default) also runs `fmt` on the file.
        on_disk = not self.memory or b"extends" in data or self.rng.random() < 0.1
        reader: MemoryReader | None = None
        if on_disk:
            self.spec.write_bytes(data)
        else:
            reader = MemoryReader({path: data}, {})
        shown = (
            f"{data[:300]!r} (+{max(0, len(data) - 300)} bytes) --set {[o[:80] for o in overrides]}"
        )
        target = self.rng.choice([None, *TARGETS])

        def check() -> str | None:
            o = driver.check(path, overrides, target, reader=reader)
            self.stats.codes.update(d.code for d in o.diagnostics)
            if o.spec is not None and o.ok:
                json.dumps(o.spec.model_dump(mode="json"))
            return _check_diagnostics(o.diagnostics, o.sources)

        self._call("check", shown, check)

        def fmt() -> str | None:
            o = driver.format_file(path)
            return _check_diagnostics(o.diagnostics, o.sources)

        if on_disk:
            self._call("fmt", shown, fmt)
        if render:
            tgt = target or self.rng.choice(TARGETS)

            def build() -> str | None:
                o = driver.build(path, tgt, overrides, reader=reader)
                return _check_diagnostics(o.diagnostics, o.sources)

            self._call("build", shown, build)

    def run_cli(self, data: bytes, overrides: tuple[str, ...]) -> None:
        """The whole command line (rendering, exit codes), output captured."""
        self.spec.write_bytes(data)
        cmd = self.rng.choice(["check", "ir", "fmt --check", "compile"])
        args = [*cmd.split(), str(self.spec)]
        if cmd != "fmt --check":
            for o in overrides:
                args += ["--set", o]
        if cmd == "compile":
            args += ["-t", self.rng.choice(TARGETS), "-o", str(self.work / "job"), "--force"]
        if self.rng.random() < 0.3:
            args += ["--format", "json"]
        shown = f"l2hmcc {' '.join(a[:80] for a in args)} with {data[:200]!r}"

        def call() -> str | None:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = cli.main(args)
            if rc == cli.EXIT_INTERNAL:
                return f"exit 3: {err.getvalue()[-500:]}"
            if BUG in err.getvalue() or BUG in out.getvalue():
                return f"exit {rc}: {err.getvalue()[-500:]}"
            return None

        self._call("cli", shown, call)

    def run_verify(self) -> None:
        """A compiled job whose manifest.json or spec copy is mutated, then verified."""
        rng = self.rng
        if self.job is None:
            self.job = self.work / "verify-job"
            seed = ROOT / "specs/u1-smoke.l2h"
            o = driver.compile(str(seed), "pytorch", self.job, force=True)
            assert o.ok, o.diagnostics
            self.job_manifest = (self.job / "manifest.json").read_bytes()
            self.job_spec = (self.job / "spec.l2h").read_bytes()
        record = json.loads(self.job_manifest)
        spec_copy = self.job_spec
        r = rng.random()
        if r < 0.5:
            record = _mutate_json(record, rng)
            raw = json.dumps(record).encode()
        elif r < 0.6:
            raw = odd_bytes(self.job_manifest, rng)
        elif r < 0.7:
            raw = b"[" * rng.choice([100, 10_000, 200_000]) + b"]"
        else:
            raw = self.job_manifest
            spec_copy = mutate(spec_copy.decode(), rng).encode("utf-8", "surrogatepass")
        (self.job / "manifest.json").write_bytes(raw)
        (self.job / "spec.l2h").write_bytes(spec_copy)
        shown = f"manifest {raw[:300]!r}, spec {spec_copy[:100]!r}"

        def call() -> str | None:
            report = verify.verify(self.job or Path())
            verify.render_text(report)
            json.dumps(report.to_json())
            for d in [*report.diagnostics, *report.compile_diagnostics]:
                if BUG in f"{d.message} {d.help or ''}":
                    return f"{d.code}: {d.message}"
            return None

        self._call("verify", shown, call)

    def step(self) -> None:
        """One input: mostly specs checked in-process, some rendered, some through the CLI,
        some job records verified."""
        self.stats.inputs += 1
        r = self.rng.random()
        if r < 0.06:
            self.run_verify()
            return
        data, overrides = self.spec_input()
        if r < 0.12:
            self.run_cli(data, overrides)
        else:
            self.run_spec(data, overrides, render=r < 0.2)

    def run(self, inputs: int, *, budget_s: float | None = None) -> Stats:
        start = time.monotonic()
        for _ in range(inputs):
            if budget_s is not None and time.monotonic() - start > budget_s:
                break
            self.step()
        return self.stats


def _mutate_json(data: Any, rng: random.Random) -> Any:
    """A record with one field replaced by something hostile."""
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((node, i))
                walk(v)

    walk(data)
    container, key = rng.choice(paths)
    container[key] = rng.choice(
        [
            None,
            "../../etc/passwd",
            "/etc/passwd",
            "spec.l2h",
            "manifest.json",
            "output/x",
            10**400 if rng.random() < 0.5 else "1" + "0" * 5000,
            float("inf"),
            [],
            {},
            "nope",
            "train.steps=" + "1" * 5000,
            "a\ud800b",
            "out\x00put",
            "x" * 100_000,
            -1,
            True,
        ]
    )
    if rng.random() < 0.2:
        data["files"] = [
            *data.get("files", []),
            {"path": "../x", "sha256": "0", "executable": False},
        ]
    return data
