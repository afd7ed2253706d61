"""Compact per-step metric history, saved atomically as ``.npz`` (numpy only).

A ``History`` records, for every key, the step numbers at which it was logged and the values
(scalars or fixed-shape arrays such as one value per chain ``[B]``).  Values may be Python
numbers, numpy arrays, or framework tensors (anything with ``.detach().cpu().numpy()`` or
``.numpy()``), so the PyTorch and TensorFlow runtimes share it.  Floating values are stored as
``float32`` by default (``float_dtype=np.float64`` keeps full precision); integers and booleans
keep their kind.

File format: one ``.npz`` with, per key ``k``, the arrays ``k`` ``[T_k, ...]`` and ``k@step``
``[T_k]`` (int64), plus ``__version__``.  ``save`` writes a temporary file in the target
directory and renames it, so a reader never sees a partial file; in a multi-process job only
rank 0 writes (``rank`` argument, or the launcher's environment: ``RANK``, ``PMI_RANK``,
``OMPI_COMM_WORLD_RANK``, ``PALS_RANKID``, ``HOROVOD_RANK``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["History", "atomic_write_bytes", "process_rank", "to_numpy"]

FORMAT_VERSION = 1
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "PALS_RANKID", "HOROVOD_RANK")


def process_rank() -> int:
    """This process's rank from the launcher's environment (0 when not distributed)."""
    for var in _RANK_VARS:
        value = os.environ.get(var)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def to_numpy(value: Any) -> NDArray[Any]:
    """A number, array or framework tensor as a numpy array (detached, on the host)."""
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tensorflow
        value = value.numpy()
    return np.asarray(value)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


class History:
    """Per-step metrics: ``append`` once per step, read back stacked with ``h[key]``."""

    def __init__(self, float_dtype: type[np.floating[Any]] | np.dtype[Any] = np.float32) -> None:
        self.float_dtype = np.dtype(float_dtype)
        self._values: dict[str, list[NDArray[Any]]] = {}
        self._steps: dict[str, list[int]] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._next_step = 0

    # -- recording ----------------------------------------------------------------------------
    def append(
        self, metrics: Mapping[str, Any] | None = None, /, *, step: int | None = None, **kw: Any
    ) -> int:
        """Record one step's metrics (a mapping and/or keywords); returns the step number.

        ``step`` defaults to one more than the last step recorded.  Every key must keep the
        shape of its first value.
        """
        items = dict(metrics or {}, **kw)
        s = self._next_step if step is None else int(step)
        for key, value in items.items():
            arr = self._compact(to_numpy(value))
            shape = self._shapes.setdefault(key, arr.shape)
            if arr.shape != shape:
                raise ValueError(
                    f"history key {key!r}: value of shape {arr.shape} at step {s}, "
                    f"expected {shape} as before"
                )
            self._values.setdefault(key, []).append(arr)
            self._steps.setdefault(key, []).append(s)
        self._next_step = s + 1
        return s

    def _compact(self, arr: NDArray[Any]) -> NDArray[Any]:
        if arr.dtype.kind == "f":
            return arr.astype(self.float_dtype, copy=False)
        if arr.dtype.kind == "c":
            raise TypeError("complex metrics are not supported; log real and imaginary parts")
        return arr

    def extend(self, other: History) -> None:
        """Append every record of ``other`` (with its step numbers) to this history."""
        for key in other:
            for s, v in zip(other.steps(key), other[key], strict=True):
                self.append({key: v}, step=int(s))

    # -- reading ------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        """Number of steps recorded (one more than the last step number)."""
        return self._next_step

    def __getitem__(self, key: str) -> NDArray[Any]:
        """Values of ``key`` stacked along time: ``[T_key, *shape]``."""
        if key not in self._values:
            raise KeyError(f"no metric {key!r} in history; have {sorted(self._values)}")
        return np.stack(self._values[key])

    def get(self, key: str, default: NDArray[Any] | None = None) -> NDArray[Any] | None:
        """``self[key]`` if recorded, else ``default``."""
        return self[key] if key in self._values else default

    def steps(self, key: str) -> NDArray[np.int64]:
        """Step numbers at which ``key`` was recorded."""
        return np.asarray(self._steps[key], dtype=np.int64)

    def last(self, key: str) -> NDArray[Any]:
        return self._values[key][-1]

    def mean(self, key: str, last: int | None = None) -> float:
        """Mean over the last ``last`` records (all by default) and all chains."""
        vals = self[key]
        if last is not None:
            vals = vals[-last:]
        return float(np.mean(vals))

    def as_arrays(self) -> dict[str, NDArray[Any]]:
        return {k: self[k] for k in self._values}

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, rank: int | None = None) -> Path | None:
        """Write ``path`` (``.npz``) atomically; only rank 0 writes (returns None elsewhere)."""
        if (process_rank() if rank is None else rank) != 0:
            return None
        arrays: dict[str, NDArray[Any]] = {"__version__": np.asarray(FORMAT_VERSION)}
        for key in self._values:
            if "@" in key or key == "__version__":
                raise ValueError(f"history key {key!r} is reserved")
            arrays[key] = self[key]
            arrays[f"{key}@step"] = self.steps(key)
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        """Read a history written by ``save``."""
        with np.load(path, allow_pickle=False) as data:
            files = set(data.files)
            float_dtype: Any = np.float32
            out = cls(float_dtype)
            keys = [k for k in data.files if "@" not in k and k != "__version__"]
            for key in keys:
                if f"{key}@step" not in files:
                    raise ValueError(f"{path}: key {key!r} has no step array")
                vals = data[key]
                if vals.dtype.kind == "f" and vals.dtype.itemsize > out.float_dtype.itemsize:
                    out.float_dtype = vals.dtype
                out._values[key] = list(vals)
                out._steps[key] = [int(s) for s in data[f"{key}@step"]]
                out._shapes[key] = tuple(vals.shape[1:])
            out._next_step = max((max(s) + 1 for s in out._steps.values() if s), default=0)
        return out
