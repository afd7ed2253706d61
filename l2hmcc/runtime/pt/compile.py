"""``torch.compile`` of the L2HMC proposal, layers and train step, with a fallback to eager.

``maybe_compile(fn, enabled)`` returns ``fn`` itself when disabled, else a callable that runs
``torch.compile(fn)`` and, if compilation (which happens at the first call of every new input
signature) raises, warns once and runs ``fn`` eagerly from then on.

What is compiled (``Dynamics.compile_proposal``, used by ``Trainer`` when ``train.compile``):
without networks (U1), the whole trajectory as one graph (every layer forward, the flip, every
layer backward, the energies); with networks, one leapfrog *layer* (``Dynamics.apply_layer``)
with its networks and mask passed as arguments, so all layers share one graph and compile time
does not grow with the number of layers (an unrolled trajectory with networks compiles for
minutes). ``graph_breaks`` counts graph breaks with ``torch._dynamo.explain``; there are none in
the layer, the proposal or the train step's forward (asserted in the tests), because nothing
random is drawn inside, the force is analytic (not ``autograd.grad``), ``β`` and the step sizes
are 0-d tensors, and ``backward``, clipping and the optimizer step stay outside. The
measurements behind these choices are in the project's ``docs/performance.md``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
import torch._functorch.config  # AOT autograd's settings (autograd_config)

__all__ = ["graph_breaks", "maybe_compile"]

F = TypeVar("F", bound=Callable[..., Any])


def maybe_compile(
    fn: F,
    enabled: bool,
    *,
    name: str = "function",
    autograd_config: Mapping[str, Any] | None = None,
    **compile_kwargs: Any,
) -> F:
    """``torch.compile(fn)`` with an eager fallback (and one warning) if compiling fails.

    ``autograd_config``: ``torch._functorch.config`` settings (AOT autograd's partitioner of the
    forward and backward graphs) in force around the calls made with gradients enabled, where
    AOT autograd compiles ``fn``'s backward; the calls without gradients run as they are."""
    if not enabled:
        return fn
    compiled = torch.compile(fn, **compile_kwargs)
    state = {"failed": False}

    def call(*args: Any, **kwargs: Any) -> Any:
        if autograd_config and torch.is_grad_enabled():
            with torch._functorch.config.patch(**autograd_config):
                return compiled(*args, **kwargs)
        return compiled(*args, **kwargs)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if state["failed"]:
            return fn(*args, **kwargs)
        try:
            return call(*args, **kwargs)
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
