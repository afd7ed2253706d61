"""``torch.compile`` of the L2HMC layers, proposal and train step, with a fallback to eager.

``maybe_compile(fn, enabled)`` returns ``fn`` itself when disabled, else a callable that runs
``torch.compile(fn)`` and, if compilation (which happens at the first call of every new input
signature) raises, warns once and runs ``fn`` eagerly from then on.

Graph breaks (``graph_breaks`` measures them with ``torch._dynamo.explain``; asserted in
``tests/runtime/pt/test_compile.py``): **none**, for one layer (``Dynamics.apply_layer``), for the
whole proposal (``Dynamics.propose``) and for the train step's forward (proposal + loss,
``Trainer._loss_and_proposal``), U1 and SU(N), merged and random directions, with and without a
conv stack. What keeps them away:

* no random numbers inside: momenta, directions and the MH uniforms are drawn before the call;
* the force is part A's analytic ``action_and_force`` (sines, products), not ``autograd.grad`` of
  the action (which breaks the graph unless ``torch.func.grad`` or
  ``torch._dynamo.config.trace_autograd_ops`` is used), and training differentiates it once;
* ``β`` and the step sizes are 0-d tensors (a Python float is specialised: every new β of a
  schedule would recompile); layers are Python loops over ``nn.ModuleList`` entries;
* ``loss.backward()``, gradient clipping and the optimizer step stay outside (AOTAutograd
  compiles the backward of every compiled forward graph).

What is compiled (``Dynamics.compile_layers``, used by ``Trainer`` when ``train.compile``): one
leapfrog *layer*, with its networks and mask passed as arguments, so all layers share one graph
(dynamo lifts module parameters to graph inputs). Compiling the whole trajectory as one graph
also works, without breaks, but its compile time grows with the number of layers: 442 s for the
U(1) 16×16, 8-layer seed network (forward only, shared 2-core machine under load) against ~30 s
for the two layer graphs, for the same run time. Graphs per run: forward and inverse layer without
gradients (evaluation); in training, a third one, because the first layer's inputs (force,
log-det, links) do not require gradients and dynamo guards on ``requires_grad``.

Speed (``bench/bench_l2hmc_pt.py``, median CPU seconds per step, one thread, a shared 2-core
machine at load 3–8; compiled / eager):

* U(1) 16×16, seed network (conv stack + 7200×512 dense, 60 M parameters): fp32 trajectory
  0.71 / 0.92 s (1.29×), train step 3.03 / 2.44 s (0.80×: the compiled backward of the
  channels-last conv stack is slower than eager's oneDNN kernels); fp64 trajectory 2.67 / 4.97 s
  (1.86×: aten has no fast fp64 convolution), train 9.6 / 10.8 s (1.12×). The work is ~1.8
  GFLOP of convolution and matmul per x-network call, which compilation cannot shrink.
* U(1) 16×16, 4 layers, dense 64×64 network, 64 chains: trajectory and train step 1.39× and
  1.36× (elementwise work dominates, and inductor fuses it).
* SU(3) 4⁴: 0.8–1.2× (complex arithmetic is not fused; the 70 M-parameter networks at 8 chains
  are memory bound); whole generated jobs measured 0.2–0.7× in training (docs/requests-4.md).
  Hence ``Dynamics.compile_layers`` keeps SU(N) layers eager, with a warning, unless
  ``complex_links=True``; compiling them for real needs the planar (re, im) formulation of
  ``su_pairs.py`` in the layer, which would gain little while the networks dominate.

Compile time of the first call: 6–25 s with a warm inductor cache, 1–9 minutes cold.
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
