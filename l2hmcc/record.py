"""Reading a job (or sweep) directory back: its record, its spec copies, a recompilation.

`read` finds ``manifest.json`` (a job) or ``sweep.json`` (a sweep) and validates it against
the models of `l2hmcc.manifest`; `recompile` builds the directory again in memory from the
spec copies it carries (read through a `MemoryReader`, so ``extends`` resolves to the
recorded copies, not to whatever lies on disk today), with the recorded overrides, target and
sweep point. ``verify``, ``diff`` and ``show`` are built on these.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

import l2hmcc
from l2hmcc import driver, manifest
from l2hmcc.compose import MemoryReader
from l2hmcc.manifest import FileRecord, Manifest, SpecRecord, SweepManifest


class RecordError(Exception):
    """Not a job directory, or one whose record cannot be read."""


@dataclass(frozen=True)
class JobRecord:
    root: Path
    record_name: str
    """``manifest.json`` or ``sweep.json``."""
    job: Manifest | None
    sweep: SweepManifest | None

    @property
    def kind(self) -> str:
        return "job" if self.job is not None else "sweep"

    @property
    def common(self) -> Manifest | SweepManifest:
        rec = self.job or self.sweep
        assert rec is not None
        return rec

    @property
    def files(self) -> tuple[FileRecord, ...]:
        return self.common.files


def is_job_directory(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / n).is_file() for n in manifest.RECORD_NAMES)


def read(path: str | Path) -> JobRecord:
    """The record of the job or sweep directory ``path``. Raises `RecordError`."""
    root = Path(path)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise RecordError(f"`{root}` {what}")
    for name, model in ((manifest.MANIFEST_NAME, Manifest), (manifest.SWEEP_NAME, SweepManifest)):
        file = root / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_bytes())
        except (OSError, ValueError) as e:
            raise RecordError(f"cannot read `{file}`: {e}") from None
        expected = model.model_fields["schema_version"].default
        found = data.get("schema_version") if isinstance(data, dict) else None
        if found != expected:
            raise RecordError(
                f"`{file}` has layout version {found}; this l2hmcc"
                f" ({l2hmcc.__version__}) reads version {expected}"
            )
        try:
            rec = model.model_validate(data)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            where = ".".join(str(x) for x in first["loc"])
            raise RecordError(f"`{file}` is not a valid record: {where}: {first['msg']}") from None
        if isinstance(rec, Manifest):
            return JobRecord(root, name, rec, None)
        assert isinstance(rec, SweepManifest)
        return JobRecord(root, name, None, rec)
    raise RecordError(
        f"`{root}` is not an l2hmcc job directory (no {' or '.join(manifest.RECORD_NAMES)})"
    )


def reader(rec: JobRecord) -> tuple[MemoryReader, str]:
    """A reader over the spec copies the directory carries, and the main spec's name."""
    common = rec.common
    chain: list[SpecRecord] = [common.spec, *common.extends]
    names = [str(rec.root / r.file) for r in chain]
    files: dict[str, bytes] = {}
    for name in names:
        with contextlib.suppress(OSError):  # a missing copy is reported by the reader
            files[name] = Path(name).read_bytes()
    bases = {names[i]: (chain[i + 1].name, names[i + 1]) for i in range(len(chain) - 1)}
    return MemoryReader(files, bases), names[0]


def recompile(rec: JobRecord) -> driver.Outcome:
    """Build the directory again, in memory (``outcome.bundle``), from its spec copies."""
    common = rec.common
    mem, main = reader(rec)
    point = str(rec.job.point.index) if rec.job is not None and rec.job.point else None
    return driver.build(
        main,
        common.target.name,
        common.overrides,
        point=point,
        reader=mem,
        name=common.spec.name,
    )


def load(rec: JobRecord) -> driver.Outcome:
    """Lower the directory's spec copies again (for spans into them; ``diff``, ``show``):
    the recorded point's spec for a point, the spec itself for a sweep."""
    common = rec.common
    mem, main = reader(rec)
    outcome = driver.load(main, common.overrides, reader=mem, name=common.spec.name)
    if rec.job is None or rec.job.point is None or outcome.tree is None:
        return outcome
    from l2hmcc import sweep
    from l2hmcc.lower import lower

    if outcome.spec is None:
        return outcome
    pts = sweep.points(outcome.spec.experiment.name, outcome.sweeps)
    p = sweep.find_point(pts, str(rec.job.point.index))
    if p is None:
        return outcome
    result = lower(sweep.point_tree(outcome.tree, outcome.sweeps, p), outcome.name)
    outcome.spec, outcome.spans = result.spec, result.spans
    outcome.diagnostics = [*outcome.diagnostics, *result.diagnostics]
    return outcome
