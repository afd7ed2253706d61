"""Checks on the lattice: dimensions the observables need, extents the masks need."""

from __future__ import annotations

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import Spec
from l2hmcc.spanmap import SpanMap


def charge_dimension(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E201: the charge loss needs D = 2 for U(1) and D = 4 for SU(N) (clover charge)."""
    if spec.loss.charge <= 0:
        return []
    dims = len(spec.lattice.shape)
    need = 2 if spec.lattice.group == "U1" else 4
    if dims == need:
        return []
    what = "U(1) charge is defined on 2D lattices" if need == 2 else "the clover charge needs 4D"
    return [
        error(
            "E201",
            f"`loss.charge` > 0 needs a {need}D lattice for {spec.lattice.group}, got {dims}D:"
            f" {what}",
            spans.value("loss.charge"),
            "charge loss requested here",
            secondary=[Label(spans.value("lattice.shape"), f"{dims}D lattice")],
            help=f"use a {need}D `lattice.shape`, or set `loss.charge = 0`",
        )
    ]


def checkerboard_extents(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E202: a checkerboard mask needs every extent even (a proper two-colouring). Not with
    `network local`, which has no x-networks to mask (W386)."""
    if spec.dynamics.mask != "checkerboard":
        return []
    if spec.network is not None and spec.network.kind == "local":
        return []
    secondary = []
    if spans.written("dynamics.mask"):
        secondary.append(Label(spans.value("dynamics.mask"), "checkerboard mask"))
    return [
        error(
            "E202",
            f"lattice extent {extent} (dimension {mu}) is odd; a checkerboard mask needs even"
            " extents",
            spans.value(f"lattice.shape.{mu}"),
            "odd extent",
            secondary=secondary,
            help=f"use {extent + 1} or {extent - 1}, or `dynamics.mask = random`",
        )
        for mu, extent in enumerate(spec.lattice.shape)
        if extent % 2
    ]
