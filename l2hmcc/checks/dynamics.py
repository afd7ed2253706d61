"""Checks that the sampler's pieces fit the gauge group."""

from __future__ import annotations

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import Spec
from l2hmcc.lower import SpanMap


def x_update_group(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E204: compact/affine updates act on U(1) angles; SU(N) uses the group update."""
    group, kind = spec.lattice.group, spec.dynamics.x_update
    if (group == "U1") == (kind in ("compact", "affine")):
        return []
    if group == "U1":
        message = "`x_update = group` is the SU(N) update; U1 angles use `compact` or `affine`"
        help = "use `x_update = compact` (the default for U1)"
    else:
        message = f"`x_update = {kind}` acts on U(1) angles; {group} links use `group`"
        help = "use `x_update = group`, or leave it out (the default for SU(N))"
    return [
        error(
            "E204",
            message,
            spans.value("dynamics.x_update"),
            f"not for {group}",
            secondary=[Label(spans.value("lattice.group"), f"group is {group}")],
            help=help,
        )
    ]


def embedding_group(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E205: raw angles are a U(1) embedding."""
    if spec.network.embedding != "raw" or spec.lattice.group == "U1":
        return []
    return [
        error(
            "E205",
            f"`embedding = raw` feeds angles; {spec.lattice.group} links are matrices",
            spans.value("network.embedding"),
            f"not for {spec.lattice.group}",
            secondary=[Label(spans.value("lattice.group"), f"group is {spec.lattice.group}")],
            help="use `embedding = trig` (real and imaginary parts)",
        )
    ]
