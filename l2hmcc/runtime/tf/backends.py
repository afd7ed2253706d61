"""The TensorFlow backends of a generated job: ``distributed.Backend`` plus what the job driver
(``common/driver.py``) needs (mirror of ``pt/backends.py``).

* ``all_gather_chains(array)``: per-chain metric arrays ``[T, B, ...]`` of every rank joined
  along the chain axis (``[T, world·B, ...]``), so rank 0 summarises all chains;
* ``gather_objects(obj)``: a small picklable object from every rank (host names for run.json);
* ``after_resume()``: called once after a checkpoint was loaded (nothing to refresh in TF:
  every rank loads its own checkpoint, whose variables equal rank 0's);
* ``comm``: the communication library for run.json (``horovod-gloo``, ``horovod-mpi`` or
  ``None``); ``close()``: shut the library down at the end.

``select_device`` picks the device before TensorFlow initialises any: with ``cpu`` the GPUs are
hidden; with several accelerators per node each rank sees the one of its local rank (Horovod's
rule), so that ``/GPU:0`` (``/XPU:0`` with Intel's extension on Aurora) is its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from ..common.launch import LaunchEnv, SingleRankExtras
from .distributed import Horovod, SingleProcess

__all__ = ["DEVICE_KINDS", "HorovodBackend", "SingleProcessBackend", "select_device"]

DEVICE_KINDS = ("auto", "cpu", "cuda", "xpu", "mps")

#: TensorFlow's device type for each ``--device`` choice (TF-Metal's Apple GPU is a ``GPU``).
_TF_TYPES = {"cuda": "GPU", "xpu": "XPU", "mps": "GPU"}


def select_device(env: LaunchEnv, preference: str = "auto") -> str:
    """The device of this rank as ``run.json`` names it (``cpu``, ``cuda:0``, ``xpu:0``,
    ``mps``, as PyTorch does), after making it the one TensorFlow places operations on.

    ``auto``: a GPU, then an XPU, else the CPU. With several devices of the kind visible, the
    local rank's (modulo the count) becomes the only visible one. Must run before TensorFlow
    creates its devices (before the first operation).
    """
    if preference not in DEVICE_KINDS:
        raise ValueError(f"device: expected one of {DEVICE_KINDS}, got {preference!r}")
    kind = preference
    if kind == "auto":
        kind = "cpu"
        for candidate in ("cuda", "xpu"):
            if tf.config.list_physical_devices(_TF_TYPES[candidate]):
                kind = candidate
                break
    if kind == "cpu":
        for accel in ("GPU", "XPU"):
            if tf.config.list_physical_devices(accel):
                tf.config.set_visible_devices([], accel)
        return "cpu"
    tf_type = _TF_TYPES[kind]
    devices = tf.config.list_physical_devices(tf_type)
    if not devices:
        raise SystemExit(f"train.py: --device {preference}: TensorFlow sees no {tf_type} device")
    mine = devices[env.local_rank % len(devices)]
    tf.config.set_visible_devices([mine], tf_type)
    if tf_type == "GPU":
        tf.config.experimental.set_memory_growth(mine, True)
    return "mps" if kind == "mps" else f"{kind}:{env.local_rank % len(devices)}"


class SingleProcessBackend(SingleRankExtras, SingleProcess):
    """``SingleProcess`` with the job driver's extras (identity gathers, nothing to refresh)."""


class HorovodBackend(Horovod):
    """``distributed.Horovod`` (``hvd.init()``; gradients all-reduced outside the XLA train
    step) with the job driver's extras. ``fp16_allreduce`` compresses the gradients to fp16 for
    the allreduce (``hvd.Compression.fp16``)."""

    def __init__(self, *, fp16_allreduce: bool = False) -> None:
        super().__init__()
        self.fp16_allreduce = fp16_allreduce

    @property
    def comm(self) -> str:
        return "horovod-gloo" if self._hvd.gloo_enabled() else "horovod-mpi"

    def reduce_gradients(self, grads: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        if not self.fp16_allreduce or self.world_size == 1:
            return super().reduce_gradients(grads)
        hvd = self._hvd
        out = hvd.grouped_allreduce(list(grads), op=hvd.Average, compression=hvd.Compression.fp16)
        return list(out)

    def close(self) -> None:
        self._hvd.shutdown()

    def all_gather_chains(self, array: NDArray[Any]) -> NDArray[Any]:
        # hvd.allgather concatenates along the first axis: put the chain axis first.
        chains_first = tf.constant(np.ascontiguousarray(np.moveaxis(array, 1, 0)))
        out = self._hvd.allgather(chains_first).numpy()
        return np.moveaxis(out, 0, 1)

    def gather_objects(self, obj: Any) -> list[Any]:
        return list(self._hvd.allgather_object(obj))

    def after_resume(self) -> None:
        return None
