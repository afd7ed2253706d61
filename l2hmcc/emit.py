"""Write a bundle as a job directory, atomically.

The files are written into a fresh temporary directory beside the destination, which is then
renamed into place, so a job directory is either complete or absent. An existing directory is
never touched without ``force``; with ``force`` it is swapped for the new one atomically
(Linux ``renameat2(RENAME_EXCHANGE)``, else two renames) and then removed, and only if it is
empty or is a job (or sweep) directory with a valid record that holds nothing but the files
its record lists and what runs write (so ``--force`` cannot delete what l2hmcc did not
write). Two processes writing the same new directory do not fail: the later one replaces the
earlier one's job (with ``force``) or reports that it exists. Files are written 0644 (0755 if executable) and directories
0755 whatever the umask, so two compilations give identical trees, modes included.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import tempfile
from pathlib import Path

from l2hmcc import manifest
from l2hmcc.bundle import Bundle


class EmitError(Exception):
    def __init__(self, code: str, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help


#: How often `write_bundle` tries again when another process creates the directory first.
_ATTEMPTS = 5


def write_bundle(bundle: Bundle, out: str | Path, *, force: bool = False) -> Path:
    """Write ``bundle`` to the directory ``out``; returns ``out``. Raises `EmitError`."""
    given = str(out) or "''"
    out = Path(out)
    if given == "''" or out.name in ("", ".", ".."):
        raise EmitError(
            "E360",
            f"`-o {given}` names no new directory for the job",
            help="give the job its own directory, e.g. `-o jobs/u1-pytorch`",
        )
    if out.exists() or out.is_symlink():
        _check_replace(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        why = "a file is in the way" if isinstance(e, FileExistsError) else e.strerror or e
        raise EmitError("E305", f"cannot create `{out.parent}`: {why}") from None
    try:
        _write_files(bundle, tmp)
        for _ in range(_ATTEMPTS):
            if out.exists() or out.is_symlink():
                _check_replace(out, force)
                try:
                    _swap(tmp, out)
                except FileNotFoundError:
                    continue  # it went away meanwhile: rename into place instead
                shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old job
                return out
            try:
                os.rename(tmp, out)
                return out
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                # Another process (a concurrent `compile`) wrote it first: look again.
        raise EmitError(
            "E304",
            f"`{out}` keeps being replaced by another process",
            help="run one `l2hmcc compile` at a time into the same directory",
        )
    except OSError as e:
        raise EmitError("E305", f"cannot write `{out}`: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write_files(bundle: Bundle, tmp: Path) -> None:
    for rel, f in bundle.items():
        path = tmp / rel
        for parent in reversed(path.relative_to(tmp).parents[:-1]):
            d = tmp / parent
            if not d.is_dir():
                d.mkdir()
                d.chmod(0o755)  # fixed modes, whatever the umask: a reproducible tree
        path.write_bytes(f.data)
        path.chmod(0o755 if f.executable else 0o644)
    tmp.chmod(0o755)


def _check_replace(out: Path, force: bool) -> None:
    """Raise `EmitError` unless ``--force`` may replace the existing ``out``: an empty
    directory, or a job or sweep directory with a valid l2hmcc record that holds only the
    files its record lists and what runs write (so nothing else is deleted)."""
    if not force:
        raise EmitError(
            "E304",
            f"`{out}` already exists",
            help="pass `--force` to replace it, or choose another directory with `-o`",
        )
    if not out.is_dir() or out.is_symlink():
        raise EmitError("E304", f"`{out}` exists and is not a directory")
    try:
        if not any(out.iterdir()):
            return
        name, rec, _ = manifest.load_record(out)
    except OSError as e:
        raise EmitError("E304", f"cannot look into `{out}`: {e.strerror or e}") from None
    except manifest.InvalidRecord as e:
        why = (
            f"no {' or '.join(manifest.RECORD_NAMES)}"
            if e.missing
            else str(e).replace(f"`{out}/", "`")
        )
        raise EmitError(
            "E304",
            f"refusing to replace `{out}`: it is not an l2hmcc job directory ({why})",
            help="choose another directory with `-o`"
            if e.missing
            else "a job written by another l2hmcc version (its record no longer reads) is"
            " replaced only by hand: remove it yourself, or choose another directory with `-o`",
        ) from None
    listed = {f.path for f in rec.files}
    foreign = [
        (rel, "not a regular file")
        for rel in sorted(listed)
        if (out / rel).is_symlink() or ((out / rel).exists() and not (out / rel).is_file())
    ]
    roots, log_dirs = manifest.job_roots(rec)
    foreign += manifest.strangers(out, {*listed, name}, roots, log_dirs, limit=6)
    if foreign:
        shown = ", ".join(f"`{rel}` ({what})" for rel, what in foreign[:5])
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise EmitError(
            "E304",
            f"refusing to replace `{out}`: it holds what its {name} does not list: {shown}{more}",
            help="`--force` replaces only what l2hmcc wrote and runs write; move the rest away"
            " or choose another directory with `-o`",
        )


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _swap(new: Path, old: Path) -> None:
    """Exchange two directories atomically where the OS can, else rename twice. Raises
    `FileNotFoundError` if ``old`` is gone."""
    libc_name = ctypes.util.find_library("c")
    libc = None
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(libc_name, use_errno=True)
    if libc is not None and hasattr(libc, "renameat2"):
        rc = libc.renameat2(
            _AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(old), _RENAME_EXCHANGE
        )
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):  # else: no atomic exchange here
            raise OSError(err, os.strerror(err), str(old))
    aside = Path(tempfile.mkdtemp(prefix=f".{old.name}.old-", dir=old.parent))
    try:
        os.rename(old, aside / "job")
        os.rename(new, old)
        os.rename(aside / "job", new)
    finally:
        if (aside / "job").exists():  # put the old job back where the swap stopped
            with contextlib.suppress(OSError):
                os.rename(aside / "job", old)
        with contextlib.suppress(OSError):
            aside.rmdir()
