"""Write a bundle as a job directory, atomically.

The files are written into a fresh temporary directory beside the destination, which is then
renamed into place, so a job directory is either complete or absent. An existing directory is
never touched without ``force``; with ``force`` it is swapped for the new one atomically
(Linux ``renameat2(RENAME_EXCHANGE)``, else two renames) and then removed, and only if it is
empty or holds a ``manifest.json`` or ``sweep.json`` (so ``--force`` cannot delete a
directory l2hmcc did not write). Files are written 0644 (0755 if executable) and directories
0755 whatever the umask, so two compilations give identical trees, modes included.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path

from l2hmcc.bundle import Bundle
from l2hmcc.manifest import RECORD_NAMES


class EmitError(Exception):
    def __init__(self, code: str, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help


def write_bundle(bundle: Bundle, out: Path, *, force: bool = False) -> Path:
    """Write ``bundle`` to the directory ``out``; returns ``out``. Raises `EmitError`."""
    out = Path(out)
    exists = out.exists() or out.is_symlink()
    if exists:
        if not force:
            raise EmitError(
                "E304",
                f"`{out}` already exists",
                help="pass `--force` to replace it, or choose another directory with `-o`",
            )
        if not out.is_dir() or out.is_symlink():
            raise EmitError("E304", f"`{out}` exists and is not a directory")
        if any(out.iterdir()) and not any((out / n).is_file() for n in RECORD_NAMES):
            raise EmitError(
                "E304",
                f"refusing to replace `{out}`: it is not an l2hmcc job directory"
                f" (no {' or '.join(RECORD_NAMES)})",
                help="choose another directory with `-o`",
            )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise EmitError("E305", f"cannot create `{out.parent}`: {e.strerror or e}") from None
    try:
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
        if exists:
            _swap(tmp, out)
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old job
        else:
            os.rename(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EmitError("E305", f"cannot write `{out}`: {e.strerror or e}") from None
    return out


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _swap(new: Path, old: Path) -> None:
    """Exchange two directories atomically where the OS can, else rename twice."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(libc_name, use_errno=True)
            rc = libc.renameat2(
                _AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(old), _RENAME_EXCHANGE
            )
            if rc == 0:
                return
    aside = Path(tempfile.mkdtemp(prefix=f".{old.name}.old-", dir=old.parent))
    os.rename(old, aside / "job")
    os.rename(new, old)
    os.rename(aside / "job", new)
    aside.rmdir()
