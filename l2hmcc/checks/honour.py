"""Choices the generated job would not run as written: the job must do what the spec says, or
the compiler says where it will not.

* W006: a fixed HMC step size that does not divide the trajectory length. The runtime runs
  ``n = ceil(τ / ε)`` leapfrog steps of ``τ / n`` (``hmc_schedule``, the same formula as the
  runtime's ``hmc.steps_for_length``), a smaller ε than written;
* W007: ``train.compile`` (or ``evaluate.compile``) where the target's runtime runs the
  leapfrog layers eagerly. ``compiles_layers`` is the one place that says which
  framework/group pairs compile; the generated ``train.py`` comments read it too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import FixedStepSize, GroupName, Spec
from l2hmcc.spanmap import SpanMap

if TYPE_CHECKING:
    from l2hmcc.checks import TargetFacts


def hmc_schedule(step_size: float, trajectory_length: float) -> tuple[int, float]:
    """``(n, ε')``: the leapfrog steps and step size the runtime runs for ``step_size`` and
    ``trajectory_length``: ``n = ceil(τ/ε)`` (at least 1; ε within 1e-9 of a divisor counts as
    one), ``ε' = τ/n ≤ ε``."""
    n = max(1, math.ceil(trajectory_length / step_size - 1e-9))
    return n, trajectory_length / n


def hmc_step_size(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W006: the HMC baseline (and thermalization) will run a smaller ε than written."""
    h = spec.hmc
    if not isinstance(h.step_size, FixedStepSize):
        return []
    written = h.step_size.value
    n, eps = hmc_schedule(written, h.trajectory_length)
    if math.isclose(eps, written, rel_tol=1e-9):
        return []
    tau = h.trajectory_length
    secondary = []
    if spans.written("hmc.trajectory_length"):
        secondary.append(Label(spans.value("hmc.trajectory_length"), f"τ = {tau:g}"))
    return [
        error(
            "W006",
            f"`hmc.step_size = {written:g}` does not divide `trajectory_length = {tau:g}`: the"
            f" job runs n = ceil(τ/ε) = {n} leapfrog steps of ε = τ/n = {eps:.6g}",
            spans.value("hmc.step_size"),
            f"runs ε = {eps:.6g}",
            secondary=secondary,
            help=f"write `step_size = {eps:.6g}` (or a trajectory length that is a multiple of"
            " ε) so that the spec says what runs",
        )
    ]


#: (framework, gauge group) pairs whose leapfrog layers run eagerly under `train.compile`.
EAGER_LAYERS: frozenset[tuple[str, GroupName]] = frozenset()


def compiles_layers(framework: str, group: GroupName) -> bool:
    """Whether ``framework``'s runtime compiles ``group``'s leapfrog layers when the spec asks
    for it: the one switch behind W007 and the generated comments (``EAGER_LAYERS``)."""
    return (framework, group) not in EAGER_LAYERS


def compile_honoured(spec: Spec, spans: SpanMap, target: TargetFacts) -> list[Diagnostic]:
    """W007: compiled leapfrog layers asked for where the target runs them eagerly."""
    group = spec.lattice.group
    if compiles_layers(target.framework, group):
        return []
    asked = [k for k in ("train", "evaluate") if getattr(spec, k).compile]
    if not asked:
        return []
    path = next((f"{k}.compile" for k in asked if spans.written(f"{k}.compile")), None)
    where = spans.value(path) if path else spans.value("lattice.group")
    label = "asks for compiled layers" if path else f"{group}: `train.compile` defaults to true"
    return [
        error(
            "W007",
            f"the {target.framework} runtime runs {group} leapfrog layers eagerly:"
            f" `{asked[0]}.compile = true` is not honoured (the HMC integrator still compiles)",
            where,
            label,
            secondary=[Label(spans.value("lattice.group"), f"group is {group}")] if path else [],
            help="write `compile = false` to say what runs, or expect eager layers",
        )
    ]
