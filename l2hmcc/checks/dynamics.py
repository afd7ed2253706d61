"""Checks that the sampler's pieces fit the gauge group."""

from __future__ import annotations

import math

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import Spec
from l2hmcc.spanmap import SpanMap


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


def affine_u1(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W004: the affine U(1) update is exact for real coordinates, not for angles (not said
    with `network local`, whose x updates are the drift x + εv, exact either way: W387)."""
    if spec.lattice.group != "U1" or spec.dynamics.x_update != "affine":
        return []
    if spec.network is not None and spec.network.kind == "local":
        return []
    return [
        error(
            "W004",
            "`x_update = affine` (x e^{εs}) is a bijection of the real line, not of the circle:"
            " the chain is exact only as a chain of real coordinates",
            spans.value("dynamics.x_update"),
            "not a map of U(1)",
            help="use `x_update = compact` (2 atan(e^{εs} tan(x/2)), exact on the circle;"
            " the default)",
        )
    ]


def nothing_to_train(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E213: `network none` with fixed step sizes leaves no parameter to train."""
    if spec.network is not None or spec.dynamics.learnable_step_size:
        return []
    return [
        error(
            "E213",
            "nothing to train: `network none` and `learnable_step_size = false`",
            spans.key("network"),
            "no networks",
            secondary=[Label(spans.value("dynamics.learnable_step_size"), "fixed step sizes")],
            help="set `dynamics.learnable_step_size = true` (learned step sizes only), or give"
            " the sampler networks; for a plain HMC baseline use the `hmc` block",
        )
    ]


def embedding_group(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E205: raw angles are a U(1) embedding."""
    if spec.network is None or spec.network.embedding != "raw" or spec.lattice.group == "U1":
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


def fourier(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E370, E372: `dynamics.fourier` and `hmc.fourier` are finite masses² ≥ 0, for U1 on a
    2D or 3D lattice."""
    out = []
    for path, m2 in (
        ("dynamics.fourier", spec.dynamics.fourier),
        ("hmc.fourier", spec.hmc.fourier),
    ):
        if m2 != 0:
            out += _fourier(spec, spans, path, m2)
    return out


def _fourier(spec: Spec, spans: SpanMap, path: str, m2: float) -> list[Diagnostic]:
    what = "the filter's initial mass²" if path.startswith("dynamics") else "the filter's mass²"
    if not (math.isfinite(m2) and m2 > 0):
        return [
            error(
                "E370",
                f"`{path}` must be a number >= 0 ({what}), got {m2}",
                spans.value(path),
                "out of range",
                help="write a small positive mass² (e.g. 0.5: long wavelengths move √17 ≈ 4×"
                " faster in 2D), or 0 for the plain leapfrog",
            )
        ]
    group, dims = spec.lattice.group, len(spec.lattice.shape)
    if group == "U1" and dims in (2, 3):
        return []
    what = f"{dims}D" if group == "U1" else group
    return [
        error(
            "E372",
            f"`{path}` needs U1 on a 2D or 3D lattice, got {group} {dims}D",
            spans.value(path),
            f"no {what} filter",
            secondary=[
                Label(
                    spans.value("lattice.shape" if group == "U1" else "lattice.group"),
                    f"{dims}D lattice" if group == "U1" else group,
                )
            ],
            help="remove `fourier`: Fourier acceleration is implemented for U1 on 2D and 3D"
            " lattices",
        )
    ]
