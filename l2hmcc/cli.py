"""The ``l2hmcc`` command line: a thin layer over `l2hmcc.driver`.

Exit codes: 0 success (warnings allowed), 1 the input has errors (diagnostics printed),
2 usage errors (unknown command, option or target), 3 an internal error (a bug: please
report it). Diagnostics go to stderr, rustc-style, in colour only on a terminal without
``NO_COLOR``; ``--format json`` prints them to stdout as a JSON array instead.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from l2hmcc import __version__, driver
from l2hmcc.codes import CODES, explain
from l2hmcc.diagnostics import render_json, render_text, summary

EXIT_OK, EXIT_DIAGNOSTICS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _target_names() -> list[str]:
    from l2hmcc import systems  # the target table without the generators (and Jinja)

    return list(systems.TARGETS)


def _add_common(
    p: argparse.ArgumentParser,
    *,
    overrides: bool = True,
    formats: tuple[str, ...] = ("text", "json"),
    format_help: str = "diagnostics format",
) -> None:
    p.add_argument("--format", choices=formats, default="text", help=format_help)
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour diagnostics (auto: on a terminal, unless NO_COLOR is set)",
    )
    if overrides:
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a spec value, e.g. --set train.steps=100 (repeatable)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="l2hmcc",
        description="Compile .l2h lattice-gauge-theory experiment specs to L2HMC training jobs.",
    )
    parser.add_argument("--version", action="version", version=f"l2hmcc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("check", help="check specs and report every problem")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--target", help="also run the checks that depend on this target")
    _add_common(p)

    p = sub.add_parser("compile", help="compile a spec into a job directory")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--target", "-t", required=True, help="see `l2hmcc targets`")
    p.add_argument("-o", "--out", help="job directory (default: jobs/<experiment>-<target>)")
    p.add_argument("--force", action="store_true", help="replace an existing job directory")
    p.add_argument(
        "--submit",
        action="store_true",
        help="then submit job.pbs with qsub (PBS systems, where qsub exists; else explains)",
    )
    p.add_argument(
        "--point",
        "--only",
        dest="point",
        metavar="POINT",
        help="compile one point of a sweep (its name or 0-based index) as its own job",
    )
    _add_common(p)

    p = sub.add_parser(
        "verify",
        help="check a job directory against its manifest and today's compiler",
        description="Recompute every file's sha256 (edited, missing, extra files), then compile"
        " the spec copy again and report what today's compiler would write differently."
        " Exit codes: 0 everything matches, 1 differences, 2 not a job directory.",
    )
    p.add_argument("directory", metavar="JOBDIR")
    _add_common(p, overrides=False)

    p = sub.add_parser(
        "diff",
        help="compare two specs or job directories field by field",
        description="A semantic diff of the resolved IRs: field paths, old → new, and where each"
        " side wrote its value. Exit codes: 0 no differences, 1 differences, 2 usage or inputs"
        " with errors.",
    )
    p.add_argument("a", metavar="A", help="a spec or a job directory")
    p.add_argument("b", metavar="B", help="a spec or a job directory")
    p.add_argument("--target", help="resolve the specs' backend for this target")
    _add_common(p, overrides=False)

    p = sub.add_parser(
        "show",
        help="report on a job or sweep directory: spec, target, run and results",
    )
    p.add_argument("directory", metavar="JOBDIR")
    p.add_argument("--no-spec", action="store_true", help="leave out the spec's text")
    p.add_argument(
        "--plot",
        metavar="METRIC",
        help="a sweep: draw METRIC against the swept field(s) as a PNG (acceptance, plaquette,"
        " q2, tau_int_q, hmc_tau_int_q, trajectories_per_s, improvement, ...)",
    )
    p.add_argument(
        "--plot-out",
        metavar="FILE",
        help="where --plot writes (default: SWEEPDIR-METRIC.png in the current directory)",
    )
    _add_common(
        p,
        overrides=False,
        formats=("text", "json", "csv"),
        format_help="text, json (the whole report) or csv (a row per sweep point)",
    )

    p = sub.add_parser("fmt", help="rewrite specs in the canonical layout")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--check", action="store_true", help="only report files that would change")
    p.add_argument("--diff", action="store_true", help="print the changes as a diff")
    _add_common(p, overrides=False)

    p = sub.add_parser("explain", help="explain a diagnostic code (all codes without one)")
    p.add_argument("code", nargs="?", metavar="CODE")

    sub.add_parser("targets", help="list the compilation targets")

    p = sub.add_parser("ir", help="print the resolved IR of a spec as JSON")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--target", help="resolve the backend for this target")
    _add_common(p)
    return parser


def _use_color(choice: str, stream: TextIO) -> bool:
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _report(outcomes: Sequence[driver.Outcome], args: argparse.Namespace) -> None:
    diagnostics = [d for o in outcomes for d in o.diagnostics]
    if args.format == "json":
        print(render_json(diagnostics))
        return
    sources = {name: src for o in outcomes for name, src in o.sources.items()}
    if diagnostics:
        sys.stderr.write(
            render_text(diagnostics, sources, color=_use_color(args.color, sys.stderr))
        )
    for o in outcomes:
        if not o.ok:
            sys.stderr.write(f"error: `{o.path}`: {summary(o.diagnostics)}\n")


def _check_target(name: str | None) -> None:
    if name is None:
        return
    names = _target_names()
    if name not in names:
        guess = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean `{guess[0]}`?" if guess else f"; choose from {', '.join(names)}"
        sys.stderr.write(f"error: unknown target `{name}`{hint}\n")
        raise SystemExit(EXIT_USAGE)


def cmd_check(args: argparse.Namespace) -> int:
    _check_target(args.target)
    outcomes = [driver.check(s, tuple(args.overrides), args.target) for s in args.specs]
    _report(outcomes, args)
    if args.format == "text":
        for o in outcomes:
            if o.ok:
                print(f"ok: {o.path}")
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_DIAGNOSTICS


def cmd_compile(args: argparse.Namespace) -> int:
    _check_target(args.target)
    o = driver.compile(
        args.spec,
        args.target,
        args.out,
        force=args.force,
        overrides=tuple(args.overrides),
        point=args.point,
    )
    _report([o], args)
    if o.ok and o.out_dir is not None:
        sweep = bool(o.points) and args.point is None
        if args.format == "text":
            what = f" ({len(o.points)} sweep points)" if sweep else ""
            print(f"wrote {o.out_dir}{what}")
        if args.submit and o.spec is not None:
            if sweep:
                return _submit_sweep(o.out_dir)
            return _submit(o.out_dir, o.spec.job.system)
        return EXIT_OK
    return EXIT_DIAGNOSTICS


def _submit_sweep(out_dir: Path) -> int:
    """``compile --submit`` of a sweep: run its submit-all.sh where qsub exists; a local sweep
    or a machine without qsub gets the command to run instead."""
    import shutil
    import subprocess

    from l2hmcc import manifest, record
    from l2hmcc.sweep import SUBMIT_ALL

    rec = record.read(out_dir)
    assert rec.sweep is not None
    if rec.sweep.submission.mode == "local":
        print(f"`job local` is not a PBS system; run the sweep here: `{out_dir}/{SUBMIT_ALL}`")
        return EXIT_OK
    if shutil.which("qsub") is None and not Path("/opt/pbs/bin/qsub").is_file():
        sys.stderr.write(
            f"qsub is not on PATH here, so nothing was submitted. Copy {out_dir} to a login node"
            f" of `{rec.sweep.system.name}` and run `./{SUBMIT_ALL}` in it"
            f" ({manifest.SWEEP_NAME} lists the points).\n"
        )
        return EXIT_OK
    proc = subprocess.run([f"./{SUBMIT_ALL}"], cwd=out_dir, check=False)
    return EXIT_OK if proc.returncode == 0 else EXIT_DIAGNOSTICS


def _submit(out_dir: Path, system: str) -> int:
    """``compile --submit`` (issue 5): qsub the job script, or say why not and what to run."""
    from l2hmcc import pbs

    result = pbs.submit(out_dir, system)
    print(result.message, file=sys.stdout if result.submitted else sys.stderr)
    return EXIT_DIAGNOSTICS if result.attempted and not result.submitted else EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    outcomes = [driver.format_file(s) for s in args.specs]
    _report(outcomes, args)
    changed = 0
    for o in outcomes:
        if o.formatted is None:
            continue
        original = o.sources[o.path].text
        if o.formatted == original:
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    original.splitlines(keepends=True),
                    o.formatted.splitlines(keepends=True),
                    fromfile=o.path,
                    tofile=o.path,
                )
            )
        if args.check:
            print(f"would reformat {o.path}")
        elif not Path(o.path).is_file():  # a pipe: nothing to rewrite, print the result
            sys.stdout.write(o.formatted)
        else:
            try:
                _write_atomic(Path(o.path), o.formatted)
            except OSError as e:
                sys.stderr.write(f"error: cannot rewrite `{o.path}`: {e.strerror or e}\n")
                return EXIT_DIAGNOSTICS
            print(f"reformatted {o.path}")
    if not all(o.ok for o in outcomes):
        return EXIT_DIAGNOSTICS
    return EXIT_DIAGNOSTICS if args.check and changed else EXIT_OK


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.l2hmcc-fmt")
    tmp.write_text(text, encoding="utf-8")
    with contextlib.suppress(OSError):
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)


def cmd_explain(args: argparse.Namespace) -> int:
    if args.code is None:
        for code, info in CODES.items():
            print(f"{code}  {info.title}")
        return EXIT_OK
    text = explain(args.code)
    if text is None:
        guess = difflib.get_close_matches(args.code.upper(), list(CODES), n=1)
        hint = f"; did you mean `{guess[0]}`?" if guess else ""
        sys.stderr.write(f"error: unknown code `{args.code}`{hint} (`l2hmcc explain` lists all)\n")
        return EXIT_USAGE
    print(text, end="")
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    from l2hmcc import targets

    rows = [
        (
            t.name,
            t.framework,
            t.backend,
            "ready" if targets.is_implemented(t) else "manifest only",
            t.description,
        )
        for t in targets.TARGETS.values()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4])
    return EXIT_OK


def cmd_ir(args: argparse.Namespace) -> int:
    _check_target(args.target)
    o = driver.check(args.spec, tuple(args.overrides), args.target)
    if o.spec is None or not o.ok:
        _report([o], args)
        return EXIT_DIAGNOSTICS
    if o.diagnostics and args.format == "text":
        _report([o], args)  # warnings
    print(json.dumps(o.spec.model_dump(mode="json"), indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from l2hmcc import verify

    report = verify.verify(args.directory)
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        stream = sys.stdout if report.ok else sys.stderr
        text = verify.render_text(report)
        if report.ok:
            print(text, end="")
        else:
            stream.write(text)
    if report.usage_error:
        return EXIT_USAGE
    return EXIT_OK if report.ok else EXIT_DIAGNOSTICS


def cmd_diff(args: argparse.Namespace) -> int:
    from l2hmcc import irdiff

    _check_target(args.target)
    sides = [irdiff.load_side(given, args.target) for given in (args.a, args.b)]
    failed = [s for s in sides if s.error is not None]
    if failed:
        outcomes = []
        for s in failed:
            o = driver.Outcome(s.given, diagnostics=list(s.diagnostics or []))
            o.sources = dict(s.sources or {})
            outcomes.append(o)
        if any(o.diagnostics for o in outcomes):
            _report(outcomes, args)
        for s in failed:
            if not s.diagnostics:
                sys.stderr.write(f"error: {s.error}\n")
        return EXIT_USAGE
    a, b = sides
    changes = irdiff.diff(a, b)
    if args.format == "json":
        print(json.dumps(irdiff.to_json(a, b, changes), indent=2, ensure_ascii=False))
    else:
        print(irdiff.render_text(a, b, changes), end="")
    return EXIT_DIAGNOSTICS if changes else EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from l2hmcc import record, show

    try:
        report = show.report(args.directory)
    except record.RecordError as e:
        sys.stderr.write(f"error: {e}\n")
        return EXIT_USAGE
    if args.plot is not None:
        target = args.plot_out or f"{Path(report['directory']).name}-{args.plot}.png"
        try:
            written = show.plot_metric(report, args.plot, target)
        except (show.PlotError, OSError) as e:
            sys.stderr.write(f"error: {e}\n")
            return EXIT_USAGE
        sys.stderr.write(f"wrote {written}\n")
    if args.format == "json":
        print(show.dumps(report))
    elif args.format == "csv":
        print(show.to_csv(report), end="")
    elif _use_color(args.color, sys.stdout):
        show.render_rich(report, with_spec=not args.no_spec, force=args.color == "always")
    else:
        print(show.render_plain(report, with_spec=not args.no_spec), end="")
    return EXIT_OK


COMMANDS = {
    "check": cmd_check,
    "compile": cmd_compile,
    "verify": cmd_verify,
    "diff": cmd_diff,
    "show": cmd_show,
    "fmt": cmd_fmt,
    "explain": cmd_explain,
    "targets": cmd_targets,
    "ir": cmd_ir,
}


class _PipeSafe:
    """A text stream whose reader may go away (``l2hmcc check BAD 2>&1 | head -1``): what
    cannot be written is dropped, so the command still ends with its own exit status."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.broken = True

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)

    def close_if_broken(self) -> None:
        """Point a broken stream's descriptor at /dev/null, so that Python's own flush at exit
        does not fail (and turn the exit status into 120)."""
        self.flush()
        if self.broken:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stream.fileno())
                os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    # File names and --set values that are not valid UTF-8 must not crash the output.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    saved = sys.stdout, sys.stderr
    out, err = _PipeSafe(sys.stdout), _PipeSafe(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except Exception as e:  # a bug in l2hmcc, not in the spec
        if os.environ.get("L2HMCC_TRACEBACK"):
            raise
        sys.stderr.write(
            f"error: internal error in l2hmcc {__version__}: {type(e).__name__}: {e}\n"
            "  please report it with the spec; set L2HMCC_TRACEBACK=1 for the traceback\n"
        )
        return EXIT_INTERNAL
    finally:
        sys.stdout, sys.stderr = saved
        out.close_if_broken()
        err.close_if_broken()


def run() -> None:
    """Console-script entry point."""
    raise SystemExit(main())


if __name__ == "__main__":
    run()
