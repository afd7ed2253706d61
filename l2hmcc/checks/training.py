"""Checks on the loss and the training loop."""

from __future__ import annotations

from l2hmcc.diagnostics import Diagnostic, error
from l2hmcc.ir import Spec
from l2hmcc.lower import SpanMap


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
            help="give a term a positive weight, e.g. `plaquette = 0.1`",
        )
    ]


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
