"""Checks on numerical precision.

The rule: links, actions and the Metropolis test run in `train.precision`, fp32 or fp64.
U(1) defaults to fp32 (float32 angles); SU(N) defaults to fp64 (complex128 links), and fp32
(complex64) is honoured when asked for, with a warning. fp16/bf16 are for networks only
(`train.network_precision`, autocast on a GPU).
"""

from __future__ import annotations

from l2hmcc.diagnostics import Diagnostic, error
from l2hmcc.ir import Spec
from l2hmcc.spanmap import SpanMap


def lattice_precision(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E203: half precision is not allowed for links."""
    p = spec.train.precision
    if p not in ("fp16", "bf16"):
        return []
    return [
        error(
            "E203",
            f"`train.precision = {p}`: links and the accept/reject test need fp32 or fp64",
            spans.value("train.precision"),
            "half precision for links",
            help=f"set `precision = fp32` (or fp64) and `network_precision = {p}`",
        )
    ]


def sun_single_precision(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W001: SU(N) links in fp32 (complex64) drift off the group."""
    if spec.lattice.group == "U1" or spec.train.precision != "fp32":
        return []
    return [
        error(
            "W001",
            f"{spec.lattice.group} links in fp32 (complex64); fp64 (complex128) is the default",
            spans.value("train.precision"),
            "single-precision links",
            help="keep it if you mean it; `precision = fp64` is safer for long trajectories",
        )
    ]
