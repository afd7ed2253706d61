"""PyTorch HMC: energy error scaling, step-size tuning, per-chain parameters, metrics, the
compiled and planar-pair integrators.  The exactness tests both frameworks share (reversibility,
Creutz equality, equipartition, exact U(1) plaquette and ⟨Q²⟩, SU(3) strong coupling) are in
tests/runtime/test_exactness.py."""

import numpy as np
import pytest
import torch

from l2hmcc.runtime.pt import hmc, lattice, su_pairs
from l2hmcc.runtime.pt.groups import SU2, SU3, U1

torch.set_num_threads(1)
F64 = torch.float64
SMALL = {
    "U1": ((8, 8), 2.0, 0.1),
    "SU3": ((2, 2, 2, 2), 5.0, 0.05),
}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def run_hmc(links, beta, eps, n_steps, n_traj, g, **kw):
    hist: dict[str, list[np.ndarray]] = {}
    for _ in range(n_traj):
        links, met = hmc.hmc_step(links, beta, eps, n_steps, g, **kw)
        for k, v in met.items():
            hist.setdefault(k, []).append(v.numpy())
    return links, {k: np.stack(v) for k, v in hist.items()}


@pytest.mark.parametrize("grp", [U1, SU3], ids=str)
def test_energy_error_scales_as_eps_squared(grp) -> None:
    """At fixed trajectory length, halving ε divides ΔH by 4 (leapfrog is second order)."""
    shape, beta, _ = SMALL[grp.name]
    g = gen(2)
    links = grp.random(4, shape, generator=g)
    links, _ = run_hmc(links, beta, 0.05, 10, 10, g)  # thermalise a little
    p = grp.random_momenta(links, g)
    h0 = hmc.hamiltonian(links, p, beta)
    rms = []
    for n in (8, 16, 32):
        l1, p1 = hmc.leapfrog(links, p, beta, 0.4 / n, n)
        rms.append((hmc.hamiltonian(l1, p1, beta) - h0).square().mean().sqrt().item())
    assert rms[0] / rms[1] == pytest.approx(4.0, rel=0.15), rms
    assert rms[1] / rms[2] == pytest.approx(4.0, rel=0.05), rms


def test_tune_step_size_reaches_target_at_fixed_trajectory_length() -> None:
    g = gen(10)
    links = U1.random(64, (8, 8), generator=g)
    res = hmc.tune_step_size(links, 3.0, target=0.75, eps0=0.5, n_iter=40, generator=g)
    assert res.eps * res.n_steps == pytest.approx(1.0)
    assert abs(res.acceptance - 0.75) < 0.1, res
    assert len(res.trace) == 40 and res.links.shape == links.shape
    fixed = hmc.tune_step_size(
        links, 3.0, traj_length=None, n_steps=5, eps0=0.05, n_iter=40, generator=g
    )
    assert fixed.n_steps == 5 and abs(fixed.acceptance - 0.75) < 0.1, fixed
    with pytest.raises(ValueError):
        hmc.tune_step_size(links, 3.0, target=1.5)


def test_per_chain_step_sizes_and_betas_match_separate_runs() -> None:
    links = SU2.random(3, (2, 2, 2, 2), generator=gen(11))
    eps = torch.tensor([0.05, 0.1, 0.2], dtype=F64)
    beta = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    p = SU2.random_momenta(links, gen(12))
    l_all, p_all = hmc.leapfrog(links, p, beta, eps, 5)
    for b in range(3):
        l_b, p_b = hmc.leapfrog(links[b : b + 1], p[b : b + 1], float(beta[b]), float(eps[b]), 5)
        torch.testing.assert_close(l_all[b : b + 1], l_b)
        torch.testing.assert_close(p_all[b : b + 1], p_b)


def test_metrics_and_rejection() -> None:
    g = gen(13)
    links = U1.random(4, (4, 4), generator=g)
    new, met = hmc.hmc_step(links, 1.0, 0.1, 3, g)
    assert set(met) == {
        "accept_prob",
        "accepted",
        "dH",
        "exp_minus_dH",
        "action",
        "plaquette",
        "charge",
        "sin_charge",
    }
    assert all(v.shape == (4,) for v in met.values())
    torch.testing.assert_close(met["plaquette"], lattice.mean_plaquette(new))
    torch.testing.assert_close(met["action"], lattice.wilson_action(new, 1.0))
    # an absurd step size is rejected everywhere and leaves the links untouched
    new, met = hmc.hmc_step(links, 50.0, 10.0, 5, g)
    assert met["accepted"].sum() == 0 and torch.equal(new, links)


@pytest.mark.slow
def test_compiled_leapfrog_matches_eager() -> None:
    g = gen(14)
    links = U1.random(4, (8, 8), generator=g)
    p = U1.random_momenta(links, g)
    integ = hmc.compile_leapfrog()
    out_c = integ(links, p, 2.0, 0.1, 4)
    out_e = hmc._leapfrog(links, p, 2.0, 0.1, 4)
    for a, b in zip(out_c, out_e, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # a whole HMC step (compiled Metropolis test and measurements) with the same random numbers
    new_c, met_c = hmc.hmc_step(links, 2.0, 0.3, 4, gen(20), integrator=integ)
    new_e, met_e = hmc.hmc_step(links, 2.0, 0.3, 4, gen(20))
    torch.testing.assert_close(new_c, new_e, rtol=1e-12, atol=1e-12)
    assert met_c.keys() == met_e.keys()
    for k in met_e:
        torch.testing.assert_close(met_c[k], met_e[k], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("grp", [SU2, SU3], ids=str)
def test_planar_pair_algebra_matches_complex(grp) -> None:
    """The real-pair (planar) SU(N) path used under torch.compile, run eagerly."""
    g = gen(15)
    links = grp.random(2, (2, 3, 2, 2), generator=g)
    p = grp.random_momenta(links, g)
    pairs = su_pairs.to_pairs(links)
    assert pairs.shape == (grp.n_colors, grp.n_colors, 2, 2, 4, 2, 3, 2, 2)
    assert torch.equal(su_pairs.from_pairs(pairs), links)
    s, f = su_pairs.action_and_force(pairs, 1.3)
    torch.testing.assert_close(s, lattice.wilson_action(links, 1.3), rtol=1e-13, atol=1e-12)
    torch.testing.assert_close(f, lattice.force(links, 1.3), rtol=1e-13, atol=1e-13)
    eps = torch.tensor([0.3, 0.7], dtype=F64)
    moved = su_pairs.from_pairs(su_pairs.drift(pairs, p, eps))
    torch.testing.assert_close(moved, grp.exp_update(links, p, eps), rtol=0, atol=1e-14)
    units = {"plane": su_pairs.plane_products, "w_kick": su_pairs.w_kick, "drift": su_pairs.drift}
    out = hmc._leapfrog_pairs(links, p, 2.0, 0.1, 5, units)
    ref = hmc._leapfrog(links, p, 2.0, 0.1, 5)
    for a, b in zip(out, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_compiled_su3_leapfrog_matches_eager() -> None:
    g = gen(16)
    links = SU3.random(2, (2, 2, 2, 2), generator=g)
    p = SU3.random_momenta(links, g)
    out = hmc.compile_leapfrog()(links, p, 5.0, 0.1, 3)
    ref = hmc._leapfrog(links, p, 5.0, 0.1, 3)
    for a, b in zip(out, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
