"""Compilation of TensorFlow functions: XLA (`jit_compile=True`), graph or eager.

`compile_function(fn, mode)` wraps `fn` as a `tf.function` with `jit_compile=True` ("xla"), as a
plain `tf.function` ("graph"), or returns it unchanged ("eager"). An XLA function that XLA cannot
compile (an op without an XLA kernel, e.g. `tf.linalg.expm` on complex dtypes or Horovod's
allreduce) falls back to a plain `tf.function`, once, with a warning: the run continues.

Importing this module adds ``--xla_cpu_use_fusion_emitters=false`` to ``XLA_FLAGS`` (read
when XLA first compiles) unless the variable already sets that flag: XLA's CPU fusion emitters
recompute fused elementwise chains per read and make SU(N) steps several times slower (the
measurements are in the l2hmcc documentation, docs/performance.md).

Some kernels are fast in one mode and slow in the other, so the Python body of a function is
traced under `xla_tracing()` and helpers can ask `in_xla()` which formulation to emit.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import tensorflow as tf

MODES = ("eager", "graph", "xla")

XLA_FLAG = "--xla_cpu_use_fusion_emitters=false"


def configure_xla() -> None:
    """Add ``XLA_FLAG`` to ``XLA_FLAGS`` unless the flag is already set there (either way)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_FLAG}".strip()


configure_xla()

_state = threading.local()


def in_xla() -> bool:
    """True while a function compiled with `mode="xla"` is being traced."""
    return bool(getattr(_state, "xla", False))


@contextlib.contextmanager
def xla_tracing(on: bool = True) -> Iterator[None]:
    previous = in_xla()
    _state.xla = on
    try:
        yield
    finally:
        _state.xla = previous


def normalize_mode(mode: str | bool | None) -> str:
    """`True`/"xla"/"jit" → "xla"; "graph"/"function" → "graph"; `False`/`None`/"eager" → "eager"."""
    if mode is True:
        return "xla"
    if mode is None or mode is False:
        return "eager"
    aliases = {"xla": "xla", "jit": "xla", "graph": "graph", "function": "graph", "eager": "eager"}
    if mode not in aliases:
        raise ValueError(f"compile mode must be one of {MODES}, got {mode!r}")
    return aliases[mode]


class CompiledFunction:
    """A callable running `fn` in the requested mode, with the XLA → graph fallback."""

    def __init__(self, fn: Callable[..., Any], mode: str | bool | None, name: str = "") -> None:
        self.fn = fn
        self.requested = normalize_mode(mode)
        self.mode = self.requested
        self.name = name or getattr(fn, "__name__", "function")
        self._impl = self._build(self.mode)
        self._first_call = True

    def _build(self, mode: str) -> Callable[..., Any]:
        if mode == "eager":
            return self.fn
        fn = self.fn
        xla = mode == "xla"

        def traced(*args: Any, **kwargs: Any) -> Any:
            with xla_tracing(xla):
                return fn(*args, **kwargs)

        traced.__name__ = self.name
        compiled: Callable[..., Any] = tf.function(
            traced, jit_compile=xla, autograph=False, reduce_retracing=True
        )
        return compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not (self._first_call and self.mode == "xla"):
            return self._impl(*args, **kwargs)
        try:
            out = self._impl(*args, **kwargs)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err)
            warnings.warn(
                f"XLA cannot compile {self.name!r} ({first_line}); "
                "falling back to a plain tf.function",
                RuntimeWarning,
                stacklevel=2,
            )
            self.mode = "graph"
            self._impl = self._build("graph")
            out = self._impl(*args, **kwargs)
        self._first_call = False
        return out


def compile_function(
    fn: Callable[..., Any], mode: str | bool | None = "xla", name: str = ""
) -> CompiledFunction:
    """Wrap `fn` for `mode` ("eager", "graph", "xla"; `True` means "xla")."""
    return CompiledFunction(fn, mode, name)
