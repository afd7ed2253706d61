"""Checks on the loss and the training loop."""

from __future__ import annotations

from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import Spec
from l2hmcc.spanmap import SpanMap


def loss_weights(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """E211: at least one loss term needs a positive weight."""
    loss = spec.loss
    if loss.plaquette > 0 or loss.charge > 0 or loss.rmse > 0:
        return []
    return [
        error(
            "E211",
            "all loss weights are zero (`plaquette`, `charge`, `rmse`): nothing to train",
            spans.key("loss"),
            "every weight is 0",
            help="give a term a positive weight, e.g. `plaquette = 0.1`" + _u1_note(spec, spans),
        )
    ]


def _u1_note(spec: Spec, spans: SpanMap) -> str:
    """What the 2D U(1) loss defaults did to the weights the spec does not write."""
    if spec.lattice.group != "U1" or len(spec.lattice.shape) != 2:
        return ""
    unwritten = [
        f"`{k}` defaults to {getattr(spec.loss, k):g}"
        for k in ("charge", "plaquette")
        if not spans.written(f"loss.{k}")
    ]
    return f" (for U1 on a 2D lattice {' and '.join(unwritten)})" if unwritten else ""


def intervals(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W003: logging or checkpoint intervals longer than training."""
    steps = spec.train.steps
    out = []
    for key in ("log_every", "checkpoint_every"):
        every = getattr(spec.train, key)
        if every > steps and spans.written(f"train.{key}"):
            out.append(
                error(
                    "W003",
                    f"`train.{key}` = {every} is longer than training ({steps} steps)",
                    spans.value(f"train.{key}"),
                    "never reached",
                    help=f"use at most {steps}",
                )
            )
    return out


def step_size_lr_fixed(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W011: a learning rate for step sizes that do not learn."""
    factor = spec.train.step_size_lr_factor
    if factor == 1.0 or spec.dynamics.learnable_step_size:
        return []
    return [
        error(
            "W011",
            f"`train.step_size_lr_factor` = {factor:g} has no effect: the step sizes are fixed",
            spans.value("train.step_size_lr_factor"),
            "unused",
            secondary=[Label(spans.value("dynamics.learnable_step_size"), "fixed step sizes")],
            help="drop `step_size_lr_factor`, or set `dynamics.learnable_step_size = true`",
        )
    ]


def ablation_without_networks(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """W012: an ablation of a sampler that has no networks to remove."""
    if not spec.evaluate.ablation or spec.network is not None:
        return []
    return [
        error(
            "W012",
            "`evaluate.ablation` trains the sampler again without networks, but it has none",
            spans.value("evaluate.ablation"),
            "would train the same sampler twice",
            secondary=[Label(spans.key("network"), "no networks")],
            help="drop `ablation = true`, or give the sampler networks",
        )
    ]
