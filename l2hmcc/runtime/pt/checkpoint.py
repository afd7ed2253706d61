"""Checkpoints of the PyTorch trainer: ``torch.save`` files written atomically, the latest K kept,
and the stop flag for clean exits on signals.

A checkpoint is ``ckpt-<step:08d>.pt`` in a directory, written by ``common.checkpoint``'s
``atomic_write`` (temporary file in the same directory, flush, ``fsync``, ``os.replace``,
directory ``fsync``: a reader never sees a partial file, a crash leaves the old or the new one),
then all but the latest ``keep`` are removed. The trainer decides what goes in (model,
optimizer, step, RNG states, beta schedule position, histories, chain state). ``StopFlag`` (set
by SIGTERM/SIGUSR1) is ``common.checkpoint.StopFlag``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..common import checkpoint as common
from ..common.checkpoint import StopFlag

__all__ = [
    "StopFlag",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]

SUFFIX = ".pt"


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files in ``directory``, oldest first (by step)."""
    return common.list_checkpoints(directory, SUFFIX)


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint in ``directory``, or ``None``."""
    return common.latest_checkpoint(directory, SUFFIX)


def save_checkpoint(
    directory: str | os.PathLike[str], step: int, state: dict[str, Any], keep: int = 3
) -> Path:
    """Write ``state`` atomically as ``directory/ckpt-<step>.pt``; keep the latest ``keep``."""
    path = Path(directory) / common.checkpoint_name(step, SUFFIX)
    common.atomic_write(path, lambda fh: torch.save(state, fh))
    common.prune(directory, SUFFIX, keep)
    return path


def load_checkpoint(
    path: str | os.PathLike[str], map_location: torch.device | str | None = None
) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (our own files: full unpickling)."""
    state: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=False)
    return state
