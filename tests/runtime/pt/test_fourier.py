"""`network local { fourier = m² }`: Fourier-accelerated kicks and drifts (LocalNet.kinetic).

Exact properties in float64: the filter's eigenvalues on plane waves, the merged proposal an
involution with the autograd log-Jacobian, gauge equivariance, `fourier = 0` the plain layers
bit for bit, and the filter's mass² a learned parameter that gets a gradient.
"""

from __future__ import annotations

import math

import pytest
import torch

from l2hmcc.runtime.pt.dynamics import Dynamics, DynamicsConfig
from l2hmcc.runtime.pt.groups import U1, wrap
from l2hmcc.runtime.pt.networks import LocalNet, NetworkConfig, lattice_laplacian

torch.set_num_threads(1)
F64 = torch.float64


def fourier_net(m2: float = 0.7, head_init: float = 1.0) -> NetworkConfig:
    return NetworkConfig(kind="local", hidden=(5,), head_init=head_init, fourier=m2)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make(shape, net, **cfg) -> Dynamics:
    torch.manual_seed(0)
    cfg.setdefault("leapfrog", 3)
    cfg.setdefault("step_size", 0.25)
    return Dynamics(U1, shape, DynamicsConfig(**cfg), net, dtype=F64)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2)], ids=["2d", "3d"])
def test_filter_eigenvalues_on_plane_waves(shape) -> None:
    """``K e^{ik·n} = √((4D + m²)/(λ(k) + m²)) e^{ik·n}``: 1 at the corner of the zone where
    every extent is even (λ = 4D), √((4D + m²)/m²) for a constant field."""
    m2, d = 0.7, len(shape)
    net = LocalNet(U1, shape, fourier_net(m2), dtype=F64)
    grids = torch.meshgrid(*(torch.arange(n, dtype=F64) for n in shape), indexing="ij")
    for wave in [(0,) * d, (1,) * d, tuple(n // 2 for n in shape)]:
        lam = sum(4 * math.sin(math.pi * w / n) ** 2 for w, n in zip(wave, shape, strict=True))
        phase = sum(2 * math.pi * w * g / n for w, g, n in zip(wave, grids, shape, strict=True))
        field = torch.stack([torch.cos(phase + mu) for mu in range(d)])[None]  # [1, D, *L]
        with torch.no_grad():
            out = net.kinetic(field)
        factor = math.sqrt((4 * d + m2) / (lam + m2))
        assert float((out - factor * field).abs().max()) < 1e-12
    lap = lattice_laplacian(shape, dtype=F64)
    assert tuple(lap.shape) == (*shape[:-1], shape[-1] // 2 + 1)
    assert float(lap.min()) == 0.0


def test_merged_proposal_is_an_involution_with_the_autograd_logdet() -> None:
    dyn = make((4, 4), fourier_net(), leapfrog=2, step_size=0.3)
    x = U1.random(1, (4, 4), generator=gen(6))
    v = U1.random_momenta(x, gen(7))
    n = x.numel()
    with torch.no_grad():
        x1, v1, ld, _, _ = dyn.involution(x, v, 1.5)
        x2, v2, ld2, _, _ = dyn.involution(x1, v1, 1.5)
    assert float(wrap(x2 - x).abs().max()) < 1e-12 and float((v2 - v).abs().max()) < 1e-12
    assert abs(float(ld + ld2)) < 1e-12

    def fn(z: torch.Tensor) -> torch.Tensor:
        a, b, _, _, _ = dyn.involution(z[:n].reshape(x.shape), z[n:].reshape(v.shape), 1.5)
        return torch.cat([a.flatten(), b.flatten()])

    jac = torch.autograd.functional.jacobian(fn, torch.cat([x.flatten(), v.flatten()]))
    _, logabs = torch.linalg.slogdet(jac)
    assert abs(float(ld)) > 0.01  # the s heads scale the momenta
    assert abs(float(logabs - ld)) < 1e-11


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2)], ids=["2d", "3d"])
def test_proposal_commutes_with_gauge_transformations(shape) -> None:
    dyn = make(shape, fourier_net())
    x = U1.random(3, shape, generator=gen(1))
    v = U1.random_momenta(x, gen(2))
    alpha = (torch.rand((3, *shape), dtype=F64, generator=gen(3)) * 2 - 1) * math.pi
    d = len(shape)

    def gauge(y: torch.Tensor) -> torch.Tensor:
        return torch.stack([y[:, mu] + alpha - torch.roll(alpha, -1, 1 + mu) for mu in range(d)], 1)

    with torch.no_grad():
        p, pg = dyn.propose(x, v, 2.0), dyn.propose(gauge(x), v, 2.0)
    assert float(wrap(p.x - x).abs().max()) > 0.1
    assert float(wrap(pg.x - gauge(p.x)).abs().max()) < 1e-12
    assert float((pg.v - p.v).abs().max()) < 1e-12
    assert float((pg.acceptance - p.acceptance).abs().max()) < 1e-12


def test_zero_is_the_plain_layer_and_nonzero_moves_differently() -> None:
    base = NetworkConfig(kind="local", hidden=(5,), head_init=0.0)
    plain, fa = make((4, 4), base), make((4, 4), fourier_net(0.7, head_init=0.0))
    none = make((4, 4), None)
    assert plain.vnets[0].kinetic_log_m2 is None
    assert set(dict(plain.named_parameters())) < set(dict(fa.named_parameters()))
    x = U1.random(2, (4, 4), generator=gen(8))
    v = U1.random_momenta(x, gen(9))
    with torch.no_grad():
        a, b, c = plain.propose(x, v, 3.0), fa.propose(x, v, 3.0), none.propose(x, v, 3.0)
    assert torch.equal(a.x, c.x) and torch.equal(a.v, c.v)  # fourier = 0: unchanged
    assert float(wrap(b.x - a.x).abs().max()) > 1e-3


def test_the_mass_is_learned() -> None:
    dyn = make((4, 4), fourier_net(0.7))
    x = U1.random(2, (4, 4), generator=gen(10))
    v = U1.random_momenta(x, gen(11))
    p = dyn.propose(x, v, 2.0)
    (p.acceptance.sum() + p.x.sin().sum()).backward()
    grads = [net.kinetic_log_m2.grad for net in dyn.vnets]
    assert all(g is not None and float(g.abs()) > 0 for g in grads)
    assert float(torch.exp(dyn.vnets[0].kinetic_log_m2.detach())) == pytest.approx(0.7)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="fourier"):
        NetworkConfig(kind="local", fourier=-1.0)
    with pytest.raises(ValueError, match="local"):
        NetworkConfig(fourier=0.5)
    with pytest.raises(ValueError, match="dimension 2 or 3"):
        LocalNet(U1, (2, 2, 2, 2), fourier_net(), dtype=F64)
