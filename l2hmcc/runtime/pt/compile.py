"""``torch.compile`` of the L2HMC proposal and train step, with a fallback to eager.

``maybe_compile(fn, enabled)`` returns ``fn`` itself when disabled, else a callable that runs
``torch.compile(fn)`` and, if compilation (which happens at the first call of every new input
signature) raises, warns once and runs ``fn`` eagerly from then on.

What compiles, and why there are no graph breaks (``graph_breaks`` measures them):

* the proposal draws no random numbers (momenta, directions and MH uniforms are drawn outside),
  so it is one graph: layers are Python loops over ``nn.ModuleList`` entries (unrolled), the
  force is part A's analytic ``action_and_force`` (no ``autograd.grad`` inside, so nothing to
  break on and training differentiates it once, not twice), ``β`` is a 0-d tensor (a Python
  float would be specialised and recompiled whenever the β schedule moves);
* the train step (proposal + loss) is one forward graph; AOTAutograd compiles its backward;
  ``loss.backward()``, gradient clipping and the optimizer step stay outside (eager).

Measured graph breaks (``tests/runtime/pt/test_compile.py`` asserts them): 0 for the proposal
and the train step, U1 and SU(N), merged and random directions.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import torch

__all__ = ["graph_breaks", "maybe_compile"]

F = TypeVar("F", bound=Callable[..., Any])


def maybe_compile(fn: F, enabled: bool, *, name: str = "function", **compile_kwargs: Any) -> F:
    """``torch.compile(fn)`` with an eager fallback (and one warning) if compiling fails."""
    if not enabled:
        return fn
    compiled = torch.compile(fn, **compile_kwargs)
    state = {"failed": False}

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if state["failed"]:
            return fn(*args, **kwargs)
        try:
            return compiled(*args, **kwargs)
        except Exception as exc:  # compile errors surface at the first call of a signature
            state["failed"] = True
            warnings.warn(
                f"torch.compile of the {name} failed ({type(exc).__name__}: {exc}); running eager",
                RuntimeWarning,
                stacklevel=2,
            )
            return fn(*args, **kwargs)

    return run  # type: ignore[return-value]


def graph_breaks(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``torch._dynamo.explain`` summary: graph count, graph-break count and the reasons."""
    torch._dynamo.reset()
    out = torch._dynamo.explain(fn)(*args, **kwargs)
    return {
        "graphs": out.graph_count,
        "graph_breaks": out.graph_break_count,
        "reasons": [str(r.reason) for r in out.break_reasons],
        "ops": out.op_count,
    }
