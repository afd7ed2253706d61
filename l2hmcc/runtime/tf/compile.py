"""Compilation of TensorFlow functions: XLA (`jit_compile=True`), graph or eager.

`compile_function(fn, mode)` wraps `fn` as a `tf.function` with `jit_compile=True` ("xla"), as a
plain `tf.function` ("graph"), or returns it unchanged ("eager"). An XLA function that XLA cannot
compile (an op without an XLA kernel, e.g. `tf.linalg.expm` on complex dtypes or Horovod's
allreduce) falls back to a plain `tf.function`, once, with a warning: the run continues.

Importing this module adds ``--xla_cpu_use_fusion_emitters=false`` to ``XLA_FLAGS`` (read
when XLA first compiles) unless the variable already sets that flag: XLA's CPU fusion emitters
recompute fused elementwise chains per read and make SU(N) steps several times slower (the
measurements are in the l2hmcc documentation, docs/performance.md). XLA aborts on a flag it
does not know ("Unknown flags in XLA_FLAGS") and older TensorFlow builds (2.15, 2.16) predate
this one, so it is added only when the flag's name is in TensorFlow's own shared libraries
(`xla_knows_flag`).

Some kernels are fast in one mode and slow in the other, so the Python body of a function is
traced under `xla_tracing()` and helpers can ask `in_xla()` which formulation to emit.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import tensorflow as tf

MODES = ("eager", "graph", "xla")

XLA_FLAG = "--xla_cpu_use_fusion_emitters=false"


XLA_FLAG_NAME = XLA_FLAG[2:].split("=", 1)[0]


def tensorflow_libraries() -> list[Path]:
    """TensorFlow's shared libraries that may hold XLA (its flag table), smallest first."""
    root = Path(tf.__file__).parent
    found = [
        *root.glob("libtensorflow_framework.so*"),
        *root.glob("libtensorflow_cc.so*"),
        *root.glob("python/_pywrap_tensorflow_internal.so"),
    ]
    return sorted({p for p in found if p.is_file()}, key=lambda p: p.stat().st_size)


def xla_knows_flag(name: str, libraries: Iterable[Path] | None = None) -> bool:
    """Whether the installed XLA defines the flag ``name``: XLA registers every flag by its
    name, so the name is a string in the library that holds XLA."""
    needle = name.encode()
    for path in tensorflow_libraries() if libraries is None else libraries:
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    continue
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    if data.find(needle) >= 0:
                        return True
        except (OSError, ValueError):
            continue
    return False


def configure_xla(libraries: Iterable[Path] | None = None) -> None:
    """Add ``XLA_FLAG`` to ``XLA_FLAGS`` unless the flag is already set there (either way) or
    the installed XLA does not know it (``libraries``: where to look; TensorFlow's own)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if XLA_FLAG_NAME not in flags and xla_knows_flag(XLA_FLAG_NAME, libraries):
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
