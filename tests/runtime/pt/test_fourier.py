"""`dynamics { fourier = m² }`: Fourier-accelerated kicks and drifts (``fourier_filter``).

Exact properties in float64: the filter's eigenvalues on plane waves, the merged proposal an
involution with the autograd log-Jacobian, gauge equivariance, `fourier = 0` the plain layers
bit for bit, the filter with any network or none (Fourier-accelerated leapfrog: reversible,
ΔH → 0 as ε²), and the per-layer mass² a parameter learned with the step sizes.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from l2hmcc.runtime.common.driver import ablation_trainer
from l2hmcc.runtime.pt import hmc
from l2hmcc.runtime.pt.dynamics import Dynamics, DynamicsConfig, fourier_filter
from l2hmcc.runtime.pt.groups import SU2, U1, wrap
from l2hmcc.runtime.pt.loss import LossConfig
from l2hmcc.runtime.pt.networks import NetworkConfig, lattice_laplacian
from l2hmcc.runtime.pt.trainer import BetaSchedule, TrainConfig, Trainer, _optimizer

torch.set_num_threads(1)
F64 = torch.float64
LOCAL = NetworkConfig(kind="local", hidden=(5,), head_init=1.0)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make(shape, net, **cfg) -> Dynamics:
    torch.manual_seed(0)
    cfg.setdefault("leapfrog", 3)
    cfg.setdefault("step_size", 0.25)
    cfg.setdefault("fourier", 0.7)
    return Dynamics(U1, shape, DynamicsConfig(**cfg), net, dtype=F64)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2)], ids=["2d", "3d"])
def test_filter_eigenvalues_on_plane_waves(shape) -> None:
    """``K e^{ik·n} = √((4D + m²)/(λ(k) + m²)) e^{ik·n}``: 1 at the corner of the zone where
    every extent is even (λ = 4D), √((4D + m²)/m²) for a constant field."""
    m2, d = 0.7, len(shape)
    lap = lattice_laplacian(shape, dtype=F64)
    assert tuple(lap.shape) == (*shape[:-1], shape[-1] // 2 + 1)
    assert float(lap.min()) == 0.0
    log_m2 = torch.tensor([math.log(m2)], dtype=F64)
    grids = torch.meshgrid(*(torch.arange(n, dtype=F64) for n in shape), indexing="ij")
    for wave in [(0,) * d, (1,) * d, tuple(n // 2 for n in shape)]:
        lam = sum(4 * math.sin(math.pi * w / n) ** 2 for w, n in zip(wave, shape, strict=True))
        phase = sum(2 * math.pi * w * g / n for w, g, n in zip(wave, grids, shape, strict=True))
        field = torch.stack([torch.cos(phase + mu) for mu in range(d)])[None]  # [1, D, *L]
        out = fourier_filter(field, log_m2, lap)
        factor = math.sqrt((4 * d + m2) / (lam + m2))
        assert float((out - factor * field).abs().max()) < 1e-12


def test_real_arithmetic_equals_the_complex_product() -> None:
    """The filter scales the spectrum as real pairs: bit for bit the complex product with
    ``K̂ + 0i`` (``a·k − b·0 = a·k``), in float32 and float64."""
    for dtype in (torch.float32, F64):
        a = torch.randn((3, 2, 8, 6), generator=gen(1), dtype=F64).to(dtype)
        lap = lattice_laplacian((8, 6), dtype=dtype)
        log_m2 = torch.tensor([math.log(0.5)], dtype=dtype)
        m2 = torch.exp(log_m2)
        k = torch.sqrt((8 + m2) / (lap + m2))
        ref = torch.fft.irfftn(torch.fft.rfftn(a, dim=(2, 3)) * k, s=(8, 6), dim=(2, 3))
        assert torch.equal(fourier_filter(a, log_m2, lap), ref)


@pytest.mark.parametrize(
    "shape", [(6, 4), (5, 7), (3, 4, 2), (5, 3, 3)], ids=["2d-even", "2d-odd", "3d-even", "3d-odd"]
)
def test_dense_filter_equals_the_ffts(shape) -> None:
    """``fourier_hartley``: the separable Hartley transforms by matmuls give the FFTs' values
    to 1e-12 in float64, and the same gradient w.r.t. ``log m²`` (relative 1e-12); odd and even
    extents, 2D and 3D."""
    a = torch.randn((3, len(shape), *shape), generator=gen(2), dtype=F64)
    w = torch.randn(a.shape, generator=gen(3), dtype=F64)
    lap = lattice_laplacian(shape, dtype=F64)
    dense = hmc.fourier_hartley(shape, dtype=F64)
    assert dense is not None
    outs, grads = [], []
    for d in (None, dense):
        log_m2 = torch.tensor([math.log(0.7)], dtype=F64, requires_grad=True)
        out = fourier_filter(a, log_m2, lap, d)
        (g,) = torch.autograd.grad((out * w).sum(), log_m2)
        outs.append(out.detach())
        grads.append(float(g))
    assert float((outs[0] - outs[1]).abs().max()) < 1e-12
    assert float((outs[0] - a).abs().max()) > 0.1  # the filter does something
    assert abs(grads[0] - grads[1]) < 1e-12 * abs(grads[0]) and abs(grads[0]) > 1e-3


def test_dense_filter_is_chosen_by_volume() -> None:
    """Lattices up to ``FOURIER_DENSE_MAX_VOLUME`` sites use the filter by matmuls (``Dynamics``
    registers its buffers: λ and one Hartley matrix per axis), larger ones the FFTs."""
    limit = hmc.FOURIER_DENSE_MAX_VOLUME
    assert hmc.fourier_hartley((limit // 2, 2), dtype=F64) is not None
    assert hmc.fourier_hartley((limit // 2 + 1, 2), dtype=F64) is None
    assert len(make((4, 4), None)._kinetic_dense() or ()) == 3
    assert len(make((4, 3, 2), None)._kinetic_dense() or ()) == 4
    big = make((limit // 4, 8), None)
    assert big._kinetic_dense() is None and big.kinetic_full is None
    assert make((4, 4), None, fourier=0.0)._kinetic_dense() is None


@pytest.mark.parametrize("net", [LOCAL, None], ids=["local", "none"])
def test_merged_proposal_is_an_involution_with_the_autograd_logdet(net) -> None:
    dyn = make((4, 4), net, leapfrog=2, step_size=0.3)
    x = U1.random(1, (4, 4), generator=gen(6))
    v = U1.random_momenta(x, gen(7))
    n = x.numel()
    with torch.no_grad():
        x1, v1, ld, _, _ = dyn.involution(x, v, 1.5)
        x2, v2, ld2, _, _ = dyn.involution(x1, v1, 1.5)
    assert float(wrap(x1 - x).abs().max()) > 0.1
    assert float(wrap(x2 - x).abs().max()) < 1e-12 and float((v2 - v).abs().max()) < 1e-12
    assert abs(float(ld + ld2)) < 1e-12

    def fn(z: torch.Tensor) -> torch.Tensor:
        a, b, _, _, _ = dyn.involution(z[:n].reshape(x.shape), z[n:].reshape(v.shape), 1.5)
        return torch.cat([a.flatten(), b.flatten()])

    jac = torch.autograd.functional.jacobian(fn, torch.cat([x.flatten(), v.flatten()]))
    _, logabs = torch.linalg.slogdet(jac)
    if net is not None:
        assert abs(float(ld)) > 0.01  # the s heads scale the momenta
    else:
        assert float(ld) == 0.0  # the filtered leapfrog is volume preserving
    assert abs(float(logabs - ld)) < 1e-11


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2)], ids=["2d", "3d"])
@pytest.mark.parametrize("net", [LOCAL, None], ids=["local", "none"])
def test_proposal_commutes_with_gauge_transformations(shape, net) -> None:
    dyn = make(shape, net)
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
    plain_net = NetworkConfig(kind="local", hidden=(5,), head_init=0.0)
    plain, fa = make((4, 4), plain_net, fourier=0.0), make((4, 4), plain_net)
    none, none_fa = make((4, 4), None, fourier=0.0), make((4, 4), None)
    assert plain.kinetic_log_m2 is None and none.kinetic_log_m2 is None
    assert set(dict(fa.named_parameters())) == {*dict(plain.named_parameters()), "kinetic_log_m2"}
    # the LocalNet weights do not depend on the filter (no random draw moved)
    for key, value in plain.state_dict().items():
        assert torch.equal(value, fa.state_dict()[key]), key
    x = U1.random(2, (4, 4), generator=gen(8))
    v = U1.random_momenta(x, gen(9))
    with torch.no_grad():
        a, b, c = plain.propose(x, v, 3.0), fa.propose(x, v, 3.0), none.propose(x, v, 3.0)
        d = none_fa.propose(x, v, 3.0)
    assert torch.equal(a.x, c.x) and torch.equal(a.v, c.v)  # fourier = 0: unchanged
    assert float(wrap(b.x - a.x).abs().max()) > 1e-3
    assert torch.equal(b.x, d.x) and torch.equal(b.v, d.v)  # zero heads: the filtered leapfrog


def test_filtered_leapfrog_conserves_energy_to_second_order() -> None:
    """``network none`` with the filter is HMC with a momentum-space mass: ``ΔH = O(ε²)`` at
    fixed trajectory length (halving ε quarters ΔH), and the exact ``H`` is ``S + ½Σv²``."""
    shape, beta, length = (6, 6), 1.0, 0.8
    x = U1.random(4, shape, generator=gen(12))
    v = U1.random_momenta(x, gen(13))
    errors = []
    for n in (8, 16, 32):
        dyn = make(shape, None, leapfrog=n, step_size=length / n, directions="random")
        with torch.no_grad():
            p = dyn.propose(x, v, beta, torch.ones(4, dtype=torch.bool))
        errors.append(float((p.h_prop - p.h_init).abs().max()))
    assert errors[0] > 1e-4
    for a, b in itertools.pairwise(errors):
        assert 3.5 < a / b < 4.5


def test_the_masses_are_learned_with_the_step_sizes() -> None:
    dyn = make((4, 4), LOCAL, leapfrog=3)
    assert tuple(dyn.kinetic_log_m2.shape) == (3,)
    assert torch.allclose(torch.exp(dyn.kinetic_log_m2.detach()), torch.tensor(0.7, dtype=F64))
    x = U1.random(2, (4, 4), generator=gen(10))
    v = U1.random_momenta(x, gen(11))
    p = dyn.propose(x, v, 2.0)
    (p.acceptance.sum() + p.x.sin().sum()).backward()
    grad = dyn.kinetic_log_m2.grad
    assert grad is not None and bool((grad.abs() > 0).all())  # every layer's own mass²
    opt = _optimizer(TrainConfig(lr=0.01, step_size_lr_factor=3.0), dyn, torch.device("cpu"))
    first = opt.param_groups[0]
    assert first["lr"] == pytest.approx(0.03)
    assert {id(q) for q in first["params"]} == {id(dyn.log_step_size), id(dyn.kinetic_log_m2)}
    fixed = make((4, 4), LOCAL, learnable_step_size=False)
    assert "kinetic_log_m2" not in dict(fixed.named_parameters())
    assert "kinetic_log_m2" in fixed.state_dict()  # saved with the checkpoint, not trained


def test_the_ablation_keeps_the_filter() -> None:
    """The driver's ablation is a trainer of the same class with the same dynamics config and
    no networks (``driver.ablation_trainer``, as the driver builds it): it trains the step sizes and the masses."""
    trainer = Trainer(
        U1,
        (4, 4),
        BetaSchedule("constant", 2.0),
        DynamicsConfig(leapfrog=2, step_size=0.2, fourier=0.6),
        LOCAL,
        LossConfig(plaquette=0.0, charge=1.0, form="plain"),
        TrainConfig(
            steps=2,
            chains=2,
            lr=0.05,
            precision="fp64",
            log_every=0,
            compile=False,
            checkpoint_every=0,
        ),
        log=None,
    )
    ab = ablation_trainer(trainer, log=None)
    assert not len(ab.model.vnets) and ab.model.kinetic_log_m2 is not None
    before = ab.model.kinetic_log_m2.detach().clone()
    ab.train()
    assert not torch.equal(before, ab.model.kinetic_log_m2.detach())  # learned


def test_config_rejects_bad_values() -> None:
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="fourier"):
            DynamicsConfig(fourier=bad)
    with pytest.raises(ValueError, match="dimension 2 or 3"):
        Dynamics(U1, (2, 2, 2, 2), DynamicsConfig(fourier=0.5), None, dtype=F64)
    with pytest.raises(ValueError, match="U1"):
        Dynamics(SU2, (2, 2), DynamicsConfig(fourier=0.5), None, dtype=F64)


# -- hmc { fourier = m² }: the Fourier-accelerated HMC baseline ----------------------------------
def test_fourier_hmc_is_reversible_and_conserves_energy_to_second_order() -> None:
    """Kicks ``K F``, drifts ``ε K p``: ``p → −p`` retraces the trajectory to 1e-12, and
    ``ΔH = O(ε²)`` at fixed trajectory length with ``H = S + ½Σp²`` (what ``hmc_step``'s
    Metropolis test uses)."""
    shape, beta, m2 = (6, 4), 1.3, 0.5
    integrate = hmc.fourier_leapfrog(m2, shape, dtype=F64, compiled=False)
    x = U1.random(3, shape, generator=gen(20))
    p = U1.random_momenta(x, gen(21))
    x1, p1, _, _ = integrate(x, p, beta, 0.1, 7)
    x2, p2, _, _ = integrate(x1, -p1, beta, 0.1, 7)
    assert float(wrap(x1 - x).abs().max()) > 0.1
    assert float(wrap(x2 - x).abs().max()) < 1e-12 and float((p2 + p).abs().max()) < 1e-12
    plain = hmc._leapfrog(x, p, beta, 0.1, 7)
    assert float((plain[1] - p1).abs().max()) > 1e-3  # not the plain leapfrog
    errors = []
    for n in (5, 10, 20):
        y, q, _, _ = integrate(x, p, beta, 0.8 / n, n)
        dh = hmc.hamiltonian(y, q, beta) - hmc.hamiltonian(x, p, beta)
        errors.append(float(dh.abs().max()))
    assert errors[0] > 1e-4
    for a, b in itertools.pairwise(errors):
        assert 3.5 < a / b < 4.5


def test_fourier_hmc_baseline_tunes_its_step_size() -> None:
    """``Trainer.run_hmc(fourier=m²)``: ε tuned to the target acceptance as without the filter,
    and the trajectories accepted about as often."""
    trainer = Trainer(
        U1,
        (8, 8),
        BetaSchedule("constant", 2.0),
        DynamicsConfig(leapfrog=2, step_size=0.2),
        None,
        LossConfig(plaquette=0.0, charge=1.0, form="plain"),
        TrainConfig(steps=0, chains=8, precision="fp64", log_every=0, compile=False),
        log=None,
    )
    hist = trainer.run_hmc(20, 2.0, target_acceptance=0.75, fourier=0.5)
    acc = float(hist["accept_prob"].mean())
    assert 0.5 < acc < 0.95
    assert hist["step_size"][-1] > 0 and int(hist["n_steps"][-1]) >= 1


@pytest.mark.slow
def test_compiled_fourier_hmc_equals_eager() -> None:
    shape, beta = (8, 8), 2.0
    x = U1.random(4, shape, generator=gen(30))
    p = U1.random_momenta(x, gen(31))
    eager = hmc.fourier_leapfrog(0.5, shape, dtype=F64, compiled=False)(x, p, beta, 0.1, 5)
    compiled = hmc.fourier_leapfrog(0.5, shape, dtype=F64)(x, p, beta, 0.1, 5)
    for a, b in zip(eager, compiled, strict=True):
        assert float((a - b).abs().max()) < 1e-12
