"""Checkpoints: atomic writes, the latest K kept, and a stop flag for clean exits on signals.

A checkpoint is one ``torch.save`` file ``ckpt-<step:08d>.pt`` in a directory. It is written to a
temporary file in the same directory, flushed and ``fsync``-ed, then renamed over the final name
with ``os.replace`` (atomic on POSIX), and the directory is ``fsync``-ed: a reader never sees a
partial file, and a crash leaves either the old or the new checkpoint. Older checkpoints beyond
the latest ``keep`` are then removed. The trainer decides what goes in (model, optimizer, step,
RNG states, beta schedule position, histories, chain state).

``StopFlag`` is set by SIGTERM/SIGUSR1 (batch systems send one before killing a job); the
training loop polls it, writes a checkpoint and returns.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import Any

import torch

__all__ = [
    "StopFlag",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]

_NAME = re.compile(r"^ckpt-(\d{8,})\.pt$")


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files in ``directory``, oldest first (by step)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint in ``directory``, or ``None``."""
    found = list_checkpoints(directory)
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


def save_checkpoint(
    directory: str | os.PathLike[str], step: int, state: dict[str, Any], keep: int = 3
) -> Path:
    """Write ``state`` atomically as ``directory/ckpt-<step>.pt``; keep the latest ``keep``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"ckpt-{step:08d}.pt"
    tmp = d / f".{final.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(d)
    if keep > 0:
        for old in list_checkpoints(d)[:-keep]:
            old.unlink(missing_ok=True)
    return final


def load_checkpoint(
    path: str | os.PathLike[str], map_location: torch.device | str | None = None
) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (our own files: full unpickling)."""
    state: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=False)
    return state


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
