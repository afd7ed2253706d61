"""Wires the stages: read → parse → (overrides) → lower → check → render → write.

Each public function returns an outcome with every diagnostic found and the sources they
point into; none raises for bad input. The CLI is a thin layer over these functions.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from l2hmcc import __version__
from l2hmcc.diagnostics import Diagnostic, error, finalize, has_errors
from l2hmcc.source import Source, SourceError, Span, read_source
from l2hmcc.syntax import SpecFile, parse

if TYPE_CHECKING:
    from l2hmcc import ir
    from l2hmcc.lower import SpanMap

# The later stages (lower needs pydantic, targets and emit the filesystem) are imported
# inside the functions that use them, so that `fmt` and `explain` stay light.


@dataclass
class Outcome:
    """The result of running some stages on one spec."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    tree: SpecFile | None = None
    spec: ir.Spec | None = None
    spans: SpanMap | None = None
    out_dir: Path | None = None
    formatted: str | None = None

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def _read(path: str, outcome: Outcome) -> Source | None:
    try:
        src = read_source(path)
    except SourceError as e:
        outcome.diagnostics.append(error(e.code, e.message, Span.whole_file(path), help=e.help))
        return None
    outcome.sources[src.name] = src
    return src


def parse_file(path: str) -> Outcome:
    """Read and parse."""
    outcome = Outcome(path)
    src = _read(path, outcome)
    if src is None:
        return outcome
    result = parse(src)
    outcome.tree = result.tree
    outcome.diagnostics.extend(result.diagnostics)
    return outcome


def load(path: str, overrides: tuple[str, ...] = ()) -> Outcome:
    """Read, parse, apply ``--set`` overrides and lower to the IR."""
    from l2hmcc.lower import apply_overrides, lower, override_source, parse_override

    outcome = parse_file(path)
    if outcome.tree is None:
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
    tree = apply_overrides(outcome.tree, parsed)
    result = lower(tree, path)
    outcome.spec, outcome.spans = result.spec, result.spans
    outcome.diagnostics = finalize([*outcome.diagnostics, *result.diagnostics])
    return outcome


def check(path: str, overrides: tuple[str, ...] = (), target: str | None = None) -> Outcome:
    """Everything up to and including the checks (with the target's checks if given)."""
    from l2hmcc import checks

    outcome = load(path, overrides)
    if outcome.spec is None or outcome.spans is None:
        return outcome
    tgt = None
    if target:  # the target modules (and Jinja) are imported only when a target is asked for
        from l2hmcc import targets

        tgt = targets.get(target)
    spec = outcome.spec
    if tgt is not None:
        spec = resolve_backend(spec, outcome.spans, tgt.backend)
        outcome.spec = spec
    found = checks.check(spec, outcome.spans, tgt)
    outcome.diagnostics = finalize([*outcome.diagnostics, *found])
    return outcome


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


def compile(
    path: str,
    target: str,
    out: str | Path | None = None,
    *,
    force: bool = False,
    overrides: tuple[str, ...] = (),
) -> Outcome:
    """Check, render the target's files, and write the job directory atomically.

    The directory holds the target's files, a byte-exact copy of the spec (``spec.l2h``)
    and ``manifest.json``. Default location: ``jobs/<experiment>-<target>``."""
    from l2hmcc import manifest, targets
    from l2hmcc.bundle import Bundle
    from l2hmcc.emit import EmitError, write_bundle
    from l2hmcc.targets import RenderContext

    tgt = targets.get(target)
    if tgt is None:
        raise ValueError(f"unknown target {target!r}")  # the CLI validates targets first
    outcome = check(path, overrides, target)
    spec, spans = outcome.spec, outcome.spans
    if not outcome.ok or spec is None or spans is None:
        return outcome
    src = outcome.sources[path]
    if spec.sweeps:
        outcome.diagnostics.extend(
            error(
                "E303",
                f"`{sweep.path}` is a sweep of {len(sweep.values)} values; compile needs one",
                spans.value(sweep.path),
                "sweep",
                help=f"pick one value, or override it: `--set {sweep.path}=...`",
            )
            for sweep in spec.sweeps
        )
        return outcome
    try:
        raw = Path(path).read_bytes()  # the copy and its digest are of the bytes as on disk
    except OSError as e:
        outcome.diagnostics.append(
            error("E010", f"cannot read `{path}`: {e}", Span.whole_file(path))
        )
        return outcome
    sha = hashlib.sha256(raw).hexdigest()
    ctx = RenderContext(path, src.text, sha, __version__, overrides)
    try:
        bundle = Bundle()
        bundle.update(tgt.render(spec, ctx))
        bundle.add(manifest.SPEC_COPY_NAME, raw)
        record = manifest.TargetRecord(name=tgt.name, framework=tgt.framework, backend=tgt.backend)
        m = manifest.build(
            spec,
            spec_path=path,
            spec_sha256=sha,
            target=record,
            overrides=overrides,
            bundle=bundle,
        )
        bundle.add(manifest.MANIFEST_NAME, manifest.dumps(m))
    except Exception as e:  # a target bug must still not show a traceback to users
        if os.environ.get("L2HMCC_TRACEBACK"):
            raise
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
    out_dir = Path(out) if out is not None else Path("jobs") / f"{spec.experiment.name}-{target}"
    try:
        outcome.out_dir = write_bundle(bundle, out_dir, force=force)
    except EmitError as e:
        span = Span.whole_file(str(out_dir))
        outcome.diagnostics.append(error(e.code, e.message, span, help=e.help))
    return outcome


def format_file(path: str) -> Outcome:
    """Parse and format; ``outcome.formatted`` is the canonical text."""
    from l2hmcc.fmt import format_spec

    outcome = parse_file(path)
    if outcome.tree is not None:
        outcome.formatted = format_spec(outcome.tree, outcome.sources[path])
    return outcome
