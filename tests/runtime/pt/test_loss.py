"""Loss terms on hand-computed configurations; mixed vs plain forms; the aux weight."""

import math

import pytest
import torch

from l2hmcc.runtime.pt.groups import SU2, U1
from l2hmcc.runtime.pt.lattice import sin_charge
from l2hmcc.runtime.pt.loss import (
    LossConfig,
    charge_distance,
    l2hmc_loss,
    plaquette_distance,
    rmse_distance,
)

torch.set_num_threads(1)
F64 = torch.float64


def one_link_moved(a: float, shape=(3, 3)) -> tuple[torch.Tensor, torch.Tensor]:
    """Cold U1 configuration and the same with the single link x_0(0,0) turned by ``a``."""
    x = torch.zeros(1, 2, *shape, dtype=F64)
    y = x.clone()
    y[0, 0, 0, 0] = a
    return x, y


def test_u1_plaquette_distance_of_one_turned_link() -> None:
    """A link of a 2D lattice lies in two plaquettes, entering one with +a and one with −a."""
    a = 0.7
    x, y = one_link_moved(a)
    expected = 2 * 2 * (1 - math.cos(a))
    assert float(plaquette_distance(x, y)) == pytest.approx(expected, rel=1e-14)
    # in 3D a link lies in 2(D−1) = 4 plaquettes
    x3 = torch.zeros(1, 3, 2, 3, 3, dtype=F64)
    y3 = x3.clone()
    y3[0, 1, 1, 2, 0] = a
    assert float(plaquette_distance(x3, y3)) == pytest.approx(4 * 2 * (1 - math.cos(a)), rel=1e-14)


def u1_in_su2(x: torch.Tensor) -> torch.Tensor:
    """Embed U1 angles as diag(e^{ix}, e^{−ix}) in SU(2)."""
    z = torch.zeros_like(x)
    e = torch.polar(torch.ones_like(x), x)
    return torch.stack([e, torch.complex(z, z), torch.complex(z, z), e.conj()], -1).unflatten(
        -1, (2, 2)
    )


def test_sun_plaquette_distance_reduces_to_the_u1_one() -> None:
    """For diag(e^{iθ}, e^{−iθ}) plaquettes Re tr(U'_P U_P†)/2 = cos(θ'_P − θ_P)."""
    g = torch.Generator().manual_seed(0)
    x = U1.random(2, (3, 4), generator=g)
    y = U1.random(2, (3, 4), generator=g)
    torch.testing.assert_close(
        plaquette_distance(u1_in_su2(x), u1_in_su2(y)), plaquette_distance(x, y), rtol=1e-13, atol=0
    )
    # and it vanishes for identical configurations, is positive otherwise
    s = SU2.random(2, (2, 2, 2), generator=g)
    assert float(plaquette_distance(s, s).abs().max()) < 1e-12
    assert float(plaquette_distance(s, SU2.random(2, (2, 2, 2), generator=g)).min()) > 0


def test_u1_charge_distance_is_the_squared_sine_charge_change() -> None:
    a = 0.7
    x, y = one_link_moved(a)
    # x_0(0,0) enters θ_01(0,0) with + and θ_01(0,−1̂) with −: the sines cancel in Q_sin ...
    assert float(charge_distance(x, y)) == pytest.approx(0.0, abs=1e-15)
    # ... a link x_1 at a boundary between two plaquette rows does the same; a "vortex" does not
    y2 = x.clone()
    y2[0, 0, 0, 0] = a
    y2[0, 1, 0, 0] = -a  # θ_01(0,0) = x_0 + … − x_1 = 2a, the neighbours get −a each
    q = float(sin_charge(y2))
    expected = (math.sin(2 * a) - 2 * math.sin(a)) / (2 * math.pi)
    assert q == pytest.approx(expected, rel=1e-13)
    assert float(charge_distance(x, y2)) == pytest.approx(expected**2, rel=1e-12)


