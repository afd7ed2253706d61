"""Wires the stages: read → parse → compose (``extends``) → overrides → lower → check →
(expand sweeps) → render → write.

Each public function returns an outcome with every diagnostic found and the sources they
point into; none raises for bad input. The CLI is a thin layer over these functions.

Compilation is deterministic: the same spec files, overrides, target and l2hmcc version give
byte-identical job directories, wherever the spec lies and whatever the working directory.
Generated files name the spec by its file name only, and `manifest.json` holds no times.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import l2hmcc
from l2hmcc.compose import ChainFile, DiskReader, Reader, load_chain, merge_chain
from l2hmcc.diagnostics import Diagnostic, Label, error, finalize, has_errors
from l2hmcc.source import Source, SourceError, Span, read_source
from l2hmcc.syntax import SpecFile, parse

if TYPE_CHECKING:
    from l2hmcc import ir
    from l2hmcc.bundle import Bundle
    from l2hmcc.lower import SweepSite
    from l2hmcc.manifest import SpecRecord, SystemRecord
    from l2hmcc.spanmap import SpanMap
    from l2hmcc.sweep import Point
    from l2hmcc.targets import Target

# The later stages (lower needs pydantic, targets and emit the filesystem, render Jinja) are
# imported inside the functions that use them, so that `fmt`, `explain` and `check` stay light.


@dataclass
class Outcome:
    """The result of running some stages on one spec."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    tree: SpecFile | None = None
    """The spec as lowered: the chain merged, the overrides applied."""
    spec: ir.Spec | None = None
    spans: SpanMap | None = None
    out_dir: Path | None = None
    formatted: str | None = None
    chain: list[ChainFile] = field(default_factory=list)
    """The spec and the specs it extends, nearest first."""
    name: str = ""
    """The spec's file name, as records and generated files name it."""
    overrides: tuple[str, ...] = ()
    sweeps: tuple[SweepSite, ...] = ()
    bundle: Bundle | None = None
    """What `build` produced: a job directory, or a sweep directory of them."""
    points: list[Point] = field(default_factory=list)
    """A sweep's points (`build`, `compile`)."""

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def spec_name(path: str) -> str:
    """How generated files and records name a spec: its file name, never its directory."""
    return PurePath(path).name or path


def parse_file(path: str) -> Outcome:
    """Read and parse one file (no composition: what `fmt` works on)."""
    outcome = Outcome(path, name=spec_name(path))
    try:
        src = read_source(path)
    except SourceError as e:
        outcome.diagnostics.append(error(e.code, e.message, Span.whole_file(path), help=e.help))
        return outcome
    outcome.sources[src.name] = src
    result = parse(src)
    outcome.tree = result.tree
    outcome.diagnostics.extend(result.diagnostics)
    return outcome


def load(
    path: str,
    overrides: tuple[str, ...] = (),
    *,
    reader: Reader | None = None,
    name: str | None = None,
) -> Outcome:
    """Read the spec and every spec it extends, merge them, apply ``--set`` overrides and
    lower to the IR. ``reader`` finds the files (default: the disk); ``name`` is the spec's
    name in records (default: the file name of ``path``)."""
    from l2hmcc.lower import lower
    from l2hmcc.overrides import apply_overrides, override_source, parse_override

    outcome = Outcome(path, name=name or spec_name(path), overrides=overrides)
    chain = load_chain(path, reader or DiskReader())
    outcome.chain = chain.files
    outcome.sources.update(chain.sources)
    outcome.diagnostics.extend(chain.diagnostics)
    if not outcome.ok or not chain.files:
        outcome.diagnostics = finalize(outcome.diagnostics)
        return outcome
    parsed = []
    for i, text in enumerate(overrides, start=1):
        src = override_source(text, i)
        outcome.sources[src.name] = src
        ov, diags = parse_override(text, i)
        outcome.diagnostics.extend(diags)
        if ov is not None:
            parsed.append(ov)
    if not outcome.ok:
        return outcome
    outcome.tree = apply_overrides(merge_chain(chain.files), parsed)
    result = lower(outcome.tree, outcome.name)
    outcome.spec, outcome.spans, outcome.sweeps = result.spec, result.spans, result.sweeps
    outcome.diagnostics = finalize([*outcome.diagnostics, *result.diagnostics])
    return outcome


@dataclass(frozen=True)
class TargetFacts:
    """What the checks know of a target (`l2hmcc.checks.TargetFacts`), from the system
    database's target table: checking for a target imports no generator (and no Jinja)."""

    name: str
    framework: str
    backend: str


