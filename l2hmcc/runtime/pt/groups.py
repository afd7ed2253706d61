"""Gauge groups U(1), SU(2), SU(3) behind one interface.

Conventions (docs/contracts.md, identical in the TensorFlow runtime):

* Shapes: ``B`` chains, ``D`` lattice dimensions, extents ``*L``.  Link direction μ lives on
  axis 1 of a link tensor and shifts axis ``2 + μ``.

  ======  =================================  ====================================
  group   links                              momenta / forces (algebra components)
  ======  =================================  ====================================
  U1      real angles ``[B, D, *L]``         real ``[B, D, *L]``
  SU(N)   complex ``[B, D, *L, N, N]``       real ``[B, D, *L, N²-1]``
  ======  =================================  ====================================

* Generators ``T_a = i λ_a / 2`` with λ the Pauli (SU2) or Gell-Mann (SU3) matrices in their
  standard order: anti-Hermitian, ``tr(T_a T_b) = -½ δ_ab``.  An algebra element is
  ``P = Σ_a p_a T_a`` and its components are recovered as ``p_a = -2 tr(T_a P)``.
  U(1): the algebra is ``iℝ`` with generator ``T = i``; the "matrix" of ``p`` is ``i p``.
* Kinetic energy ``K = ½ Σ p_a²`` summed over links and components, per chain (``[B]``).
* Link update ``U ← exp(ε P) U`` (left multiplication); U(1): ``x ← wrap(x + ε p)``.
* Angles live in ``[-π, π)``: ``wrap(x) = x - 2π floor((x + π) / 2π)``.

``dtype`` arguments name the *real* precision (``torch.float32`` or ``torch.float64``); SU(N)
links are then ``complex64`` or ``complex128``.  A complex dtype is accepted too and means the
same precision.  Everything is vectorised over the batch and the lattice, differentiable to any
order (polynomials, ``sin``/``cos``, ``sqrt`` away from zero), and written with elementwise
operations and small static loops so that ``torch.compile`` can trace it without graph breaks.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "SU2",
    "SU3",
    "U1",
    "GaugeGroup",
    "SpecialUnitary",
    "U1Group",
    "complex_dtype",
    "dagger",
    "group_by_name",
    "group_of",
    "real_dtype",
    "wrap",
]

TWO_PI = 2.0 * math.pi
_SQRT3 = math.sqrt(3.0)


def wrap(x: Tensor) -> Tensor:
    """Angles onto ``[-π, π)``: ``x - 2π floor((x + π) / 2π)`` (derivative 1 almost everywhere)."""
    return x - TWO_PI * torch.floor((x + math.pi) / TWO_PI)


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype of the same precision (``complex128 → float64``, ``float32 → float32``)."""
    if dtype == torch.complex128:
        return torch.float64
    if dtype == torch.complex64:
        return torch.float32
    if dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        return dtype
    raise TypeError(f"expected a floating or complex dtype, got {dtype}")


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype of the same precision (``float64 → complex128``, ``float32 → complex64``)."""
    if dtype in (torch.complex64, torch.complex128):
        return dtype
    if dtype == torch.float64:
        return torch.complex128
    if dtype == torch.float32:
        return torch.complex64
    raise TypeError(
        f"SU(N) links need float32/float64 (complex64/complex128) precision, got {dtype}"
    )


def dagger(m: Tensor) -> Tensor:
    """Hermitian conjugate over the last two axes."""
    return m.conj().transpose(-1, -2)


def _per_chain(eps: float | Tensor, like: Tensor) -> float | Tensor:
    """Broadcast a step size: a float, a 0-d tensor, or one value per chain ``[B]``."""
    if isinstance(eps, Tensor) and eps.dim() == 1 and like.dim() > 1:
        return eps.reshape((-1,) + (1,) * (like.dim() - 1))
    return eps


class GaugeGroup(ABC):
    """Interface of a gauge group as the lattice code uses it.

    Attributes: ``name`` (``"U1"``, ``"SU2"``, ``"SU3"``), ``n_colors`` (N; 1 for U(1)),
    ``n_generators`` (1 or N²-1), ``is_abelian``.
    """

    name: str
    n_colors: int
    n_generators: int
    is_abelian: bool

    # -- shapes ---------------------------------------------------------------------------
    @abstractmethod
    def link_shape(self, batch: int, shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of a link tensor for ``batch`` chains on a lattice of extents ``shape``."""

    @abstractmethod
    def momentum_shape(self, links: Tensor) -> tuple[int, ...]:
        """Shape of momenta (= forces = algebra components) for these links."""

    # -- configurations -------------------------------------------------------------------
    @abstractmethod
    def random(
        self,
        batch: int,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Hot start: every link drawn independently from the Haar measure."""

    @abstractmethod
    def cold(
        self,
        batch: int,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Cold start: every link the identity."""

    @abstractmethod
    def random_element(
        self,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Haar-random group elements of batch shape ``shape`` (e.g. a gauge transformation)."""

    # -- algebra --------------------------------------------------------------------------
    @abstractmethod
    def algebra_matrix(self, p: Tensor) -> Tensor:
        """``P = Σ_a p_a T_a`` from components ``[..., n_gen]`` (U1: ``i p``, same shape)."""

    @abstractmethod
    def algebra_components(self, m: Tensor) -> Tensor:
        """``p_a = -2 Re tr(T_a M)``: components of the traceless anti-Hermitian part of ``M``.

        Exact inverse of ``algebra_matrix`` on the algebra; for a general matrix it returns the
        components of ``Π(M) = (M - M†)/2 - tr(M - M†)/(2N)`` (U1: ``Im M``).
        """

    @abstractmethod
    def exp(self, p: Tensor) -> Tensor:
        """Group element ``exp(Σ_a p_a T_a)`` from algebra components (U1: the angle, wrapped)."""

    def exp_update(self, links: Tensor, p: Tensor, eps: float | Tensor) -> Tensor:
        """Link update ``U ← exp(ε P) U`` (U1: ``wrap(x + ε p)``).

        ``eps`` is a float, a 0-d tensor, a per-chain tensor ``[B]`` or anything that
        broadcasts against ``p``.
        """
        return self.multiply(self.exp(_per_chain(eps, p) * p), links)

    @abstractmethod
    def multiply(self, a: Tensor, b: Tensor) -> Tensor:
        """Group product ``a b`` (U1: wrapped sum of angles)."""

    @abstractmethod
    def inverse(self, a: Tensor) -> Tensor:
        """Group inverse (SU(N): ``a†``; U1: ``wrap(-a)``)."""

    @abstractmethod
    def project(self, links: Tensor) -> Tensor:
        """Map links that drifted by rounding back onto the group (a documented safeguard).

        Exact updates keep links in the group to rounding; call this every few hundred updates
        at most, never as part of an update whose reversibility matters.
        """

    # -- momenta --------------------------------------------------------------------------
    def random_momenta(self, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Gaussian momenta ``p_a ~ N(0, 1)`` for the links ``like`` (real, ``momentum_shape``)."""
        return torch.randn(
            self.momentum_shape(like),
            dtype=real_dtype(like.dtype),
            device=like.device,
            generator=generator,
        )

    def kinetic_energy(self, p: Tensor) -> Tensor:
        """``K = ½ Σ p_a²`` over everything but the batch axis; returns ``[B]``."""
        return 0.5 * p.square().flatten(1).sum(1)

    # -- gauge transformations (used by tests and by smoothing diagnostics) -----------------
    @abstractmethod
    def gauge_transform(self, links: Tensor, omega: Tensor) -> Tensor:
        """``U_μ(x) → Ω(x) U_μ(x) Ω(x+μ̂)†`` with ``omega`` a site field ``[B, *L(, N, N)]``."""

    def __repr__(self) -> str:
        return self.name


class U1Group(GaugeGroup):
    """U(1): links are angles ``x ∈ [-π, π)``, ``U = e^{ix}``, one generator ``T = i``."""

    name = "U1"
    n_colors = 1
    n_generators = 1
    is_abelian = True

    def link_shape(self, batch: int, shape: Sequence[int]) -> tuple[int, ...]:
        return (batch, len(shape), *shape)

    def momentum_shape(self, links: Tensor) -> tuple[int, ...]:
        return tuple(links.shape)

    def random_element(
        self,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        u = torch.rand(tuple(shape), dtype=real_dtype(dtype), device=device, generator=generator)
        return wrap(TWO_PI * u - math.pi)

    def random(
        self,
        batch: int,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        _check_shape(shape)
        return self.random_element(
            self.link_shape(batch, shape), dtype=dtype, device=device, generator=generator
        )

    def cold(
        self,
        batch: int,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> Tensor:
        _check_shape(shape)
        return torch.zeros(self.link_shape(batch, shape), dtype=real_dtype(dtype), device=device)

    def algebra_matrix(self, p: Tensor) -> Tensor:
        return torch.complex(torch.zeros_like(p), p)

    def algebra_components(self, m: Tensor) -> Tensor:
        return m.imag if m.is_complex() else torch.zeros_like(m)

    def exp(self, p: Tensor) -> Tensor:
        return wrap(p)

    def exp_update(self, links: Tensor, p: Tensor, eps: float | Tensor) -> Tensor:
        return wrap(links + _per_chain(eps, p) * p)

    def multiply(self, a: Tensor, b: Tensor) -> Tensor:
        return wrap(a + b)

    def inverse(self, a: Tensor) -> Tensor:
        return wrap(-a)

    def project(self, links: Tensor) -> Tensor:
        return wrap(links)

    def gauge_transform(self, links: Tensor, omega: Tensor) -> Tensor:
        d = links.shape[1]
        out = [links[:, mu] + omega - torch.roll(omega, shifts=-1, dims=1 + mu) for mu in range(d)]
        return wrap(torch.stack(out, dim=1))


class SpecialUnitary(GaugeGroup):
    """SU(N) for N = 2, 3: links are complex ``N×N`` matrices ``[B, D, *L, N, N]``.

    The exponential map is exact to rounding and polynomial in the algebra element, hence
    differentiable to any order at every point (including ``P = 0``):

    * SU(2): ``exp(X) = cos θ · 1 + (sin θ / θ) X`` with ``X² = -θ² 1``; ``sin θ / θ`` and
      ``cos θ`` are evaluated as functions of ``θ²`` (Taylor series below ``θ² = 10⁻²``,
      closed form above, with the argument of the unused branch kept finite).
    * SU(3): Cayley–Hamilton reduction ``Y³ = s Y + d 1`` (``s = ½ tr Y²``, ``d = det Y`` for
      traceless ``Y``) turns the Taylor series of ``exp(Y)`` into ``f₀ 1 + f₁ Y + f₂ Y²`` whose
      scalar coefficients come from a Horner recursion of order ``EXP_ORDER``; with
      ``Y = X / 2^EXP_SQUARINGS`` the result is squared ``EXP_SQUARINGS`` times.  The truncation
      error is below ``2^k ‖Y‖^{m+1}/(m+1)!``: about 10⁻¹⁶ for ``‖X‖₂ ≤ 16`` (the spectral norm
      of ``ε P`` is at most ``ε |p| / √3``), 3·10⁻¹³ at ``‖X‖₂ = 24``.  Rounding errors scale
      with ``‖X‖`` (measured: unitarity to 2·10⁻¹⁴ after 1000 updates of ``ε = 0.2`` in fp64).
    """

    #: SU(3) exponential: Taylor order of the reduced series and number of squarings.
    EXP_ORDER = 18
    EXP_SQUARINGS = 4

    is_abelian = False

    def __init__(self, n: int) -> None:
        if n not in (2, 3):
            raise ValueError(f"SU(N) is implemented for N = 2, 3; got N = {n}")
        self.n_colors = n
        self.n_generators = n * n - 1
        self.name = f"SU{n}"

    # -- shapes ---------------------------------------------------------------------------
    def link_shape(self, batch: int, shape: Sequence[int]) -> tuple[int, ...]:
        n = self.n_colors
        return (batch, len(shape), *shape, n, n)

    def momentum_shape(self, links: Tensor) -> tuple[int, ...]:
        return (*links.shape[:-2], self.n_generators)

    # -- configurations -------------------------------------------------------------------
    def random_element(
        self,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Haar-random SU(N) matrices ``[*shape, N, N]``.

        SU(2): a uniform point on S³ (normalised Gaussian 4-vector) as ``a₀ + i a·σ``.
        SU(3): QR of a complex Gaussian matrix with the phases of R's diagonal moved into Q
        (Haar on U(3), Mezzadri 2007), then divided by a cube root of its determinant; the
        phase depends only on the determinant, which left multiplication by SU(3) preserves,
        so the result is Haar on SU(3).
        """
        cdtype = complex_dtype(dtype)
        rdtype = real_dtype(cdtype)
        shape = tuple(shape)
        if self.n_colors == 2:
            a = torch.randn((*shape, 4), dtype=rdtype, device=device, generator=generator)
            a = a / a.norm(dim=-1, keepdim=True)
            return _su2_from_quaternion(a)
        z = torch.randn((*shape, 3, 3, 2), dtype=rdtype, device=device, generator=generator)
        z = torch.view_as_complex(z) / math.sqrt(2.0)
        q: Tensor  # torch.linalg.qr is untyped
        r: Tensor
        q, r = torch.linalg.qr(z)
        diag = torch.diagonal(r, dim1=-2, dim2=-1)
        q = q * (diag / diag.abs()).unsqueeze(-2)
        phase = torch.angle(torch.linalg.det(q)) / 3.0
        return q * torch.polar(torch.ones_like(phase), -phase)[..., None, None]

    def random(
        self,
        batch: int,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        _check_shape(shape)
        return self.random_element(
            self.link_shape(batch, shape)[:-2], dtype=dtype, device=device, generator=generator
        )

    def cold(
        self,
        batch: int,
        shape: Sequence[int],
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> Tensor:
        _check_shape(shape)
        eye = torch.eye(self.n_colors, dtype=complex_dtype(dtype), device=device)
        return eye.expand(self.link_shape(batch, shape)).clone()

    # -- algebra --------------------------------------------------------------------------
    def algebra_matrix(self, p: Tensor) -> Tensor:
        """``P = Σ_a p_a iλ_a/2`` as a complex ``[..., N, N]`` matrix (traceless, anti-Hermitian)."""
        if p.shape[-1] != self.n_generators:
            raise ValueError(
                f"{self.name} algebra components need a last axis of {self.n_generators}, "
                f"got shape {tuple(p.shape)}"
            )
        re, im = self.algebra_re_im(p)
        return torch.complex(re, im)

    def algebra_re_im(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """Real and imaginary parts ``[..., N, N]`` of ``algebra_matrix(p)`` (real arithmetic)."""
        zero = torch.zeros_like(p[..., 0])
        if self.n_colors == 2:
            p1, p2, p3 = p.unbind(-1)
            h = 0.5
            re = torch.stack([zero, h * p2, -h * p2, zero], dim=-1)
            im = torch.stack([h * p3, h * p1, h * p1, -h * p3], dim=-1)
            return torch.unflatten(re, -1, (2, 2)), torch.unflatten(im, -1, (2, 2))
        p1, p2, p3, p4, p5, p6, p7, p8 = (0.5 * c for c in p.unbind(-1))
        p8 = p8 / _SQRT3
        re = torch.stack([zero, p2, p5, -p2, zero, p7, -p5, -p7, zero], dim=-1)
        im = torch.stack([p3 + p8, p1, p4, p1, p8 - p3, p6, p4, p6, -2.0 * p8], dim=-1)
        return torch.unflatten(re, -1, (3, 3)), torch.unflatten(im, -1, (3, 3))

    def algebra_components(self, m: Tensor) -> Tensor:
        """``p_a = Im tr(λ_a M) = -2 Re tr(T_a M)`` from a complex ``[..., N, N]`` matrix."""
        return self.components_from_re_im(m.real, m.imag)

    def components_from_re_im(self, re: Tensor, im: Tensor) -> Tensor:
        """``algebra_components`` of the matrix with real part ``re`` and imaginary part ``im``."""
        if self.n_colors == 2:
            return torch.stack(
                [
                    im[..., 0, 1] + im[..., 1, 0],
                    re[..., 0, 1] - re[..., 1, 0],
                    im[..., 0, 0] - im[..., 1, 1],
                ],
                dim=-1,
            )
        return torch.stack(
            [
                im[..., 0, 1] + im[..., 1, 0],
                re[..., 0, 1] - re[..., 1, 0],
                im[..., 0, 0] - im[..., 1, 1],
                im[..., 0, 2] + im[..., 2, 0],
                re[..., 0, 2] - re[..., 2, 0],
                im[..., 1, 2] + im[..., 2, 1],
                re[..., 1, 2] - re[..., 2, 1],
                (im[..., 0, 0] + im[..., 1, 1] - 2.0 * im[..., 2, 2]) / _SQRT3,
            ],
            dim=-1,
        )

    def exp(self, p: Tensor) -> Tensor:
        """``exp(Σ_a p_a T_a)`` as ``[..., N, N]`` (see the class docstring for the method)."""
        if self.n_colors == 2:
            return _su2_exp(p)
        return _su3_exp(self.algebra_matrix(p), self.EXP_ORDER, self.EXP_SQUARINGS)

    def multiply(self, a: Tensor, b: Tensor) -> Tensor:
        return a @ b

    def inverse(self, a: Tensor) -> Tensor:
        return dagger(a)

    def project(self, links: Tensor) -> Tensor:
        """Nearest-to-rounding SU(N) matrix (a safeguard, not part of any update).

        SU(2): ``a = (U₀₀ + U₁₁*)/2``, ``b = (U₀₁ - U₁₀*)/2``, normalised to ``|a|²+|b|² = 1``.
        SU(3): Gram–Schmidt on the first two rows, third row ``(u × v)*`` (det = 1 exactly).
        """
        if self.n_colors == 2:
            a = 0.5 * (links[..., 0, 0] + links[..., 1, 1].conj())
            b = 0.5 * (links[..., 0, 1] - links[..., 1, 0].conj())
            norm = torch.sqrt(a.real**2 + a.imag**2 + b.real**2 + b.imag**2)
            a, b = a / norm, b / norm
            return torch.unflatten(torch.stack([a, b, -b.conj(), a.conj()], dim=-1), -1, (2, 2))
        u = links[..., 0, :]
        v = links[..., 1, :]
        u = u / torch.linalg.vector_norm(u, dim=-1, keepdim=True)
        v = v - (u.conj() * v).sum(-1, keepdim=True) * u
        v = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        w = _cross(u, v).conj()
        return torch.stack([u, v, w], dim=-2)

    def gauge_transform(self, links: Tensor, omega: Tensor) -> Tensor:
        d = links.shape[1]
        out = [
            omega @ links[:, mu] @ dagger(torch.roll(omega, shifts=-1, dims=1 + mu))
            for mu in range(d)
        ]
        return torch.stack(out, dim=1)


def _check_shape(shape: Sequence[int]) -> None:
    if len(shape) < 2 or any(int(n) < 1 for n in shape):
        raise ValueError(f"lattice extents must be ≥ 1 in at least 2 dimensions, got {shape}")


def _su2_from_quaternion(a: Tensor) -> Tensor:
    """``a₀ 1 + i (a₁σ₁ + a₂σ₂ + a₃σ₃)`` as a complex ``[..., 2, 2]`` matrix."""
    a0, a1, a2, a3 = a.unbind(-1)
    re = torch.stack([a0, a2, -a2, a0], dim=-1)
    im = torch.stack([a3, a1, a1, -a3], dim=-1)
    return torch.unflatten(torch.complex(re, im), -1, (2, 2))


def _su2_exp(p: Tensor) -> Tensor:
    """``exp(i p·σ/2) = cos θ + i sin θ (p̂·σ)`` with ``θ = |p|/2``, smooth at ``p = 0``."""
    return _su2_from_quaternion(_su2_quaternion(p))


def _su2_quaternion(p: Tensor) -> Tensor:
    """Unit quaternion ``(cos θ, sin θ p̂)`` of ``exp(i p·σ/2)``, ``θ = |p|/2``: ``[..., 4]``."""
    t2 = 0.25 * p.square().sum(-1)  # θ²
    small = t2 < 1e-2
    # Keep the closed form's argument away from 0 so that neither branch produces NaN
    # gradients (torch.where differentiates both).
    t = torch.sqrt(torch.where(small, torch.ones_like(t2), t2))
    # Taylor series in θ² to θ¹⁴: truncation < (10⁻²)⁸/16! ≈ 5·10⁻³⁰.
    cos_series = _horner(t2, [(-1) ** k / math.factorial(2 * k) for k in range(8)])
    sinc_series = _horner(t2, [(-1) ** k / math.factorial(2 * k + 1) for k in range(8)])
    cos_t = torch.where(small, cos_series, torch.cos(t))
    sinc_t = torch.where(small, sinc_series, torch.sin(t) / t)
    return torch.cat([cos_t.unsqueeze(-1), 0.5 * sinc_t.unsqueeze(-1) * p], dim=-1)


def _horner(x: Tensor, coeffs: Sequence[float]) -> Tensor:
    """``Σ_k coeffs[k] x^k`` by Horner's rule."""
    out = torch.full_like(x, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        out = out * x + c
    return out


def _det3(m: Tensor) -> Tensor:
    """Determinant of ``[..., 3, 3]`` by cofactors (elementwise, compile friendly)."""
    return (
        m[..., 0, 0] * (m[..., 1, 1] * m[..., 2, 2] - m[..., 1, 2] * m[..., 2, 1])
        - m[..., 0, 1] * (m[..., 1, 0] * m[..., 2, 2] - m[..., 1, 2] * m[..., 2, 0])
        + m[..., 0, 2] * (m[..., 1, 0] * m[..., 2, 1] - m[..., 1, 1] * m[..., 2, 0])
    )


def _cross(u: Tensor, v: Tensor) -> Tensor:
    u0, u1, u2 = u.unbind(-1)
    v0, v1, v2 = v.unbind(-1)
    return torch.stack([u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0], dim=-1)


def _su3_exp_coefficients(
    s: Tensor, delta: Tensor, order: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Real and imaginary parts of ``(α, β, γ)`` with ``exp(Y) - 1 = α 1 + β Y + γ Y²``.

    ``s = ½ tr Y²`` and ``δ = Im det Y`` (real tensors); Taylor order ``order`` (see
    ``_su3_exp``).
    """
    ar, ai = torch.ones_like(s), torch.zeros_like(s)
    br, bi = torch.zeros_like(s), torch.zeros_like(s)
    cr, ci = torch.zeros_like(s), torch.zeros_like(s)
    for n in range(order, 1, -1):
        inv = 1.0 / n
        # α' = 1 + γ d / n,  β' = (α + γ s) / n,  γ' = β / n   with γ d = (-c_i δ) + i (c_r δ)
        ar, ai, br, bi, cr, ci = (
            (ci * delta) * (-inv) + 1.0,
            (cr * delta) * inv,
            (ar + cr * s) * inv,
            (ai + ci * s) * inv,
            br * inv,
            bi * inv,
        )
    # last step (n = 1), written for exp(Y) - 1 = (γ d) 1 + (α + γ s) Y + β Y²
    return -ci * delta, cr * delta, ar + cr * s, ai + ci * s, br, bi


def _su3_exp(x: Tensor, order: int, squarings: int) -> Tensor:
    """``exp(X)`` for traceless anti-Hermitian ``X`` ``[..., 3, 3]`` (Cayley–Hamilton Taylor).

    With ``Y = X / 2^k``, ``s = ½ tr Y²`` (real) and ``d = det Y = iδ`` (imaginary),
    Cayley–Hamilton gives ``Y³ = s Y + d 1``, so
    ``Y (α 1 + β Y + γ Y²) = γ d 1 + (α + γ s) Y + β Y²``.  Horner's rule ``E_m = 1``,
    ``E_n = 1 + (Y/n) E_{n+1}`` on the coefficient triple (complex numbers, carried as real and
    imaginary parts: real arithmetic is several times faster than complex on CPU) yields
    ``Σ_{n≤m} Yⁿ/n! = α 1 + β Y + γ Y²``; then ``exp(X) = (exp Y)^(2^k)``, squared in the form
    ``(1 + E)² = 1 + (2E + E²)`` so that rounding errors scale with ``‖X‖``, not with 1.
    """
    y = x * (0.5**squarings)
    y2 = y @ y
    # .real/.imag are strided views; contiguous copies keep the recursion's loops vectorised
    s = (0.5 * (y2[..., 0, 0] + y2[..., 1, 1] + y2[..., 2, 2]).real).contiguous()
    delta = _det3(y).imag.contiguous()
    ar, ai, br, bi, cr, ci = _su3_exp_coefficients(s, delta, order)
    alpha = torch.complex(ar, ai)[..., None, None]
    beta = torch.complex(br, bi)[..., None, None]
    gamma = torch.complex(cr, ci)[..., None, None]
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    e = alpha * eye + beta * y + gamma * y2
    for _ in range(squarings):
        e = e @ e + e * 2.0
    return e + eye


U1: GaugeGroup = U1Group()
SU2: GaugeGroup = SpecialUnitary(2)
SU3: GaugeGroup = SpecialUnitary(3)

_GROUPS: dict[str, GaugeGroup] = {"U1": U1, "SU2": SU2, "SU3": SU3}


def group_by_name(name: str) -> GaugeGroup:
    """``"U1"``, ``"SU2"`` or ``"SU3"`` (case-insensitive, ``"U(1)"``/``"SU(3)"`` accepted)."""
    key = name.upper().replace("(", "").replace(")", "").replace("_", "")
    try:
        return _GROUPS[key]
    except KeyError:
        raise ValueError(f"unknown gauge group {name!r}; expected one of U1, SU2, SU3") from None


def group_of(links: Tensor) -> GaugeGroup:
    """The group of a link tensor: real → U1; complex ``[..., N, N]`` → SU(N)."""
    if not links.is_complex():
        return U1
    n = links.shape[-1]
    if links.dim() < 4 or links.shape[-2] != n or n not in (2, 3):
        raise ValueError(
            f"complex links must be [B, D, *L, N, N] with N = 2 or 3, got shape {tuple(links.shape)}"
        )
    return SU2 if n == 2 else SU3
