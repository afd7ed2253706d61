"""``manifest.json`` and ``sweep.json``: the records of how a job directory was made.

A job's ``manifest.json`` names the l2hmcc version, the spec (file name, sha256, normalized
text) and every spec it extends, the target and system, the ``--set`` overrides, the sweep
point it is (if any), the fully resolved IR, and every other file of the job with its digest,
so that ``l2hmcc verify`` can check the directory and rebuild it from the spec copies it holds
(``spec.l2h``, ``extends/N-NAME.l2h``). A sweep's ``sweep.json`` records the same about the
spec and lists the points and every file under the sweep directory.

Records are deterministic: no times, no absolute paths (the spec is named by its file name),
keys sorted. Their JSON Schemas are committed as ``l2hmcc/schemas/manifest.schema.json`` and
``sweep.schema.json``; the layout version is ``schema_version``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import l2hmcc
from l2hmcc.bundle import Bundle
from l2hmcc.ir import BackendName, Spec

MANIFEST_VERSION: Literal[2] = 2
SWEEP_VERSION: Literal[1] = 1
MANIFEST_NAME = "manifest.json"
SWEEP_NAME = "sweep.json"
SPEC_COPY_NAME = "spec.l2h"
EXTENDS_DIR = "extends"

RECORD_NAMES = (MANIFEST_NAME, SWEEP_NAME)
"""A directory holding one of these was written by l2hmcc."""

RUN_OUTPUT_DIR = "output"
"""Where a run writes (``train.py --out``): not part of the record."""

_PBS_LOG = re.compile(r"[^/]+\.[oe]\d+(\.\d+|\[\d+\])?")
"""PBS logs: NAME.o123 (array subjobs NAME.o123.4), in the directory ``qsub`` ran in."""
_PYC = re.compile(r"(?P<stem>[^/.]+)\.[A-Za-z0-9_-]+(\.opt-\d+)?\.pyc")
"""Python's bytecode cache of ``STEM.py``: ``__pycache__/STEM.cpython-311.pyc``."""
_JOB_RUN_FILES = frozenset({"hostfile", ".deepspeed_env"})
"""Written into the job directory by job.pbs's DeepSpeed launcher."""


def is_run_artifact(
    relative: str,
    listed: frozenset[str] | set[str],
    job_roots: tuple[str, ...] = ("",),
    log_dirs: tuple[str, ...] = ("",),
) -> bool:
    """Whether a path (file or directory) under a job or sweep directory is something a run
    writes, where runs write it, which ``verify`` ignores and ``--force`` may replace:

    * ``output/`` and DeepSpeed's ``hostfile`` and ``.deepspeed_env`` at a job's top level
      (``job_roots``: ``""`` for a job, ``"POINT/"`` for each point of a sweep);
    * PBS logs (``NAME.o123``, ``NAME.e123.4``) at the top level of a directory ``qsub`` runs
      in (``log_dirs``: the job; a sweep and each of its points);
    * ``__pycache__/STEM.TAG.pyc`` beside a listed ``STEM.py`` (Python's bytecode of the
      carried runtime), and such a ``__pycache__`` directory itself."""
    parts = relative.split("/")
    if "__pycache__" in parts:
        i = parts.index("__pycache__")
        pre = "".join(f"{p}/" for p in parts[:i])
        if len(parts) == i + 1:
            return any(
                p.startswith(pre) and "/" not in p[len(pre) :] and p.endswith(".py") for p in listed
            )
        m = _PYC.fullmatch(parts[-1]) if len(parts) == i + 2 else None
        return m is not None and f"{pre}{m['stem']}.py" in listed
    for root in job_roots:
        if relative.startswith(root):
            rest = relative[len(root) :]
            if rest == RUN_OUTPUT_DIR or rest.startswith(f"{RUN_OUTPUT_DIR}/"):
                return True
            if rest in _JOB_RUN_FILES:
                return True
    return any(
        relative.startswith(d)
        and "/" not in relative[len(d) :]
        and _PBS_LOG.fullmatch(relative[len(d) :]) is not None
        for d in log_dirs
    )


# ---------------------------------------------------------------------------------------------
# Reading a job directory as untrusted input: paths confined to it, regular files only, sizes
# capped. `verify` and `compile --force` read directories someone else may have written.

MAX_FILE_BYTES = 64 << 20
"""A job's files (and its record) are at most this large; a larger one is not ours."""


