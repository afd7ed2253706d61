"""Reading a job (or sweep) directory back: its record, its spec copies, a recompilation.

`read` finds ``manifest.json`` (a job) or ``sweep.json`` (a sweep) and validates it against
the models of `l2hmcc.manifest`; `recompile` builds the directory again in memory from the
spec copies it carries (read through a `MemoryReader`, so ``extends`` resolves to the
recorded copies, not to whatever lies on disk today), with the recorded overrides, target and
sweep point. ``verify``, ``diff`` and ``show`` are built on these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import l2hmcc
from l2hmcc import driver, manifest, systems
from l2hmcc.compose import MemoryReader
from l2hmcc.manifest import FileRecord, Manifest, SpecRecord, SweepManifest


class RecordError(Exception):
    """Not a job directory (``invalid`` false), or one whose record cannot be read or is not
    a valid record (``invalid``)."""

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid


@dataclass(frozen=True)
class JobRecord:
    root: Path
    record_name: str
    """``manifest.json`` or ``sweep.json``."""
    job: Manifest | None
    sweep: SweepManifest | None
    raw: bytes = b""
    """The record's bytes as read."""

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
    """The record of the job or sweep directory ``path``, read as untrusted input
    (`manifest.load_record`). Raises `RecordError`."""
    root = Path(path)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise RecordError(f"`{root}` {what}")
    try:
        name, rec, raw = manifest.load_record(root)
    except manifest.InvalidRecord as e:
        raise RecordError(str(e), invalid=not e.missing) from None
    if rec.target.name not in systems.TARGETS:
        raise RecordError(
            f"`{root / name}` records the target `{rec.target.name[:100]}`, which this l2hmcc"
            f" ({l2hmcc.__version__}) does not know",
            invalid=True,
        )
    if isinstance(rec, Manifest):
        return JobRecord(root, name, rec, None, raw)
    return JobRecord(root, name, None, rec, raw)


def reader(rec: JobRecord) -> tuple[MemoryReader, str]:
    """A reader over the spec copies the directory carries, and the main spec's name."""
    common = rec.common
    chain: list[SpecRecord] = [common.spec, *common.extends]
    names = [str(rec.root / r.file) for r in chain]
    files: dict[str, bytes] = {}
    unreadable: dict[str, str] = {}
    for r, name in zip(chain, names, strict=True):
        # A missing, linked or special copy is left out: the files check reports it and
        # the reader says why it cannot read it.
        try:
            files[name] = manifest.read_job_file(rec.root, r.file)[0]
        except manifest.JobFileError as e:
            unreadable[name] = e.what
    bases = {names[i]: (chain[i + 1].name, names[i + 1]) for i in range(len(chain) - 1)}
    return MemoryReader(files, bases, unreadable), names[0]


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
