"""The L2HMC training loss: expected squared jump distance in physical distances.

Per chain ``ℓ_i = A_i δ(ξ_i, ξ'_i)`` with ``A`` the (differentiable) acceptance probability and
one of the distances ``δ`` (each ``[B]``):

* ``plaquette``: ``Σ_P 2(1 − cos(θ'_P − θ_P))`` (U1). SU(N): ``Σ_P 2(1 − Re tr(U'_P U_P†)/N)``,
  the same expression for ``U_P = e^{iθ_P}``, ``N = 1``: the squared Frobenius distance
  ``|U'_P − U_P|²/N`` between the plaquette matrices at the same site and plane, invariant under a
  gauge transformation applied to both configurations;
* ``charge``: ``(Q'_sin − Q_sin)²`` (U1 sine charge); SU(N) ``(Q' − Q)²`` with the clover charge
  (4D only);
* ``rmse``: the mean over links of ``|U' − U|²_F`` (U1 ``2(1 − cos(x' − x))``): a mean squared
  link distance (no square root: the loss wants squared jumps).

Each weighted term ``w · L`` uses Levy et al.'s ``mixed`` form ``L = mean(λ²/ℓ − ℓ/λ²)`` (``ℓ``
clamped below at ``1e-10``, which only matters for a rejected or frozen chain) or the ``plain``
``L = −mean ℓ``. The auxiliary term, the same loss on a proposal that starts from fresh samples,
enters with weight exactly ``aux_weight`` (the seed used ``1 + aux_weight``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..common.config import LOSS_TERMS, LossConfig
from .groups import dagger
from .lattice import _retr_prod, planes, plaquette_field, sin_charge, topological_charge

__all__ = [
    "LossConfig",
    "charge_distance",
    "l2hmc_loss",
    "plaquette_distance",
    "rmse_distance",
]

#: Lower bound of ℓ in the mixed form (keeps λ²/ℓ finite for chains with A δ = 0).
MIN_JUMP = 1e-10


def plaquette_distance(x: Tensor, y: Tensor) -> Tensor:
    """``Σ_P 2(1 − Re tr(U'_P U_P†)/N)`` per chain ``[B]`` (U1: ``Σ_P 2(1 − cos(θ'_P − θ_P))``)."""
    total = None
    for mu, nu in planes(x.shape[1]):
        px, py = plaquette_field(x, mu, nu), plaquette_field(y, mu, nu)
        if x.is_complex():
            n = x.shape[-1]
            d = 2.0 * (1.0 - _retr_prod(py, dagger(px)) / n)
        else:
            d = 2.0 * (1.0 - torch.cos(py - px))
        d = d.flatten(1).sum(1)
        total = d if total is None else total + d
    assert total is not None
    return total


def charge_distance(x: Tensor, y: Tensor) -> Tensor:
    """``(Q'_sin − Q_sin)²`` (U1) or ``(Q' − Q)²`` with the clover charge (SU(N), 4D), ``[B]``."""
    if x.is_complex():
        return (topological_charge(y) - topological_charge(x)).square()
    return (sin_charge(y) - sin_charge(x)).square()


def rmse_distance(x: Tensor, y: Tensor) -> Tensor:
    """Mean over links of ``|U' − U|²_F`` per chain ``[B]`` (U1: ``2(1 − cos(x' − x))``)."""
    if x.is_complex():
        n = x.shape[-1]
        d = 2.0 * (n - _retr_prod(y, dagger(x)))
    else:
        d = 2.0 * (1.0 - torch.cos(y - x))
    return d.flatten(1).mean(1)


DISTANCES = {"plaquette": plaquette_distance, "charge": charge_distance, "rmse": rmse_distance}


def _term(config: LossConfig, jump: Tensor) -> Tensor:
    if config.form == "plain":
        return -jump.mean()
    lam2 = config.scale**2
    jump = torch.clamp(jump, min=MIN_JUMP)
    return (lam2 / jump - jump / lam2).mean()


def _loss_one(
    config: LossConfig, x_init: Tensor, x_prop: Tensor, acceptance: Tensor, prefix: str
) -> tuple[Tensor, dict[str, Tensor]]:
    total = torch.zeros((), dtype=acceptance.dtype, device=acceptance.device)
    parts: dict[str, Tensor] = {}
    for name in LOSS_TERMS:
        weight = getattr(config, name)
        if weight == 0:
            continue
        jump = acceptance * DISTANCES[name](x_init, x_prop)
        term = _term(config, jump)
        total = total + weight * term
        parts[f"{prefix}loss_{name}"] = term.detach()
        parts[f"{prefix}esjd_{name}"] = jump.detach().mean()
    return total, parts


def l2hmc_loss(
    config: LossConfig,
    x_init: Tensor,
    x_prop: Tensor,
    acceptance: Tensor,
    aux: tuple[Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``(loss, parts)``: ``Σ_terms w · L(A δ)``, plus ``aux_weight ·`` the same on ``aux``.

    ``aux`` is ``(x_init, x_prop, acceptance)`` of a proposal from fresh samples; it is required
    when ``aux_weight > 0`` and ignored otherwise. ``parts`` holds every term (``loss_<term>``,
    ``esjd_<term>`` = ``mean ℓ``; ``aux_…`` for the aux proposal) and ``loss``, all detached.
    """
    loss, parts = _loss_one(config, x_init, x_prop, acceptance, "")
    if config.aux_weight > 0:
        if aux is None:
            raise ValueError(
                "loss.aux_weight > 0 needs the aux proposal (x_init, x_prop, acceptance)"
            )
        aux_loss, aux_parts = _loss_one(config, *aux, "aux_")
        loss = loss + config.aux_weight * aux_loss
        parts.update(aux_parts)
    parts["loss"] = loss.detach()
    return loss, parts