class JobFileError(Exception):
    """A path of a job directory that cannot be read as one of its files."""

    def __init__(self, rel: str, kind: str, what: str) -> None:
        super().__init__(f"`{rel}` {what}")
        self.rel = rel
        self.kind = kind
        """``missing``, ``symlink`` (the path or a directory on it), ``special`` (not a
        regular file), ``large``, ``unreadable``."""
        self.what = what


def safe_relative(path: str) -> bool:
    """Whether ``path`` names something inside a directory: relative, ``/``-separated,
    without ``.``, ``..`` or empty parts, NUL bytes or control characters."""
    if not path or len(path) > 4096 or path.startswith("/"):
        return False
    if any(ord(c) < 0x20 or c == "\\" for c in path):
        return False
    try:
        os.fsencode(path)  # a lone surrogate (JSON "\ud800") names no file
    except UnicodeEncodeError:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


_O_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


def read_job_file(
    root: str | os.PathLike[str], rel: str, max_bytes: int = MAX_FILE_BYTES
) -> tuple[bytes, int]:
    """The bytes and mode of the regular file ``root/rel``, never following a symbolic link
    (neither the file nor a directory on the way), never blocking on a FIFO, and at most
    ``max_bytes`` long. Raises `JobFileError`."""
    if not safe_relative(rel):
        raise JobFileError(rel, "unsafe", "is not a path inside the directory")
    parts = rel.split("/")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise JobFileError(rel, "unreadable", f"cannot be read: {e.strerror or e}") from None
    try:
        for part in parts[:-1]:
            nfd = os.open(part, _O_FLAGS | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        ffd = os.open(parts[-1], _O_FLAGS | os.O_NONBLOCK, dir_fd=fd)
    except FileNotFoundError:
        raise JobFileError(rel, "missing", "is missing") from None
    except (OSError, ValueError) as e:
        if isinstance(e, OSError) and e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise JobFileError(
                rel, "symlink", "is a symbolic link (or lies under one), not a file"
            ) from None
        why = getattr(e, "strerror", None) or e
        raise JobFileError(rel, "unreadable", f"cannot be read: {why}") from None
    finally:
        os.close(fd)
    try:
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode):
            raise JobFileError(rel, "special", "is not a regular file")
        if st.st_size > max_bytes:
            raise JobFileError(rel, "large", f"is larger than {max_bytes >> 20} MiB")
        chunks = []
        size = 0
        while chunk := os.read(ffd, 1 << 20):
            size += len(chunk)
            if size > max_bytes:  # grew while we read
                raise JobFileError(rel, "large", f"is larger than {max_bytes >> 20} MiB")
            chunks.append(chunk)
        return b"".join(chunks), st.st_mode
    except OSError as e:
        raise JobFileError(rel, "unreadable", f"cannot be read: {e.strerror or e}") from None
    finally:
        os.close(ffd)


def strangers(
    root: str | os.PathLike[str],
    listed: frozenset[str] | set[str],
    job_roots: tuple[str, ...] = ("",),
    log_dirs: tuple[str, ...] = ("",),
    limit: int = 1000,
) -> list[tuple[str, str]]:
    """Everything under ``root`` that is neither listed nor a run's output (`is_run_artifact`),
    as (relative path, what it is): extra files, symbolic links (never followed), FIFOs and
    other special files, directories that are empty. Listed paths are not looked at here
    (`read_job_file` checks them). At most ``limit`` entries."""
    dirs = {"/".join(p.split("/")[:i]) for p in listed for i in range(1, p.count("/") + 1)}
    found: list[tuple[str, str]] = []

    def walk(rel_dir: str) -> bool:
        """Report the strangers under ``rel_dir``; whether it holds anything at all."""
        prefix = f"{rel_dir}/" if rel_dir else ""
        try:
            with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            found.append((rel_dir or ".", f"a directory that cannot be read ({e.strerror})"))
            return True
        for entry in entries:
            if len(found) >= limit:
                break
            rel = prefix + entry.name
            if rel in listed:
                continue
            artifact = is_run_artifact(rel, listed, job_roots, log_dirs)
            if entry.is_symlink():
                found.append((rel, "a symbolic link"))
            elif entry.is_dir(follow_symlinks=False):
                if artifact and entry.name != "__pycache__":
                    continue  # output/: whatever the run wrote
                if not walk(rel) and rel not in dirs and not artifact:
                    found.append((rel, "an empty directory"))
            elif artifact:
                continue
            elif entry.is_file(follow_symlinks=False):
                found.append((rel, "a file"))
            else:
                found.append((rel, "a FIFO, socket or device"))
        return bool(entries)

    walk("")
    return found


