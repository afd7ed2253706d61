"""Gauge groups: generator conventions, exponential map, group membership, Haar measure."""

import math

import pytest
import torch

from l2hmcc.runtime.pt.groups import SU2, SU3, U1, complex_dtype, group_by_name, group_of, wrap

torch.set_num_threads(1)
F64 = torch.float64
NONABELIAN = [SU2, SU3]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def standard_generators(n: int) -> torch.Tensor:
    """Pauli / Gell-Mann matrices written out, independent of the code under test."""
    i = 1j
    if n == 2:
        lam = [[[0, 1], [1, 0]], [[0, -i], [i, 0]], [[1, 0], [0, -1]]]
    else:
        s = 1 / math.sqrt(3)
        lam = [
            [[0, 1, 0], [1, 0, 0], [0, 0, 0]],
            [[0, -i, 0], [i, 0, 0], [0, 0, 0]],
            [[1, 0, 0], [0, -1, 0], [0, 0, 0]],
            [[0, 0, 1], [0, 0, 0], [1, 0, 0]],
            [[0, 0, -i], [0, 0, 0], [i, 0, 0]],
            [[0, 0, 0], [0, 0, 1], [0, 1, 0]],
            [[0, 0, 0], [0, 0, -i], [0, i, 0]],
            [[s, 0, 0], [0, s, 0], [0, 0, -2 * s]],
        ]
    return torch.tensor(lam, dtype=torch.complex128)


@pytest.mark.parametrize("grp", NONABELIAN, ids=str)
def test_generators_are_i_lambda_over_two(grp) -> None:
    lam = standard_generators(grp.n_colors)
    t = grp.algebra_matrix(torch.eye(grp.n_generators, dtype=F64))
    torch.testing.assert_close(t, 0.5j * lam, rtol=0, atol=1e-15)
    gram = torch.einsum("aij,bji->ab", t, t)
    torch.testing.assert_close(gram, -0.5 * torch.eye(grp.n_generators, dtype=gram.dtype))


@pytest.mark.parametrize("grp", NONABELIAN, ids=str)
def test_algebra_components_round_trip_and_projection(grp) -> None:
    p = torch.randn(50, grp.n_generators, dtype=F64, generator=gen())
    torch.testing.assert_close(grp.algebra_components(grp.algebra_matrix(p)), p)
    # for a general matrix: components of its traceless anti-Hermitian part, -2 Re tr(T_a M)
    m = torch.randn(50, grp.n_colors, grp.n_colors, dtype=torch.complex128, generator=gen(1))
    t = grp.algebra_matrix(torch.eye(grp.n_generators, dtype=F64))
    expect = -2 * torch.einsum("aij,bji->ba", t, m).real
    torch.testing.assert_close(grp.algebra_components(m), expect)


@pytest.mark.parametrize("grp", NONABELIAN, ids=str)
@pytest.mark.parametrize("scale", [0.0, 1e-4, 0.1, 1.0, 3.0])
def test_exp_matches_matrix_exp(grp, scale: float) -> None:
    p = scale * torch.randn(500, grp.n_generators, dtype=F64, generator=gen(2))
    ref = torch.linalg.matrix_exp(grp.algebra_matrix(p))
    torch.testing.assert_close(grp.exp(p), ref, rtol=0, atol=2e-14)


