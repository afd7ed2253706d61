"""Checks on ranks, backends and targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import Horovod, Spec
from l2hmcc.spanmap import SpanMap

if TYPE_CHECKING:
    from l2hmcc.checks import TargetFacts


def _ranks(spec: Spec) -> int:
    """A lower bound of the job's ranks (one per node when ranks_per_node is left open)."""
    return spec.job.nodes * (spec.job.ranks_per_node or 1)


def ranks_need_backend(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E206: several ranks need a distributed backend."""
    if spec.distributed.backend != "none" or _ranks(spec) <= 1:
        return []
    where = "job.nodes" if spec.job.nodes > 1 else "job.ranks_per_node"
    return [
        error(
            "E206",
            f"the job runs {_ranks(spec)}+ ranks but the spec has no distributed backend",
            spans.value(where),
            "several ranks",
            help="add `distributed ddp {}` (or horovod, deepspeed), or run a single rank",
        )
    ]


def single_rank_backend(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W002: a backend for one rank."""
    if spec.distributed.backend == "none" or spec.job.nodes != 1:
        return []
    if spec.job.ranks_per_node != 1:
        return []
    return [
        error(
            "W002",
            f"`distributed {spec.distributed.backend}` with a single rank",
            spans.key("distributed"),
            "backend for one rank",
            secondary=[Label(spans.value("job.ranks_per_node"), "one rank per node")],
            help="drop the `distributed` block, or run more ranks",
        )
    ]


def fp16_allreduce_loss(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W005: fp16 gradient compression with the mixed loss, whose gradients overflow fp16.

    The mixed form λ²/ℓ − ℓ/λ² has ∂/∂ℓ = −λ²/ℓ² − 1/λ²: when a batch's proposals are mostly
    rejected ℓ → 0 and the gradients explode (measured on U(1) 16×16, 16 chains, 4 layers,
    hidden [16, 16], fp32: max |∂L/∂θ| reached 1.07e4 within 20 steps, against ≤ 9 for the
    plain form). fp16 holds at most 65504 and Horovod's compression has no loss scaling, so a
    larger gradient arrives as inf and clipping turns every parameter into NaN.
    """
    d = spec.distributed
    if not isinstance(d, Horovod) or not d.fp16_allreduce or spec.loss.form != "mixed":
        return []
    written = spans.written("loss.form")
    why = [Label(spans.value("loss.form"), "gradients ∝ 1/ℓ²")] if written else []
    form = "the mixed loss" if written else "the mixed loss (the default form)"
    return [
        error(
            "W005",
            f"`fp16_allreduce` with {form}: its gradients can exceed fp16's 65504",
            spans.value("distributed.fp16_allreduce"),
            "gradients compressed to fp16",
            secondary=why,
            help="drop `fp16_allreduce` (the networks are small: compression saves little),"
            " or use `form = plain` in the loss block",
        )
    ]


_PYTORCH_ONLY = ("ddp", "deepspeed")


def backend_framework(spec: Spec, spans: SpanMap, target: TargetFacts) -> list[Diagnostic]:
    """E301: DDP and DeepSpeed are PyTorch backends."""
    backend = spec.distributed.backend
    if target.framework != "tensorflow" or backend not in _PYTORCH_ONLY:
        return []
    return [
        error(
            "E301",
            f"`{backend}` is a PyTorch backend; target `{target.name}` is TensorFlow",
            spans.key("distributed"),
            "needs PyTorch",
            help=f"use `--target pytorch-{backend}`, or `distributed horovod` with"
            " `--target tensorflow-horovod`",
        )
    ]


def backend_target(spec: Spec, spans: SpanMap, target: TargetFacts) -> list[Diagnostic]:
    """E302: the spec's backend and the target's backend agree."""
    backend = spec.distributed.backend
    if backend == target.backend:
        return []
    if target.framework == "tensorflow" and backend in _PYTORCH_ONLY:
        return []  # E301 says it better
    suffix = "" if backend == "none" else f"-{backend}"
    return [
        error(
            "E302",
            f"the spec asks for backend `{backend}`, target `{target.name}` uses"
            f" `{target.backend}`",
            spans.key("distributed"),
            f"backend `{backend}`",
            help=f"use `--target {target.framework}{suffix}`, or change the `distributed` block",
        )
    ]