def target_facts(name: str | None) -> TargetFacts | None:
    if not name:
        return None
    from l2hmcc import systems

    known = systems.TARGETS.get(name)
    return None if known is None else TargetFacts(name, *known)


def _target(name: str) -> Target | None:
    from l2hmcc import targets  # the target modules (and Jinja): only to render

    return targets.get(name)


def check(
    path: str,
    overrides: tuple[str, ...] = (),
    target: str | None = None,
    *,
    reader: Reader | None = None,
    name: str | None = None,
) -> Outcome:
    """Everything up to and including the checks (with the target's checks if given)."""
    outcome = load(path, overrides, reader=reader, name=name)
    if outcome.spec is None or outcome.spans is None:
        return outcome
    spec, found = _run_checks(outcome.spec, outcome.spans, target_facts(target))
    outcome.spec = spec
    outcome.diagnostics = finalize([*outcome.diagnostics, *found])
    return outcome


def _run_checks(
    spec: ir.Spec, spans: SpanMap, tgt: TargetFacts | Target | None
) -> tuple[ir.Spec, list[Diagnostic]]:
    from l2hmcc import checks

    if tgt is not None:
        spec = resolve_backend(spec, spans, tgt.backend)
    return spec, checks.check(spec, spans, tgt)


def resolve_backend(spec: ir.Spec, spans: SpanMap, backend: str) -> ir.Spec:
    """A spec without a `distributed` block takes the target's backend (with defaults)."""
    from l2hmcc import ir

    if spans.written("distributed"):
        return spec
    models: dict[str, type[ir.NoBackend | ir.DDP | ir.Horovod | ir.DeepSpeed]] = {
        "none": ir.NoBackend,
        "ddp": ir.DDP,
        "horovod": ir.Horovod,
        "deepspeed": ir.DeepSpeed,
    }
    return spec.model_copy(update={"distributed": models[backend]()})


# ---------------------------------------------------------------------------------------------
# Building job directories (in memory) and writing them


def build(
    path: str,
    target: str,
    overrides: tuple[str, ...] = (),
    *,
    point: str | None = None,
    reader: Reader | None = None,
    name: str | None = None,
) -> Outcome:
    """Check and render, without writing: ``outcome.bundle`` is the job directory, or for a
    spec with sweeps the sweep directory (one job directory per point, ``sweep.json``,
    ``submit-all.sh`` and maybe ``array.pbs``); with ``point`` (a name or 0-based index) the
    job directory of that point alone."""
    tgt = _target(target)
    if tgt is None:
        raise ValueError(f"unknown target {target!r}")  # the CLI validates targets first
    outcome = check(path, overrides, target, reader=reader, name=name)
    spec = outcome.spec
    if not outcome.ok or spec is None:
        return outcome
    try:
        if not outcome.sweeps:
            if point is not None:
                outcome.diagnostics.append(_no_such_point(outcome, point))
                return outcome
            outcome.bundle = _job_bundle(outcome, spec, tgt)
            return outcome
        _build_sweep(outcome, tgt, point)
    except Exception as e:  # a target bug must still not show a traceback to users
        if os.environ.get("L2HMCC_TRACEBACK"):
            raise
        outcome.bundle = None
        outcome.diagnostics.append(
            error(
                "E305",
                f"target `{target}` failed to render: {type(e).__name__}: {e}",
                Span.whole_file(path),
                help="this is a bug in l2hmcc; please report it with the spec"
                " (L2HMCC_TRACEBACK=1 shows the traceback)",
            )
        )
    return outcome


def compile(
    path: str,
    target: str,
    out: str | Path | None = None,
    *,
    force: bool = False,
    overrides: tuple[str, ...] = (),
    point: str | None = None,
) -> Outcome:
    """`build`, then write the directory atomically. Default location:
    ``jobs/<experiment>-<target>`` (a single point: ``jobs/<point>-<target>``)."""
    from l2hmcc.emit import EmitError, write_bundle

    outcome = build(path, target, overrides, point=point)
    if not outcome.ok or outcome.bundle is None or outcome.spec is None:
        return outcome
    default = outcome.spec.experiment.name
    if point is not None and outcome.points:
        default = outcome.points[0].name
    out_dir = out if out is not None else Path("jobs") / f"{default}-{target}"
    try:
        outcome.out_dir = write_bundle(outcome.bundle, out_dir, force=force)
    except EmitError as e:
        span = Span.whole_file(str(out_dir) or "''")
        outcome.diagnostics.append(error(e.code, e.message, span, help=e.help))
    return outcome


