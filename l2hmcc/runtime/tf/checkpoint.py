"""Checkpoints of the TensorFlow runtime: one atomic ``.npz`` per step, the latest K kept, and a
stop flag for clean exits on signals (mirror of ``pt/checkpoint.py``).

A checkpoint is ``ckpt-<step:08d>.npz``: a nested state dict whose array leaves (numpy arrays,
tensors, variables) are stored as arrays under their ``/``-joined paths and whose other leaves
(numbers, strings, ``None``, lists of those) as one JSON document, so that loading needs no
pickle.  Writing goes through ``common.checkpoint.atomic_write`` (temporary file, fsync,
rename, fsync of the directory).  The trainer decides what goes in (model variables under the
PyTorch ``state_dict`` keys, optimizer slots, step, generator state, chains, histories).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from ..common.checkpoint import StopFlag, atomic_write, checkpoint_name, prune
from ..common.checkpoint import latest_checkpoint as _latest
from ..common.checkpoint import list_checkpoints as _list

__all__ = [
    "StopFlag",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]

SUFFIX = ".npz"
_JSON = "__json__"
_SEP = "/"


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files in ``directory``, oldest first (by step)."""
    return _list(directory, SUFFIX)


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint in ``directory``, or ``None``."""
    return _latest(directory, SUFFIX)


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray | np.generic | tf.Tensor | tf.Variable)


def _flatten(
    state: dict[str, Any], prefix: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    for key, value in state.items():
        if _SEP in key:
            raise ValueError(f"checkpoint keys must not contain {_SEP!r}: {key!r}")
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            meta[key] = {}
            _flatten(value, path + _SEP, arrays, meta[key])
        elif _is_array(value):
            arrays[path] = np.asarray(value)
        else:
            meta[key] = value


def save_checkpoint(
    directory: str | os.PathLike[str], step: int, state: dict[str, Any], keep: int = 3
) -> Path:
    """Write ``state`` atomically as ``directory/ckpt-<step>.npz``; keep the latest ``keep``."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    _flatten(state, "", arrays, meta)
    arrays[_JSON] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    final = atomic_write(
        Path(directory) / checkpoint_name(step, SUFFIX), lambda fh: fh.write(buffer.getvalue())
    )
    prune(directory, SUFFIX, keep)
    return final


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (no pickle involved)."""
    with np.load(path, allow_pickle=False) as data:
        state: dict[str, Any] = json.loads(str(data[_JSON]))
        for name in data.files:
            if name == _JSON:
                continue
            *parents, leaf = name.split(_SEP)
            node = state
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = data[name]
    return state