def test_rmse_distance_is_the_mean_squared_link_distance() -> None:
    a = 0.7
    x, y = one_link_moved(a)  # 2·3·3 = 18 links, one moved
    assert float(rmse_distance(x, y)) == pytest.approx(2 * (1 - math.cos(a)) / 18, rel=1e-14)
    s = u1_in_su2(x)
    t = u1_in_su2(y)  # |diag(e^{ia},e^{−ia}) − 1|² = 2·2(1 − cos a)
    assert float(rmse_distance(s, t)) == pytest.approx(4 * (1 - math.cos(a)) / 18, rel=1e-14)


def test_mixed_and_plain_forms_on_known_jumps() -> None:
    """δ_plaq = 4(1 − cos a) per chain; with A = [1, 0.5] the jumps ℓ are A·δ."""
    a = 0.7
    x, y = one_link_moved(a)
    x, y = x.repeat(2, 1, 1, 1), y.repeat(2, 1, 1, 1)
    acc = torch.tensor([1.0, 0.5], dtype=F64)
    jump = acc * 4 * (1 - math.cos(a))
    lam = 0.3
    mixed, parts = l2hmc_loss(LossConfig(plaquette=2.0, scale=lam), x, y, acc)
    expected = float((lam**2 / jump - jump / lam**2).mean())
    assert float(mixed) == pytest.approx(2.0 * expected, rel=1e-13)
    assert float(parts["esjd_plaquette"]) == pytest.approx(float(jump.mean()), rel=1e-14)
    plain, _ = l2hmc_loss(LossConfig(plaquette=2.0, form="plain"), x, y, acc)
    assert float(plain) == pytest.approx(-2.0 * float(jump.mean()), rel=1e-14)
    # a zero jump (rejected) stays finite in the mixed form
    zero, _ = l2hmc_loss(LossConfig(), x, y, torch.zeros(2, dtype=F64))
    assert math.isfinite(float(zero)) and float(zero) > 0


def test_terms_add_with_their_weights_and_aux_has_weight_exactly_w() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = U1.random(4, (4, 4), generator=g), U1.random(4, (4, 4), generator=g)
    xa, ya = U1.random(4, (4, 4), generator=g), U1.random(4, (4, 4), generator=g)
    acc = torch.rand(4, generator=g, dtype=F64)
    acc_a = torch.rand(4, generator=g, dtype=F64)
    cfg = LossConfig(plaquette=0.5, charge=2.0, rmse=1.5, form="plain")
    total, parts = l2hmc_loss(cfg, x, y, acc)
    by_hand = -(
        0.5 * (acc * plaquette_distance(x, y)).mean()
        + 2.0 * (acc * charge_distance(x, y)).mean()
        + 1.5 * (acc * rmse_distance(x, y)).mean()
    )
    assert float(total) == pytest.approx(float(by_hand), rel=1e-13)
    aux_cfg = LossConfig(plaquette=0.5, charge=2.0, rmse=1.5, form="plain", aux_weight=0.25)
    with_aux, parts = l2hmc_loss(aux_cfg, x, y, acc, aux=(xa, ya, acc_a))
    aux_alone, _ = l2hmc_loss(cfg, xa, ya, acc_a)
    assert float(with_aux) == pytest.approx(float(total + 0.25 * aux_alone), rel=1e-13)
    assert "aux_esjd_plaquette" in parts and "loss_charge" in parts
    with pytest.raises(ValueError, match="aux"):
        l2hmc_loss(aux_cfg, x, y, acc)


def test_loss_is_differentiable_through_the_acceptance() -> None:
    x, y = one_link_moved(0.4)
    acc = torch.tensor([0.6], dtype=F64, requires_grad=True)
    loss, _ = l2hmc_loss(LossConfig(plaquette=1.0, charge=0.0), x, y, acc)
    (grad,) = torch.autograd.grad(loss, acc)
    delta = 4 * (1 - math.cos(0.4))
    # d/dA (1/(Aδ) − Aδ) = −1/(A²δ) − δ
    assert float(grad) == pytest.approx(-1 / (0.36 * delta) - delta, rel=1e-12)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="form"):
        LossConfig(form="levy")
    with pytest.raises(ValueError, match="at least one"):
        LossConfig(plaquette=0.0)
    with pytest.raises(ValueError, match=">= 0"):
        LossConfig(charge=-1.0)
    with pytest.raises(ValueError, match="unknown"):
        LossConfig.from_dict({"plaquete": 1.0})