@pytest.mark.parametrize("grp", NONABELIAN, ids=str)
def test_exp_is_twice_differentiable_with_exact_derivatives_at_zero(grp) -> None:
    """d²/dt_a dt_b Re tr(A exp(Σ t T)) at 0 is Re tr(A (T_a T_b + T_b T_a)/2), finite."""
    a = torch.randn(grp.n_colors, grp.n_colors, dtype=torch.complex128, generator=gen(3))
    t = grp.algebra_matrix(torch.eye(grp.n_generators, dtype=F64))

    def f(p: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,ji->", a, grp.exp(p)).real

    zero = torch.zeros(grp.n_generators, dtype=F64)
    grad = torch.autograd.functional.jacobian(f, zero)
    hess = torch.autograd.functional.hessian(f, zero)
    torch.testing.assert_close(grad, torch.einsum("ij,aji->a", a, t).real)
    sym = 0.5 * (torch.einsum("aij,bjk->abik", t, t) + torch.einsum("bij,ajk->abik", t, t))
    torch.testing.assert_close(hess, torch.einsum("ij,abji->ab", a, sym).real)


@pytest.mark.parametrize("grp", NONABELIAN, ids=str)
def test_group_membership_after_1000_updates(grp) -> None:
    g = gen(4)
    links = grp.random(2, (2, 2, 2, 2), generator=g)
    for _ in range(1000):
        links = grp.exp_update(links, grp.random_momenta(links, g), 0.3)
    eye = torch.eye(grp.n_colors, dtype=links.dtype)
    assert (links.mH @ links - eye).abs().max() < 1e-12
    assert (torch.linalg.det(links) - 1).abs().max() < 1e-12
    # and the safeguard projection is a no-op to rounding on such links
    assert (grp.project(links) - links).abs().max() < 1e-12


@pytest.mark.parametrize("grp", NONABELIAN, ids=str)
def test_project_restores_the_group(grp) -> None:
    links = grp.random(1, (2, 2, 2, 2), generator=gen(5))
    noisy = links + 1e-3 * torch.randn(links.shape, dtype=links.dtype, generator=gen(6))
    fixed = grp.project(noisy)
    eye = torch.eye(grp.n_colors, dtype=links.dtype)
    assert (fixed.mH @ fixed - eye).abs().max() < 1e-14
    assert (torch.linalg.det(fixed) - 1).abs().max() < 1e-14
    assert (fixed - links).abs().max() < 1e-2


@pytest.mark.parametrize("grp", NONABELIAN, ids=str)
def test_haar_moments(grp) -> None:
    """Haar SU(N): ⟨tr U⟩ = 0, ⟨|tr U|²⟩ = 1, ⟨|tr U|⁴⟩ = 2; SU(3): ⟨(tr U)³⟩ = 1."""
    u = grp.random_element((40000,), generator=gen(7))
    tr = torch.diagonal(u, dim1=-2, dim2=-1).sum(-1)
    n = u.shape[0]
    assert tr.mean().abs() < 5 / math.sqrt(n)
    assert abs(tr.abs().square().mean().item() - 1) < 5 * 1.0 / math.sqrt(n)
    assert abs(tr.abs().pow(4).mean().item() - 2) < 5 * 4.5 / math.sqrt(n)
    if grp is SU3:
        assert abs(tr.pow(3).mean() - 1) < 5 * 2.5 / math.sqrt(n)
    eye = torch.eye(grp.n_colors, dtype=u.dtype)
    assert (u.mH @ u - eye).abs().max() < 1e-13
    assert (torch.linalg.det(u) - 1).abs().max() < 1e-13


def test_u1_basics() -> None:
    x = U1.random(3, (4, 5), generator=gen(8))
    assert x.shape == (3, 2, 4, 5) and x.dtype == F64
    assert x.min() >= -math.pi and x.max() < math.pi
    assert U1.cold(2, (3, 3, 3)).abs().max() == 0
    p = U1.random_momenta(x, gen(9))
    torch.testing.assert_close(U1.exp_update(x, p, 0.1), wrap(x + 0.1 * p))
    w = wrap(torch.tensor([math.pi, -math.pi, 3 * math.pi, 0.5], dtype=F64))
    torch.testing.assert_close(w, torch.tensor([-math.pi, -math.pi, -math.pi, 0.5], dtype=F64))
    torch.testing.assert_close(U1.algebra_components(U1.algebra_matrix(p)), p)
    torch.testing.assert_close(U1.kinetic_energy(p), 0.5 * p.square().sum((1, 2, 3)))


@pytest.mark.parametrize("grp", [U1, SU2, SU3], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_dtypes(grp, dtype) -> None:
    links = grp.random(2, (3, 4), dtype=dtype, generator=gen(10))
    expect = (2, 2, 3, 4) if grp is U1 else (2, 2, 3, 4, grp.n_colors, grp.n_colors)
    assert links.shape == expect
    assert links.dtype == (dtype if grp is U1 else complex_dtype(dtype))
    p = grp.random_momenta(links, gen(11))
    assert p.dtype == dtype and p.shape == grp.momentum_shape(links)
    assert grp.exp_update(links, p, 0.1).dtype == links.dtype
    assert group_of(links) is grp
    cold = grp.cold(2, (3, 4), dtype=dtype)
    assert cold.dtype == links.dtype
    if grp is not U1:
        eye = torch.eye(grp.n_colors, dtype=cold.dtype)
        assert torch.equal(cold, eye.expand_as(cold))


def test_per_chain_step_size() -> None:
    links = SU3.random(3, (2, 2), generator=gen(12))
    p = SU3.random_momenta(links, gen(13))
    eps = torch.tensor([0.1, 0.2, 0.3], dtype=F64)
    out = SU3.exp_update(links, p, eps)
    for b in range(3):
        torch.testing.assert_close(
            out[b], SU3.exp_update(links[b : b + 1], p[b : b + 1], float(eps[b]))[0]
        )


def test_kinetic_energy_and_momenta_equipartition() -> None:
    links = SU3.random(4, (4, 4), generator=gen(14))
    p = SU3.random_momenta(links, gen(15))
    n = p[0].numel()
    # ⟨p_a²⟩ = 1 per component: K per chain has mean n/2 and variance n/2
    k = SU3.kinetic_energy(p)
    assert k.shape == (4,)
    assert ((k - n / 2).abs() < 5 * math.sqrt(n / 2)).all()
    assert abs(p.square().mean().item() - 1) < 5 * math.sqrt(2 / p.numel())


def test_lookup_by_name() -> None:
    assert (
        group_by_name("su(3)") is SU3 and group_by_name("U1") is U1 and group_by_name("SU_2") is SU2
    )
    with pytest.raises(ValueError, match="unknown gauge group"):
        group_by_name("SU4")
    with pytest.raises(ValueError):
        group_of(torch.zeros(2, 2, 4, 4, dtype=torch.complex128))
