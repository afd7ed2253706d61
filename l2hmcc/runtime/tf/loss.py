"""The L2HMC training loss in TensorFlow (mirror of ``pt/loss.py``): expected squared jump
distance in physical distances.

Per chain ``ℓ_i = A_i δ(ξ_i, ξ'_i)`` with ``A`` the differentiable acceptance and ``δ`` one of
``plaquette`` (``Σ_P 2(1 − Re tr(U'_P U_P†)/N)``; U1 ``Σ_P 2(1 − cos(θ'_P − θ_P))``), ``charge``
(U1 ``(Q'_sin − Q_sin)²``; SU(N) 4D ``(Q' − Q)²`` clover) or ``rmse`` (mean over links of
``|U' − U|²_F``).  Each term ``w · L`` uses the ``mixed`` form ``mean(λ²/ℓ − ℓ/λ²)`` (``ℓ``
clamped below at ``1e-10``) or ``plain`` ``−mean ℓ``; the aux term (the same loss on a proposal
from fresh samples) enters with weight exactly ``aux_weight``.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from ..common.config import LOSS_TERMS, LossConfig
from .groups import dagger
from .lattice import planes, plaquette_field, sin_charge, topological_charge

__all__ = [
    "LossConfig",
    "charge_distance",
    "l2hmc_loss",
    "plaquette_distance",
    "rmse_distance",
]

#: Lower bound of ℓ in the mixed form (keeps λ²/ℓ finite for chains with A δ = 0).
MIN_JUMP = 1e-10

TERMS = LOSS_TERMS


def _retr_prod(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``Re tr(A B)`` over the last two axes without forming the product."""
    return tf.reduce_sum(tf.math.real(a * tf.linalg.matrix_transpose(b)), axis=[-2, -1])


def _flat(x: tf.Tensor) -> tf.Tensor:
    return tf.reshape(x, [tf.shape(x)[0], -1])


def plaquette_distance(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """``Σ_P 2(1 − Re tr(U'_P U_P†)/N)`` per chain ``[B]`` (U1: ``Σ_P 2(1 − cos(θ'_P − θ_P))``)."""
    total = None
    for mu, nu in planes(int(x.shape[1])):
        px, py = plaquette_field(x, mu, nu), plaquette_field(y, mu, nu)
        if x.dtype.is_complex:
            n = int(x.shape[-1])
            d = 2.0 * (1.0 - _retr_prod(py, dagger(px)) / n)
        else:
            d = 2.0 * (1.0 - tf.cos(py - px))
        d = tf.reduce_sum(_flat(d), axis=1)
        total = d if total is None else total + d
    assert total is not None
    return total


def charge_distance(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """``(Q'_sin − Q_sin)²`` (U1) or ``(Q' − Q)²`` with the clover charge (SU(N), 4D), ``[B]``."""
    if x.dtype.is_complex:
        return tf.square(topological_charge(y) - topological_charge(x))
    return tf.square(sin_charge(y) - sin_charge(x))


def rmse_distance(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Mean over links of ``|U' − U|²_F`` per chain ``[B]`` (U1: ``2(1 − cos(x' − x))``)."""
    if x.dtype.is_complex:
        n = int(x.shape[-1])
        d = 2.0 * (n - _retr_prod(y, dagger(x)))
    else:
        d = 2.0 * (1.0 - tf.cos(y - x))
    return tf.reduce_mean(_flat(d), axis=1)


DISTANCES: dict[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = {
    "plaquette": plaquette_distance,
    "charge": charge_distance,
    "rmse": rmse_distance,
}


def _term(config: LossConfig, jump: tf.Tensor) -> tf.Tensor:
    if config.form == "plain":
        return -tf.reduce_mean(jump)
    lam2 = config.scale**2
    jump = tf.maximum(jump, MIN_JUMP)
    return tf.reduce_mean(lam2 / jump - jump / lam2)


def _loss_one(
    config: LossConfig, x_init: tf.Tensor, x_prop: tf.Tensor, acceptance: tf.Tensor, prefix: str
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    total = tf.zeros((), dtype=acceptance.dtype)
    parts: dict[str, tf.Tensor] = {}
    for name in TERMS:
        weight = getattr(config, name)
        if weight == 0:
            continue
        jump = acceptance * DISTANCES[name](x_init, x_prop)
        term = _term(config, jump)
        total = total + weight * term
        parts[f"{prefix}loss_{name}"] = tf.stop_gradient(term)
        parts[f"{prefix}esjd_{name}"] = tf.stop_gradient(tf.reduce_mean(jump))
    return total, parts


def l2hmc_loss(
    config: LossConfig,
    x_init: tf.Tensor,
    x_prop: tf.Tensor,
    acceptance: tf.Tensor,
    aux: tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """``(loss, parts)``: ``Σ_terms w · L(A δ)``, plus ``aux_weight ·`` the same on ``aux``
    (``(x_init, x_prop, acceptance)`` of a proposal from fresh samples; required when
    ``aux_weight > 0``).  ``parts`` holds ``loss_<term>``, ``esjd_<term>``, ``aux_…`` and
    ``loss``, all without gradients."""
    loss, parts = _loss_one(config, x_init, x_prop, acceptance, "")
    if config.aux_weight > 0:
        if aux is None:
            raise ValueError(
                "loss.aux_weight > 0 needs the aux proposal (x_init, x_prop, acceptance)"
            )
        aux_loss, aux_parts = _loss_one(config, *aux, "aux_")
        loss = loss + config.aux_weight * aux_loss
        parts.update(aux_parts)
    parts["loss"] = tf.stop_gradient(loss)
    return loss, parts
