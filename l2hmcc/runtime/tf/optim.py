"""Optimizers with PyTorch's update rules (Adam, AdamW, SGD with momentum 0.9) and PyTorch's
global-norm gradient clipping, written on ``tf.Variable``s.

Why not Keras optimizers: the PyTorch runtime uses ``torch.optim`` (Adam's ``weight_decay`` is
an L2 term added to the gradient; AdamW's is decoupled; SGD's momentum buffer starts at the
first gradient), Keras 3's differ in these details and in their epsilon placement, and Keras 3
with Horovod's ``DistributedOptimizer`` is broken.  These
few lines give the same trajectories in both frameworks, run inside an XLA-compiled function,
and keep their slots as plain variables for checkpoints.  (This module has no ``pt/``
counterpart: ``torch.optim`` is the counterpart.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import tensorflow as tf

__all__ = ["Optimizer", "clip_by_global_norm"]


def clip_by_global_norm(
    grads: Sequence[tf.Tensor], max_norm: float
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """``torch.nn.utils.clip_grad_norm_``: scale all gradients by
    ``min(1, max_norm / (‖g‖₂ + 1e-6))``; returns the clipped gradients and the pre-clip norm."""
    total = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))
    coef = tf.minimum(max_norm / (total + 1e-6), 1.0)
    return [g * tf.cast(coef, g.dtype) for g in grads], total


class Optimizer(tf.Module):  # type: ignore[misc]  # tensorflow ships no type information
    """Adam / AdamW / SGD(momentum 0.9) over named variables, PyTorch semantics.

    ``apply(grads, lr)`` takes the gradients in the order of ``variables`` and a learning-rate
    tensor (so a schedule does not retrace a compiled step); ``lr_scales`` (by variable name,
    default 1) multiply it per variable, as ``torch.optim`` parameter groups do.
    """

    def __init__(
        self,
        kind: Literal["adam", "adamw", "sgd"],
        variables: Sequence[tuple[str, tf.Variable]],
        *,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum: float = 0.9,
        lr_scales: dict[str, float] | None = None,
    ) -> None:
        super().__init__(name=f"optimizer_{kind}")
        if kind not in ("adam", "adamw", "sgd"):
            raise ValueError(f"train.optimizer: expected adam, adamw or sgd, got {kind!r}")
        self.kind = kind
        self.names = [n for n, _ in variables]
        self.variables_ = [v for _, v in variables]
        self.lr_scales = [float((lr_scales or {}).get(n, 1.0)) for n in self.names]
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self.momentum = momentum
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        slot_names = ("exp_avg", "exp_avg_sq") if kind != "sgd" else ("momentum_buffer",)
        self.slots = {
            slot: [
                tf.Variable(tf.zeros_like(v), trainable=False, name=f"{slot}_{i}")
                for i, v in enumerate(self.variables_)
            ]
            for slot in slot_names
        }

    def apply(self, grads: Sequence[tf.Tensor], lr: tf.Tensor) -> None:
        self.step.assign_add(1)
        wd = self.weight_decay
        if self.kind == "sgd":
            for p, g, buf, scale in zip(
                self.variables_, grads, self.slots["momentum_buffer"], self.lr_scales, strict=True
            ):
                if wd:
                    g = g + wd * p
                buf.assign(self.momentum * buf + g)
                p.assign_sub(tf.cast(lr, p.dtype) * scale * buf)
            return
        b1, b2 = self.betas
        for p, g, m, s, scale in zip(
            self.variables_,
            grads,
            self.slots["exp_avg"],
            self.slots["exp_avg_sq"],
            self.lr_scales,
            strict=True,
        ):
            dt = p.dtype
            lr_p = tf.cast(lr, dt) * scale
            t = tf.cast(self.step, dt)
            if self.kind == "adamw":
                if wd:
                    p.assign(p * (1.0 - lr_p * wd))
            elif wd:
                g = g + wd * p
            m.assign(m + (g - m) * (1.0 - b1))
            s.assign(s * b2 + (1.0 - b2) * g * g)
            bias1 = 1.0 - tf.pow(tf.constant(b1, dt), t)
            bias2 = 1.0 - tf.pow(tf.constant(b2, dt), t)
            denom = tf.sqrt(s) / tf.sqrt(bias2) + self.eps
            p.assign_sub((lr_p / bias1) * m / denom)

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step.numpy()}
        for slot, values in self.slots.items():
            out[slot] = {n: v.numpy() for n, v in zip(self.names, values, strict=True)}
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step.assign(int(np.asarray(state["step"])))
        for slot, values in self.slots.items():
            for n, v in zip(self.names, values, strict=True):
                v.assign(np.asarray(state[slot][n]))