class InvalidRecord(Exception):
    """A directory whose ``manifest.json``/``sweep.json`` is missing (``missing``) or cannot
    be a record l2hmcc wrote."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def load_record(
    root: str | os.PathLike[str],
) -> tuple[str, Manifest | SweepManifest, bytes]:
    """The record of a job or sweep directory: its file name, the validated record and its
    bytes. Raises `InvalidRecord` unless it is a valid record of this layout version that
    l2hmcc wrote, every path it names lies inside the directory, and its spec copies are
    among its files."""
    where = Path(root)
    model: type[Manifest] | type[SweepManifest]
    for name, model in ((MANIFEST_NAME, Manifest), (SWEEP_NAME, SweepManifest)):
        try:
            raw, _ = read_job_file(root, name)
        except JobFileError as e:
            if e.kind == "missing":
                continue
            raise InvalidRecord(f"`{where / name}` {e.what}") from None
        file = where / name
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as e:
            why = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
            raise InvalidRecord(f"`{file}` is not valid JSON: {why}") from None
        expected = model.model_fields["schema_version"].default
        found = data.get("schema_version") if isinstance(data, dict) else None
        if found != expected:
            shown = json.dumps(found)[:40] if found is not None else "none"
            raise InvalidRecord(
                f"`{file}` has layout version {shown}; this l2hmcc"
                f" ({l2hmcc.__version__}) reads version {expected}"
            )
        try:
            rec = model.model_validate(data)
        except (ValidationError, RecursionError, ValueError) as e:
            if isinstance(e, ValidationError):
                first = e.errors(include_url=False)[0]
                why = ".".join(str(x) for x in first["loc"])[:200] + f": {first['msg'][:200]}"
            else:
                why = "nested too deeply"
            raise InvalidRecord(f"`{file}` is not a valid record: {why}") from None
        _check_record(file, rec)
        return name, rec, raw
    raise InvalidRecord(
        f"`{where}` is not an l2hmcc job directory (no {' or '.join(RECORD_NAMES)})",
        missing=True,
    )


def _check_record(file: Path, rec: Manifest | SweepManifest) -> None:
    if not rec.generated_by.startswith("generated by l2hmcc "):
        raise InvalidRecord(f"`{file}` was not written by l2hmcc (`generated_by`)")
    listed = {f.path for f in rec.files}
    for f in rec.files:
        if not safe_relative(f.path) or f.path in RECORD_NAMES:
            raise InvalidRecord(f"`{file}` lists `{f.path[:200]}`, which is not a job file")
    for spec in (rec.spec, *rec.extends):
        if spec.file not in listed:
            raise InvalidRecord(
                f"`{file}` names the spec copy `{spec.file[:200]}`, which it does not list"
            )
    if isinstance(rec, SweepManifest):
        for point in rec.points:
            if not safe_relative(point.name) or "/" in point.name:
                raise InvalidRecord(f"`{file}` names a point `{point.name[:200]}`")


def job_roots(rec: Manifest | SweepManifest) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Where a run of this job or sweep writes (`is_run_artifact`): the job roots and the
    directories ``qsub`` runs in."""
    if isinstance(rec, SweepManifest):
        roots = tuple(f"{p.name}/" for p in rec.points)
        return roots, ("", *roots)
    return ("",), ("",)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpecRecord(_Model):
    name: str = Field(
        description="The main spec: its file name as compiled (no directory, so the record does"
        " not depend on where it was compiled from). A base spec: the path its `extends` line"
        " names, as written."
    )
    file: str = Field(description="Its byte-exact copy in the job directory.")
    sha256: str = Field(description="sha256 of the spec file's bytes.")
    normalized: str = Field(
        description="The spec in canonical layout (`l2hmcc fmt`), comments kept: what a"
        " reviewer reads."
    )


class TargetRecord(_Model):
    name: str = Field(description="The `--target`, e.g. `pytorch-ddp`.")
    framework: str = Field(description="`pytorch` or `tensorflow`.")
    backend: BackendName = Field(description="Distributed backend of the target.")


class SystemRecord(_Model):
    name: str = Field(description="`job` system: local, polaris, aurora or sunspot.")
    facts_checked: str = Field(
        description="Date of l2hmcc's system facts (`l2hmcc/systems.py`) the job scripts"
        " were generated from."
    )


class PointValue(_Model):
    path: str = Field(description="Key path of the swept attribute, e.g. `lattice.beta`.")
    value: str = Field(description="This point's value, as written in the spec.")


