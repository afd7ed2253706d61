"""Cross-field checks: small named passes over the resolved IR.

A pass is a plain function ``(spec, spans) -> list[Diagnostic]`` (or, for the passes that
need to know the target's framework and backend, ``(spec, spans, target)``). Passes never
raise and never stop each other: `check` runs them all and returns every finding sorted and
de-duplicated. To add a check, write a function in the module of its topic (or a new one) and
list it below; give it a code in `l2hmcc.codes.CODES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from l2hmcc.checks import (
    distributed,
    dynamics,
    honour,
    lattice,
    memory,
    network,
    precision,
    system,
    target_support,
    training,
)
from l2hmcc.diagnostics import Diagnostic, finalize
from l2hmcc.ir import Spec
from l2hmcc.spanmap import SpanMap


class TargetFacts(Protocol):
    """What the checks need to know about a target (``l2hmcc.targets.Target`` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def framework(self) -> str: ...

    @property
    def backend(self) -> str: ...


Pass = Callable[[Spec, SpanMap], list[Diagnostic]]
TargetPass = Callable[[Spec, SpanMap, TargetFacts], list[Diagnostic]]

#: Passes that need only the spec, in the order of the spec's blocks.
PASSES: list[Pass] = [
    lattice.charge_dimension,
    lattice.checkerboard_extents,
    precision.lattice_precision,
    precision.sun_single_precision,
    dynamics.x_update_group,
    dynamics.affine_u1,
    dynamics.nothing_to_train,
    dynamics.embedding_group,
    dynamics.fourier,
    network.conv_lengths,
    network.conv_dimensions,
    network.conv_pooling,
    network.batch_norm_chains,
    network.local_kernel_extent,
    network.local_x_network_keys,
    training.loss_weights,
    training.intervals,
    training.step_size_lr_fixed,
    training.ablation_without_networks,
    honour.hmc_step_size,
    distributed.ranks_need_backend,
    distributed.single_rank_backend,
    distributed.fp16_allreduce_loss,
    # --- cluster checks (issue 5, l2hmcc/checks/system.py)
    system.check_system,
    memory.device_memory,
]

#: Passes that also need the target (run by `compile`, and by `check --target`).
TARGET_PASSES: list[TargetPass] = [
    distributed.backend_framework,
    distributed.backend_target,
    target_support.deepspeed_support,
    target_support.tensorflow_support,
    honour.compile_honoured,
    system.check_system_target,
]


def check(spec: Spec, spans: SpanMap, target: TargetFacts | None = None) -> list[Diagnostic]:
    """Run every pass (and the target passes when a target is given)."""
    found: list[Diagnostic] = []
    for p in PASSES:
        found.extend(p(spec, spans))
    if target is not None:
        for tp in TARGET_PASSES:
            found.extend(tp(spec, spans, target))
    return finalize(found)
