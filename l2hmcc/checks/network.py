"""Checks on the network architecture against the lattice and the batch."""

from __future__ import annotations

import math

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import Spec
from l2hmcc.lower import SpanMap


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def conv_lengths(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E208: filters, kernel and pool describe the same layers."""
    conv = spec.network.conv
    if conv is None:
        return []
    n = len(conv.filters)
    return [
        error(
            "E208",
            f"`network.conv.{name}` has {_entries(len(values))} but `filters` has {n}",
            spans.value(f"network.conv.{name}"),
            _entries(len(values)),
            secondary=[Label(spans.value("network.conv.filters"), f"{n} layer{'s' * (n != 1)}")],
            help=f"give one `{name}` per conv layer",
        )
        for name, values in (("kernel", conv.kernel), ("pool", conv.pool))
        if len(values) != n
    ]


def conv_dimensions(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E209: conv stacks exist for 2D and 3D lattices only."""
    dims = len(spec.lattice.shape)
    if spec.network.conv is None or dims in (2, 3):
        return []
    return [
        error(
            "E209",
            f"a conv stack needs a 2D or 3D lattice, got {dims}D",
            spans.key("network.conv"),
            f"no {dims}D convolutions",
            secondary=[Label(spans.value("lattice.shape"), f"{dims}D lattice")],
            help="remove the `conv` block; the dense layers see the whole lattice",
        )
    ]


def conv_pooling(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E210: the pooling factors must divide every extent."""
    conv = spec.network.conv
    if conv is None:
        return []
    factor = math.prod(conv.pool)
    bad = [L for L in spec.lattice.shape if L % factor]
    if not bad:
        return []
    return [
        error(
            "E210",
            f"pooling shrinks the lattice by {factor}, which does not divide extent {bad[0]}",
            spans.value("network.conv.pool"),
            f"total factor {factor}",
            secondary=[Label(spans.value("lattice.shape"), "lattice extents")],
            help="use pool factors whose product divides every extent",
        )
    ]


def batch_norm_chains(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E207: batch norm needs two chains or more per rank."""
    if not spec.network.batch_norm or spec.train.chains >= 2:
        return []
    return [
        error(
            "E207",
            "`network.batch_norm` needs at least 2 chains per rank, got 1",
            spans.value("network.batch_norm"),
            "batch norm",
            secondary=[Label(spans.value("train.chains"), "one chain")],
            help="raise `train.chains` or set `batch_norm = false`",
        )
    ]