def _no_such_point(outcome: Outcome, key: str) -> Diagnostic:
    names = [p.name for p in outcome.points]
    if not names:
        return error(
            "E303",
            f"`--point {key}`: `{outcome.path}` has no sweeps",
            Span.whole_file(outcome.path),
            help="drop `--point`",
        )
    import difflib

    guess = difflib.get_close_matches(key, names, n=1)
    return error(
        "E303",
        f"`--point {key}`: no such point (the sweep has {len(names)}, 0-{len(names) - 1})",
        Span.whole_file(outcome.path),
        help=f"did you mean `{guess[0]}`?"
        if guess
        else f"points: {', '.join(names[:8])}" + (", ..." if len(names) > 8 else ""),
    )


def _spec_records(
    outcome: Outcome, prefix: str = ""
) -> tuple[list[tuple[str, bytes]], list[SpecRecord]]:
    """The spec copies a job directory carries, and their records (`manifest.SpecRecord`)."""
    from l2hmcc import manifest
    from l2hmcc.fmt import format_spec

    copies: list[tuple[str, bytes]] = []
    records: list[SpecRecord] = []
    for i, f in enumerate(outcome.chain):
        if i == 0:
            file, shown = manifest.SPEC_COPY_NAME, outcome.name
        else:
            assert f.written is not None
            file = f"{manifest.EXTENDS_DIR}/{i}-{spec_name(f.written)}"
            shown = f.written
        copies.append((file, f.data))
        records.append(
            manifest.SpecRecord(
                name=shown,
                file=prefix + file,
                sha256=hashlib.sha256(f.data).hexdigest(),
                normalized=format_spec(f.tree, f.source),
            )
        )
    return copies, records


def _system_record(spec: ir.Spec) -> SystemRecord:
    from l2hmcc import manifest, systems

    return manifest.SystemRecord(
        name=spec.job.system, facts_checked=systems.FACTS_CHECKED.isoformat()
    )


def _job_bundle(
    outcome: Outcome, spec: ir.Spec, tgt: Target, point: Point | None = None, count: int = 0
) -> Bundle:
    """The job directory of ``spec``: the target's files, the spec copies, manifest.json."""
    from l2hmcc import manifest
    from l2hmcc.bundle import Bundle
    from l2hmcc.targets import RenderContext

    main = outcome.chain[0]
    sha = hashlib.sha256(main.data).hexdigest()
    version = l2hmcc.__version__
    ctx = RenderContext(outcome.name, main.source.text, sha, version, outcome.overrides)
    bundle = Bundle()
    bundle.update(tgt.render(spec, ctx))
    copies, records = _spec_records(outcome)
    for file, data in copies:
        bundle.add(file, data)
    point_record = None
    if point is not None:
        point_record = manifest.PointRecord(
            index=point.index,
            count=count,
            name=point.name,
            values=tuple(manifest.PointValue(path=p, value=v) for p, v in point.values),
        )
    m = manifest.Manifest(
        generated_by=manifest.header(outcome.name, sha, version),
        l2hmcc_version=version,
        spec=records[0],
        extends=tuple(records[1:]),
        target=manifest.TargetRecord(name=tgt.name, framework=tgt.framework, backend=tgt.backend),
        system=_system_record(spec),
        overrides=outcome.overrides,
        point=point_record,
        ir=spec,
        files=manifest.file_records(bundle),
        bundle_digest=bundle.digest(),
    )
    bundle.add(manifest.MANIFEST_NAME, manifest.dumps(m))
    return bundle