class PointRecord(_Model):
    index: int = Field(ge=0, description="0-based index of the point in the sweep.")
    count: int = Field(ge=1, description="Points in the sweep.")
    name: str = Field(description="The point's name (its directory in the sweep).")
    values: tuple[PointValue, ...] = Field(description="The value of every swept key.")


class FileRecord(_Model):
    path: str = Field(description="Path relative to the job (or sweep) directory.")
    sha256: str = Field(description="sha256 of the file's bytes.")
    executable: bool = Field(description="Whether the file is written executable.")


class Manifest(_Model):
    """``manifest.json`` of one job directory."""

    schema_version: Literal[2] = Field(
        MANIFEST_VERSION, description="Version of the manifest layout."
    )
    generated_by: str = Field(
        description="`generated by l2hmcc VERSION from SPEC (sha256 ...); do not edit`."
    )
    l2hmcc_version: str = Field(description="Version of the compiler that wrote the job.")
    spec: SpecRecord = Field(description="The spec the job was compiled from.")
    extends: tuple[SpecRecord, ...] = Field(
        (), description="The specs it extends, nearest first (`extends` chain)."
    )
    target: TargetRecord = Field(description="The target it was compiled for.")
    system: SystemRecord = Field(description="The system the job was generated for.")
    overrides: tuple[str, ...] = Field(
        (), description="`--set` overrides applied on top of the spec, in order."
    )
    point: PointRecord | None = Field(
        None, description="The sweep point this job is, or null for a spec without sweeps."
    )
    ir: Spec = Field(description="The resolved IR, overrides applied (the point's values).")
    files: tuple[FileRecord, ...] = Field(
        description="Every other file of the job directory, in bundle order."
    )
    bundle_digest: str = Field(description="Digest of those files (paths, modes, contents).")


class SweepAxis(_Model):
    path: str = Field(description="Key path of the swept attribute.")
    values: tuple[str, ...] = Field(description="Its values, as written.")


class SweepPoint(_Model):
    index: int = Field(ge=0, description="0-based index (the PBS array index).")
    name: str = Field(description="The point's directory.")
    values: tuple[PointValue, ...] = Field(description="The value of every swept key.")
    manifest_sha256: str = Field(description="sha256 of the point's manifest.json.")


class Submission(_Model):
    mode: Literal["array", "sequence", "scripts", "local"] = Field(
        description="`array`: one PBS job array (array.pbs); `sequence`: one job"
        " (sequence.pbs) that runs the points one after another (queues that hold one job per"
        " user); `scripts`: each point's job.pbs submitted on its own; `local`: the points run"
        " one after the other on this machine."
    )
    reason: str = Field(description="Why this mode.")


class SweepManifest(_Model):
    """``sweep.json`` of a sweep directory (one job directory per point)."""

    schema_version: Literal[1] = Field(SWEEP_VERSION, description="Version of this layout.")
    generated_by: str = Field(description="The generated-file notice, as in manifest.json.")
    l2hmcc_version: str = Field(description="Version of the compiler that wrote the sweep.")
    spec: SpecRecord = Field(
        description="The spec (its copy is in every point's directory; `file` names the first)."
    )
    extends: tuple[SpecRecord, ...] = Field((), description="The specs it extends.")
    target: TargetRecord = Field(description="The target of every point.")
    system: SystemRecord = Field(description="The system of the first point.")
    overrides: tuple[str, ...] = Field((), description="`--set` overrides, in order.")
    axes: tuple[SweepAxis, ...] = Field(
        description="The swept keys in spec order; the points are their cartesian product,"
        " the first key varying slowest."
    )
    points: tuple[SweepPoint, ...] = Field(description="Every point, in array-index order.")
    submission: Submission = Field(description="How `submit-all.sh` submits the points.")
    files: tuple[FileRecord, ...] = Field(
        description="Every other file under the sweep directory, the points' included."
    )
    bundle_digest: str = Field(description="Digest of those files.")


def header(spec_name: str, spec_sha256: str, version: str | None = None) -> str:
    """The line every generated file starts with (in its comment syntax)."""
    version = version or l2hmcc.__version__
    return f"generated by l2hmcc {version} from {spec_name} (sha256 {spec_sha256}); do not edit"


def file_records(bundle: Bundle) -> tuple[FileRecord, ...]:
    return tuple(
        FileRecord(path=p, sha256=f.sha256, executable=f.executable) for p, f in bundle.items()
    )


def dumps(record: Manifest | SweepManifest) -> str:
    """Canonical JSON: sorted keys, two-space indent, UTF-8, a final newline."""
    data = record.model_dump(mode="json")
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
