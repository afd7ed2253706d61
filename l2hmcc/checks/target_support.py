"""What the targets' runtimes can run: limits of a backend found by running it (issue 4).

DeepSpeed 0.19.8 (measured on CPU with gloo, 1 and 2 ranks, fp32 and fp64):

* ZeRO stages 1 and 2 train fp64 parameters (SU(N) in fp64) correctly: identical parameters on
  every rank, equal between the two stages;
* stage 0 cannot: its gradient allreduce (``engine.split_half_float_double_sparse``) accepts the
  accelerator's ``supported_dtypes()`` (fp32, fp16, bf16) and asserts on fp64 gradients (E350);
* stage 3 partitions parameters and gathers them only inside submodule forwards, while the
  L2HMC dynamics read its step sizes directly and checkpoints need whole state dicts; the
  client optimizer's ``state_dict`` fails under it (E351). The networks are small: stage 3 would
  save nothing.

The TensorFlow runtime (issue 6) computes the networks in ``train.precision``: it has no
half-precision (bf16/fp16) networks, so a spec asking for them gets the warning W350 and runs
in full precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import DeepSpeed, Spec
from l2hmcc.spanmap import SpanMap

if TYPE_CHECKING:
    from l2hmcc.checks import TargetFacts


def deepspeed_support(spec: Spec, spans: SpanMap, target: TargetFacts) -> list[Diagnostic]:
    """E350: ZeRO stage 0 with fp64 parameters; E351: ZeRO stage 3."""
    d = spec.distributed
    if target.backend != "deepspeed" or not isinstance(d, DeepSpeed):
        return []
    where = spans.value("distributed.zero_stage")
    if d.zero_stage == 3:
        return [
            error(
                "E351",
                "DeepSpeed ZeRO stage 3 is not supported by the L2HMC runtime",
                where,
                "stage 3",
                help="use `zero_stage = 1` or `2`: the networks are small, stage 3 saves nothing",
            )
        ]
    if d.zero_stage == 0 and spec.train.precision == "fp64":
        if spans.written("train.precision"):
            why = Label(spans.value("train.precision"), "fp64 parameters")
        else:
            why = Label(spans.value("lattice.group"), "fp64 parameters by default for SU(N)")
        return [
            error(
                "E350",
                "DeepSpeed ZeRO stage 0 cannot all-reduce fp64 gradients",
                where,
                "stage 0",
                secondary=[why],
                help="use `zero_stage = 1` or `2` (they reduce fp64 gradients),"
                " or `precision = fp32`",
            )
        ]
    return []


def tensorflow_support(spec: Spec, spans: SpanMap, target: TargetFacts) -> list[Diagnostic]:
    """W350: half-precision networks with a TensorFlow target."""
    p = spec.train.network_precision
    if target.framework != "tensorflow" or p not in ("bf16", "fp16"):
        return []
    return [
        error(
            "W350",
            f"`network_precision = {p}` is not implemented by the TensorFlow runtime;"
            f" its networks run in {spec.train.precision}",
            spans.value("train.network_precision"),
            f"{p} networks",
            help=f"drop `network_precision` (or set it to {spec.train.precision}), or use"
            " `--target pytorch`, which runs them under autocast on CUDA",
        )
    ]