def _build_sweep(outcome: Outcome, tgt: Target, key: str | None) -> None:
    """Expand the sweeps: one job per point (or only the point ``key``)."""
    from l2hmcc import sweep
    from l2hmcc.lower import lower

    assert outcome.spec is not None and outcome.tree is not None
    sites = outcome.sweeps
    count = math.prod(len(s.call.args) for s in sites)
    if count > sweep.MAX_POINTS:
        outcome.diagnostics.append(
            error(
                "E306",
                f"the sweeps make {count} points; l2hmcc compiles at most {sweep.MAX_POINTS}",
                sites[0].call.span,
                f"{' × '.join(str(len(s.call.args)) for s in sites)} points",
                secondary=[Label(s.call.span, "") for s in sites[1:]],
                help="split the scan into several specs (`extends` a common base)",
            )
        )
        return
    pts = sweep.points(outcome.spec.experiment.name, sites)
    outcome.points = pts
    if key is not None:
        chosen = sweep.find_point(pts, key)
        if chosen is None:
            outcome.diagnostics.append(_no_such_point(outcome, key))
            return
        pts = [chosen]
    jobs: list[tuple[Point, ir.Spec, Bundle]] = []
    for p in pts:
        result = lower(sweep.point_tree(outcome.tree, sites, p), outcome.name)
        found = list(result.diagnostics)
        spec = result.spec
        if spec is not None:
            spec, more = _run_checks(spec, result.spans, tgt)
            found.extend(more)
        outcome.diagnostics = finalize([*outcome.diagnostics, *found])
        if spec is None or has_errors(found):
            continue
        jobs.append((p, spec, _job_bundle(outcome, spec, tgt, p, len(outcome.points))))
    if not outcome.ok:
        return
    if key is not None:
        outcome.points = [jobs[0][0]]
        outcome.bundle = jobs[0][2]
        return
    outcome.bundle = _sweep_bundle(outcome, tgt, jobs)


def _sweep_bundle(
    outcome: Outcome, tgt: Target, jobs: list[tuple[Point, ir.Spec, Bundle]]
) -> Bundle:
    from l2hmcc import manifest, pbs, render, sweep
    from l2hmcc.bundle import Bundle
    from l2hmcc.fmt import format_value

    main = outcome.chain[0]
    sha = hashlib.sha256(main.data).hexdigest()
    version = l2hmcc.__version__
    plans: list[tuple[tuple[str, str], ...]] = []
    for _, spec, _ in jobs:
        system = spec.job.system
        if system == "local":
            plans.append(())
        else:
            plan = pbs.plan(spec, target=tgt.name, spec_name=outcome.name, spec_sha256=sha)
            plans.append(plan.directives)
    first_spec = jobs[0][1]
    if any(s.job.system != first_spec.job.system for _, s, _ in jobs):
        submission = sweep.SubmissionPlan(
            "scripts", "the points run on different systems: submit each point on its own"
        )
    else:
        submission = sweep.plan_submission(first_spec.job.system, plans)
    bundle = Bundle()
    points = []
    for p, _, b in jobs:
        for rel, f in b.items():
            bundle.add(f"{p.name}/{rel}", f.data, executable=f.executable)
        points.append(
            manifest.SweepPoint(
                index=p.index,
                name=p.name,
                values=tuple(manifest.PointValue(path=k, value=v) for k, v in p.values),
                manifest_sha256=b[manifest.MANIFEST_NAME].sha256,
            )
        )
    names = [p.name for p, _, _ in jobs]
    axes_text = ", ".join(f"`{s.path}`" for s in outcome.sweeps)
    head = render.generated_header(outcome.name, sha)
    if submission.mode in ("array", "sequence"):
        text = sweep.array_script(submission, names, header=head, axes=axes_text)
        script = sweep.ARRAY_SCRIPT if submission.mode == "array" else sweep.SEQUENCE_SCRIPT
        bundle.add(script, text, executable=True)
    text = sweep.submit_all_script(submission, names, header=head, axes=axes_text)
    bundle.add(sweep.SUBMIT_ALL, text, executable=True)
    _, records = _spec_records(outcome, prefix=f"{names[0]}/")
    record = manifest.SweepManifest(
        generated_by=manifest.header(outcome.name, sha, version),
        l2hmcc_version=version,
        spec=records[0],
        extends=tuple(records[1:]),
        target=manifest.TargetRecord(name=tgt.name, framework=tgt.framework, backend=tgt.backend),
        system=_system_record(first_spec),
        overrides=outcome.overrides,
        axes=tuple(
            manifest.SweepAxis(path=s.path, values=tuple(format_value(a) for a in s.call.args))
            for s in outcome.sweeps
        ),
        points=tuple(points),
        submission=manifest.Submission(mode=submission.mode, reason=submission.reason),
        files=manifest.file_records(bundle),
        bundle_digest=bundle.digest(),
    )
    bundle.add(manifest.SWEEP_NAME, manifest.dumps(record))
    return bundle


def format_file(path: str) -> Outcome:
    """Parse and format; ``outcome.formatted`` is the canonical text."""
    from l2hmcc.fmt import format_spec

    outcome = parse_file(path)
    if outcome.tree is not None:
        outcome.formatted = format_spec(outcome.tree, outcome.sources[path])
    return outcome
