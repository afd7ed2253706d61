"""HMC exactness: reversibility, energy error scaling, Creutz equality, exact U(1) plaquette and
⟨Q²⟩, SU(3) strong coupling, equipartition, step-size tuning."""

import math

import numpy as np
import pytest
import torch

from l2hmcc.runtime.common import exact
from l2hmcc.runtime.common.autocorr import mean_error
from l2hmcc.runtime.pt import hmc, lattice, su_pairs
from l2hmcc.runtime.pt.groups import SU2, SU3, U1

torch.set_num_threads(1)
F64 = torch.float64
SMALL = {
    "U1": ((8, 8), 2.0, 0.1),
    "SU2": ((2, 2, 2, 2), 2.0, 0.1),
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


@pytest.mark.parametrize("grp", [U1, SU2, SU3], ids=str)
def test_leapfrog_is_reversible(grp) -> None:
    shape, beta, eps = SMALL[grp.name]
    g = gen(1)
    links = grp.random(2, shape, generator=g)
    p = grp.random_momenta(links, g)
    l1, p1 = hmc.leapfrog(links, p, beta, eps, 20)
    assert (l1 - links).abs().max() > 0.1
    l2, p2 = hmc.leapfrog(l1, -p1, beta, eps, 20)
    assert (l2 - links).abs().max() < 1e-12
    assert (p2 + p).abs().max() < 1e-12
    l0, p0 = hmc.leapfrog(links, p, beta, eps, 0)
    assert l0 is links and p0 is p


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


@pytest.mark.parametrize("grp", [U1, SU2], ids=str)
def test_creutz_equality(grp) -> None:
    """⟨e^{-ΔH}⟩ = 1 in equilibrium; chains are independent, so the error is taken across them."""
    shape, beta, _ = SMALL[grp.name]
    g = gen(3)
    links = grp.random(32, shape, generator=g)
    links, _ = run_hmc(links, beta, 0.2, 5, 30, g)
    _, h = run_hmc(links, beta, 0.2, 5, 60, g, measure_charge=False)
    per_chain = h["exp_minus_dH"].mean(0)
    mean, err = per_chain.mean(), per_chain.std(ddof=1) / math.sqrt(per_chain.size)
    assert 0.3 < h["accept_prob"].mean() < 0.95  # large enough ΔH for the test to bite
    assert abs(mean - 1) < 3 * err, (mean, err)


def test_equipartition_of_momenta_and_configurational_temperature() -> None:
    """After each HMC step the kept momenta are N(0, 1) per component, ⟨p²⟩ = 1; and the
    configurations satisfy ⟨|F|²⟩ = ⟨ΔS⟩ (integration by parts), which for 2D U(1) is
    ⟨Σ_l F_l²⟩ = 4β ⟨Σ_P cos θ_P⟩."""
    g = gen(4)
    beta, eps, n = 2.0, 0.25, 4
    links = U1.random(32, (8, 8), generator=g)
    links, _ = run_hmc(links, beta, eps, n, 20, g)
    p2, f2, cos = [], [], []
    for _ in range(60):
        p0 = U1.random_momenta(links, g)
        l1, p1 = hmc.leapfrog(links, p0, beta, eps, n)
        dh = hmc.hamiltonian(l1, p1, beta) - hmc.hamiltonian(links, p0, beta)
        acc = torch.rand(dh.shape, dtype=F64, generator=g) < torch.exp(-dh)
        m = acc[:, None, None, None]
        links = torch.where(m, l1, links)
        p_kept = torch.where(m, p1, p0)
        p2.append(p_kept.square().flatten(1).mean(1).numpy())
        f2.append(lattice.force(links, beta).square().flatten(1).sum(1).numpy())
        cos.append((4 * beta * lattice.plaquettes(links).flatten(1).sum(1)).numpy())
    p2 = np.stack(p2).mean(0)  # per chain
    assert abs(p2.mean() - 1) < 3 * p2.std(ddof=1) / math.sqrt(p2.size)
    ratio = np.stack(f2).mean(0) / np.stack(cos).mean(0)
    assert abs(ratio.mean() - 1) < 3 * ratio.std(ddof=1) / math.sqrt(ratio.size), ratio.mean()


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_u1_16x16_reproduces_exact_plaquette(beta: float) -> None:
    """⟨cos θ_P⟩ on 16×16 against the exact finite-volume value (equal to I₁/I₀ to 1e-16 here)
    within 3σ, σ including τ_int; ⟨Q²⟩ against its exact finite-volume value within 3σ."""
    g = gen(5 + int(beta))
    links = U1.random(32, (16, 16), generator=g)
    tuned = hmc.tune_step_size(links, beta, target=0.8, n_iter=30, n_check=0, generator=g)
    links, h = run_hmc(tuned.links, beta, tuned.eps, tuned.n_steps, 60, g)  # thermalise
    _, h = run_hmc(links, beta, tuned.eps, tuned.n_steps, 400, g)
    ref = exact.u1_plaquette(beta, 256)
    assert ref == pytest.approx(exact.u1_plaquette(beta), abs=1e-15)
    plaq = mean_error(h["plaquette"])
    assert abs(plaq.mean - ref) < 3 * plaq.err, (plaq, ref)
    assert plaq.err < 1e-3
    q2 = mean_error(np.round(h["charge"]) ** 2)
    assert abs(q2.mean - exact.u1_q2(beta, 256)) < 3 * q2.err, (q2, exact.u1_q2(beta, 256))


@pytest.mark.slow
def test_su3_strong_coupling_plaquette() -> None:
    """β = 0.5 on 4⁴ × 8 chains: ⟨P⟩ = β/18 + β²/216 = 0.029935; the neglected terms
    (-5β⁴/93312 ≈ -3·10⁻⁶ and O(u⁵)) are far below σ ≈ 2·10⁻⁴.  Tolerance: 3σ with τ_int;
    the O(β) term alone (0.027778) must be excluded at > 4σ."""
    beta = 0.5
    g = gen(9)
    links = SU3.random(8, (4, 4, 4, 4), generator=g)
    links, _ = run_hmc(links, beta, 1 / 3, 3, 10, g, measure_charge=False)
    _, h = run_hmc(links, beta, 1 / 3, 3, 300, g, measure_charge=False)
    assert h["accept_prob"].mean() > 0.7
    plaq = mean_error(h["plaquette"])
    ref = exact.su3_strong_coupling_plaquette(beta)
    assert abs(plaq.mean - ref) < 3 * plaq.err, (plaq, ref)
    assert abs(plaq.mean - beta / 18) > 4 * plaq.err


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
