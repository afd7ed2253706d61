"""The TensorFlow job driver: one ``Run`` per process, used by every generated TF ``train.py``.

``Run`` is ``common.driver.JobDriver`` (the phases, the outputs, ``run.json``; see there) with
TensorFlow's tensors: ``tf.random.set_seed``, chains copied or tiled with TF, TensorBoard
through ``tf.summary``.

Compilation follows the spec's ``train.compile`` (``--compile/--no-compile`` override it):
``true`` is the trainer's ``"xla"`` mode (the leapfrog layers, forward and backward, the
optimizer update, the accept/reject step and the HMC trajectory under
``tf.function(jit_compile=True)``, falling back to a plain ``tf.function`` with a warning where
XLA cannot compile), ``false`` is eager. The environment variable ``L2HMCC_TF_COMPILE_MODE``
(``eager``, ``graph``, ``xla``, ``xla-step``, ``xla-full``; ``trainer.COMPILE_MODES``) picks a
mode outright, for benchmarks (``bench/bench_targets_tf.py``).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import tensorflow as tf

from ..common.driver import STOPPED_EXIT_CODE, JobDriver
from ..common.history import History
from ..common.run import Lattice
from .trainer import COMPILE_MODES

__all__ = ["COMPILE_MODE_VARIABLE", "STOPPED_EXIT_CODE", "Run"]

COMPILE_MODE_VARIABLE = "L2HMCC_TF_COMPILE_MODE"


class Run(JobDriver):
    """One process's run of a generated TensorFlow job (``common.driver.JobDriver``)."""

    version_modules = ("tensorflow", "horovod")
    distributed_targets = "tensorflow-horovod"

    @property
    def compile_mode(self) -> str | None:
        """The trainer's ``compile_mode``: ``L2HMCC_TF_COMPILE_MODE`` if set, else ``None``
        (the trainer follows ``train.compile``)."""
        mode = os.environ.get(COMPILE_MODE_VARIABLE)
        if not mode:
            return None
        if mode not in COMPILE_MODES:
            raise SystemExit(
                f"train.py: {COMPILE_MODE_VARIABLE}={mode!r}: expected {COMPILE_MODES}"
            )
        return mode

    def seed(self, seed: int) -> None:
        tf.random.set_seed(seed)

    def trainer_options(self) -> dict[str, Any]:
        return {"compile_mode": self.compile_mode}

    def cold_start(self, trainer: Any, lattice: Lattice) -> tf.Tensor:
        return trainer.group.cold(trainer.config.chains, lattice.shape, dtype=trainer.dtype)

    def chains_like(self, x: tf.Tensor, chains: int) -> tf.Tensor:
        n = int(x.shape[0])
        if chains == n:
            return tf.identity(x)
        reps = math.ceil(chains / n)
        return tf.tile(x, [reps] + [1] * (len(x.shape) - 1))[:chains]

    def step_sizes(self, trainer: Any) -> list[float]:
        return [float(e) for e in trainer.model.step_sizes().numpy()]

    def train(self, trainer: Any, lattice: Lattice) -> bool:
        done = super().train(trainer, lattice)
        requested = self.compile_mode or ("xla" if trainer.config.compile else "eager")
        mode = trainer.compile_mode
        fallback = "" if mode == requested else f" (XLA could not compile it: not {requested!r})"
        self.log(f"compile mode {mode!r}{fallback}")
        return done

    def tensorboard(self, histories: dict[str, History]) -> None:
        try:  # tf.summary writes events only with the tensorboard package installed
            import tensorboard  # noqa: F401
        except ImportError as exc:
            warnings.warn(f"--tensorboard: {exc}; no events written", RuntimeWarning, stacklevel=2)
            return
        writer = tf.summary.create_file_writer(str(self.out / "tensorboard"))
        with writer.as_default():
            for tag, step, value in self.scalars(histories):
                tf.summary.scalar(tag, value, step=step)
        writer.close()
