"""Framework-neutral checkpoint plumbing (stdlib only): atomic files, the latest K kept, and a
stop flag for clean exits on signals.

A checkpoint is one file ``ckpt-<step:08d><suffix>`` in a directory (``.pt`` for the PyTorch
runtime, ``.npz`` for the TensorFlow one).  ``atomic_write`` writes it to a temporary file in
the same directory, flushes and ``fsync``-s it, renames it over the final name with
``os.replace`` (atomic on POSIX) and ``fsync``-s the directory: a reader never sees a partial
file, and a crash leaves either the old or the new checkpoint.  ``prune`` then removes all but
the latest ``keep``.

``StopFlag`` is set by SIGTERM/SIGUSR1 (batch systems send one before killing a job); the
training loop polls it, writes a checkpoint and returns.

``pt/checkpoint.py`` and ``tf/checkpoint.py`` add the framework's file format.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import IO, Any

__all__ = [
    "StopFlag",
    "atomic_write",
    "checkpoint_name",
    "latest_checkpoint",
    "list_checkpoints",
    "prune",
]


def checkpoint_name(step: int, suffix: str) -> str:
    """``ckpt-<step:08d><suffix>``."""
    return f"ckpt-{step:08d}{suffix}"


def list_checkpoints(directory: str | os.PathLike[str], suffix: str) -> list[Path]:
    """Checkpoint files ``ckpt-<step><suffix>`` in ``directory``, oldest first (by step)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    pattern = re.compile(r"^ckpt-(\d{8,})" + re.escape(suffix) + "$")
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike[str], suffix: str) -> Path | None:
    """The newest checkpoint in ``directory``, or ``None``."""
    found = list_checkpoints(directory, suffix)
    return found[-1] if found else None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported on this platform/filesystem
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temporary file next to ``path``, fsync, rename onto ``path``."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(final.parent)
    return final


def prune(directory: str | os.PathLike[str], suffix: str, keep: int) -> None:
    """Remove all but the latest ``keep`` checkpoints (``keep <= 0`` keeps all)."""
    if keep > 0:
        for old in list_checkpoints(directory, suffix)[:-keep]:
            old.unlink(missing_ok=True)


class StopFlag:
    """A flag that signal handlers set and the training loop polls.

    ``install()`` registers handlers for ``signals`` (default SIGTERM and SIGUSR1) that set the
    flag; ``uninstall()`` restores the previous handlers. Outside the main thread (where Python
    cannot install handlers) ``install`` does nothing and the flag can still be set directly.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}
        self.signal: int | None = None

    def set(self, signum: int | None = None) -> None:
        self.signal = signum
        self._event.set()

    def clear(self) -> None:
        self.signal = None
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.set(signum)

    def install(self, signals: Iterable[int] | None = None) -> StopFlag:
        if threading.current_thread() is not threading.main_thread():
            return self
        wanted = [signal.SIGTERM] if signals is None else list(signals)
        if signals is None and hasattr(signal, "SIGUSR1"):
            wanted.append(signal.SIGUSR1)
        for sig in wanted:
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
