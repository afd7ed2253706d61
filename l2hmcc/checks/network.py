"""Checks on the network architecture against the lattice and the batch."""

from __future__ import annotations

import math

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import Conv, Spec
from l2hmcc.spanmap import SpanMap


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def _conv(spec: Spec) -> Conv | None:
    return None if spec.network is None else spec.network.conv


def conv_lengths(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E208: filters, kernel and pool describe the same layers."""
    conv = _conv(spec)
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
    if _conv(spec) is None or dims in (2, 3):
        return []
    return [
        error(
            "E209",
            f"a conv stack needs a 2D or 3D lattice, got {dims}D",
            spans.key("network.conv"),
            f"no {dims}D convolutions",
            secondary=[Label(spans.value("lattice.shape"), f"{dims}D lattice")],
            help="remove the `conv` block; the dense layers read the plaquettes around each link"
            if _local(spec)
            else "remove the `conv` block; the dense layers see the whole lattice",
        )
    ]


def conv_pooling(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E210: with `same` padding the pooling factors must divide every extent. `full` padding
    (the seed's) grows each extent by k−1 per layer and pools in floor mode, so there only an
    extent pooled to nothing is an error."""
    conv = _conv(spec)
    if conv is None:
        return []
    if conv.padding == "full":
        return _full_padding_pooling(spec, conv, spans)
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


def _full_padding_pooling(spec: Spec, conv: Conv, spans: SpanMap) -> list[Diagnostic]:
    if not len(conv.filters) == len(conv.kernel) == len(conv.pool):
        return []  # E208
    for extent in spec.lattice.shape:
        n = extent
        for k, pool in zip(conv.kernel, conv.pool, strict=True):
            grown = n + k - 1
            n = grown // pool
            if n < 1:
                return [
                    error(
                        "E210",
                        f"pooling by {pool} leaves nothing of extent {grown} (lattice extent"
                        f" {extent} after `full` padding)",
                        spans.value("network.conv.pool"),
                        f"pool {pool} > {grown}",
                        secondary=[Label(spans.value("lattice.shape"), "lattice extents")],
                        help="use smaller pool factors",
                    )
                ]
    return []


def batch_norm_chains(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E207: batch norm needs two chains or more per rank."""
    if spec.network is None or not spec.network.batch_norm or spec.train.chains >= 2:
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


def _local(spec: Spec) -> bool:
    return spec.network is not None and spec.network.kind == "local"


def local_kernel_extent(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E389: the local network's periodic `same` padding (⌈(k−1)/2⌉ sites after each axis)
    must fit in the lattice: a wider kernel would wrap around more than once."""
    if not _local(spec):
        return []
    conv = _conv(spec)
    if conv is None:
        return []
    extent = min(spec.lattice.shape)
    for k in conv.kernel:
        pad = k - 1 - (k - 1) // 2
        if pad > extent:
            return [
                error(
                    "E389",
                    f"`network local`: kernel {k} pads {pad} sites periodically, more than the"
                    f" lattice extent {extent}",
                    spans.value("network.conv.kernel"),
                    f"kernel {k}",
                    secondary=[Label(spans.value("lattice.shape"), "lattice extents")],
                    help=f"use kernels of at most {2 * extent + 1} sites (a kernel no wider"
                    " than the lattice sees every site once)",
                )
            ]
    return []


#: Dynamics keys that only matter to x-networks, which `network local` does not have: every
#: link drifts by ε v, so the masks, split x-networks and the x update's form do nothing.
_X_NETWORK_KEYS = (
    ("split_x", "W385", "there are no x-networks to split"),
    ("mask", "W386", "no x-network masks the links: every link drifts by ε v"),
    ("mask_seed", "W386", "no x-network masks the links: every link drifts by ε v"),
    ("x_update", "W387", "the x updates are the drift x + ε v (no s head scales x)"),
)


def local_x_network_keys(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W385–W387: `dynamics` keys written for x-networks that `network local` does not have."""
    if not _local(spec):
        return []
    out = []
    for key, code, why in _X_NETWORK_KEYS:
        path = f"dynamics.{key}"
        if not spans.written(path):
            continue
        out.append(
            error(
                code,
                f"`{path}` has no effect with `network local`: {why}",
                spans.value(path),
                "no effect",
                secondary=[Label(spans.value("network.kind"), "v-networks only")],
                help=f"remove `{key}`, or use `network l2hmc` for x-networks",
            )
        )
    return out
