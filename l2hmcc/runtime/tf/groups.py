"""Gauge groups U(1), SU(2), SU(3) behind one interface (TensorFlow mirror of ``pt/groups.py``).

Conventions (docs/contracts.md, identical in the PyTorch runtime):

* Shapes: ``B`` chains, ``D`` lattice dimensions, extents ``*L``.  Link direction μ lives on
  axis 1 of a link tensor and shifts axis ``2 + μ``.  U1 links are real angles ``[B, D, *L]``
  with real momenta of the same shape; SU(N) links are complex ``[B, D, *L, N, N]`` with real
  algebra components ``[B, D, *L, N²-1]``.
* Generators ``T_a = i λ_a / 2`` (Pauli for SU2, Gell-Mann for SU3, standard order):
  anti-Hermitian, ``tr(T_a T_b) = -½ δ_ab``; ``P = Σ_a p_a T_a``, ``p_a = -2 Re tr(T_a P)``.
  U(1): generator ``T = i``; the "matrix" of ``p`` is ``i p``.
* Kinetic energy ``K = ½ Σ p_a²`` per chain (``[B]``).
* Link update ``U ← exp(ε P) U`` (left); U(1): ``x ← wrap(x + ε p)``; angles in ``[-π, π)``.

``dtype`` arguments name the *real* precision (``tf.float32``/``tf.float64``, or the strings);
SU(N) links are then complex64/complex128 (a complex dtype is accepted and means the same).

The SU(N) exponential is the same algorithm as the PyTorch runtime's, written with elementwise
operations and small static loops: ``tf.linalg.expm`` has no XLA kernel for complex dtypes on
CPU, and this one compiles under ``tf.function(jit_compile=True)``.  Matrix products go through
``matmul``, which picks the fast formulation for eager/graph or XLA (see ``compile.py``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TypeAlias

import tensorflow as tf

from .compile import in_xla

__all__ = [
    "SU2",
    "SU3",
    "TWO_PI",
    "U1",
    "GaugeGroup",
    "SpecialUnitary",
    "U1Group",
    "complex_dtype",
    "dagger",
    "group_by_name",
    "group_of",
    "matmul",
    "real_dtype",
    "wrap",
]

TWO_PI = 2.0 * math.pi
_SQRT3 = math.sqrt(3.0)

Generator: TypeAlias = tf.random.Generator


def wrap(x: tf.Tensor) -> tf.Tensor:
    """Angles onto ``[-π, π)``: ``x - 2π floor((x + π) / 2π)`` (derivative 1 almost everywhere)."""
    return x - TWO_PI * tf.floor((x + math.pi) / TWO_PI)


def real_dtype(dtype: tf.DType | str) -> tf.DType:
    """The real dtype of the same precision (``complex128 → float64``, ``float32 → float32``)."""
    dtype = tf.as_dtype(dtype)
    if dtype.is_complex:
        return dtype.real_dtype
    if dtype.is_floating:
        return dtype
    raise TypeError(f"expected a floating or complex dtype, got {dtype.name}")


def complex_dtype(dtype: tf.DType | str) -> tf.DType:
    """The complex dtype of the same precision (``float64 → complex128``, ``float32 → complex64``)."""
    dtype = tf.as_dtype(dtype)
    if dtype in (tf.complex64, tf.complex128):
        return dtype
    if dtype == tf.float64:
        return tf.complex128
    if dtype == tf.float32:
        return tf.complex64
    raise TypeError(
        f"SU(N) links need float32/float64 (complex64/complex128) precision, got {dtype.name}"
    )


def dagger(m: tf.Tensor) -> tf.Tensor:
    """Hermitian conjugate over the last two axes."""
    return tf.linalg.adjoint(m)


def matmul(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Batched product of small matrices ``[..., N, N] @ [..., N, N]``.

    Under XLA on CPU a broadcast multiply-and-reduce: a complex ``dot`` is ~20× slower there
    (4.9 ms vs 0.22 ms for 8192 3×3 complex128 products).  Written entry by entry (N³ sliced
    multiplies) the SU(3) exponential runs 3× faster still, but its gradient took 368 s to
    compile instead of 83 s, so it is not used.  In eager and graph mode ``tf.linalg.matmul``
    is the fastest.
    """
    if not in_xla():
        return tf.linalg.matmul(a, b)
    return tf.reduce_sum(a[..., :, :, None] * b[..., None, :, :], axis=-2)


def _per_chain(eps: float | tf.Tensor, like: tf.Tensor) -> float | tf.Tensor:
    """Broadcast a step size: a float, a 0-d tensor, or one value per chain ``[B]``."""
    if isinstance(eps, tf.Tensor | tf.Variable) and eps.shape.rank == 1 and like.shape.rank > 1:
        return tf.reshape(eps, [-1] + [1] * (like.shape.rank - 1))
    return eps


def _gen(generator: Generator | None) -> Generator:
    return generator if generator is not None else tf.random.get_global_generator()


def _polar(phase: tf.Tensor) -> tf.Tensor:
    return tf.complex(tf.cos(phase), tf.sin(phase))


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
    def momentum_shape(self, links: tf.Tensor) -> tuple[int, ...]:
        """Shape of momenta (= forces = algebra components) for these links."""

    # -- configurations -------------------------------------------------------------------
    @abstractmethod
    def random(
        self,
        batch: int,
        shape: Sequence[int],
        *,
        dtype: tf.DType | str = tf.float64,
        generator: Generator | None = None,
    ) -> tf.Tensor:
        """Hot start: every link drawn independently from the Haar measure."""

    @abstractmethod
    def cold(
        self, batch: int, shape: Sequence[int], *, dtype: tf.DType | str = tf.float64
    ) -> tf.Tensor:
        """Cold start: every link the identity."""

    @abstractmethod
    def random_element(
        self,
        shape: Sequence[int],
        *,
        dtype: tf.DType | str = tf.float64,
        generator: Generator | None = None,
    ) -> tf.Tensor:
        """Haar-random group elements of batch shape ``shape`` (e.g. a gauge transformation)."""

    # -- algebra --------------------------------------------------------------------------
    @abstractmethod
    def algebra_matrix(self, p: tf.Tensor) -> tf.Tensor:
        """``P = Σ_a p_a T_a`` from components ``[..., n_gen]`` (U1: ``i p``, same shape)."""

    @abstractmethod
    def algebra_components(self, m: tf.Tensor) -> tf.Tensor:
        """``p_a = -2 Re tr(T_a M)``: components of the traceless anti-Hermitian part of ``M``
        (U1: ``Im M``)."""

    @abstractmethod
    def exp(self, p: tf.Tensor) -> tf.Tensor:
        """Group element ``exp(Σ_a p_a T_a)`` from algebra components (U1: the angle, wrapped)."""

    def exp_update(self, links: tf.Tensor, p: tf.Tensor, eps: float | tf.Tensor) -> tf.Tensor:
        """Link update ``U ← exp(ε P) U`` (U1: ``wrap(x + ε p)``); ``eps`` a float, a 0-d
        tensor, a per-chain ``[B]`` tensor or anything that broadcasts against ``p``."""
        return self.multiply(self.exp(_per_chain(eps, p) * p), links)

    @abstractmethod
    def multiply(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        """Group product ``a b`` (U1: wrapped sum of angles)."""

    @abstractmethod
    def inverse(self, a: tf.Tensor) -> tf.Tensor:
        """Group inverse (SU(N): ``a†``; U1: ``wrap(-a)``)."""

    @abstractmethod
    def project(self, links: tf.Tensor) -> tf.Tensor:
        """Map links that drifted by rounding back onto the group (a documented safeguard,
        never part of an update whose reversibility matters)."""

    # -- momenta --------------------------------------------------------------------------
    def random_momenta(self, like: tf.Tensor, generator: Generator | None = None) -> tf.Tensor:
        """Gaussian momenta ``p_a ~ N(0, 1)`` for the links ``like`` (real, ``momentum_shape``)."""
        return _gen(generator).normal(self.momentum_shape(like), dtype=real_dtype(like.dtype))

    def kinetic_energy(self, p: tf.Tensor) -> tf.Tensor:
        """``K = ½ Σ p_a²`` over everything but the batch axis; returns ``[B]``."""
        return 0.5 * tf.reduce_sum(tf.reshape(tf.square(p), [tf.shape(p)[0], -1]), axis=1)

    # -- gauge transformations ------------------------------------------------------------
    @abstractmethod
    def gauge_transform(self, links: tf.Tensor, omega: tf.Tensor) -> tf.Tensor:
        """``U_μ(x) → Ω(x) U_μ(x) Ω(x+μ̂)†`` with ``omega`` a site field ``[B, *L(, N, N)]``."""

    def __repr__(self) -> str:
        return self.name


def _check_shape(shape: Sequence[int]) -> None:
    if len(shape) < 2 or any(int(n) < 1 for n in shape):
        raise ValueError(f"lattice extents must be ≥ 1 in at least 2 dimensions, got {shape}")


class U1Group(GaugeGroup):
    """U(1): links are angles ``x ∈ [-π, π)``, ``U = e^{ix}``, one generator ``T = i``."""

    name = "U1"
    n_colors = 1
    n_generators = 1
    is_abelian = True

    def link_shape(self, batch: int, shape: Sequence[int]) -> tuple[int, ...]:
        return (batch, len(shape), *shape)

    def momentum_shape(self, links: tf.Tensor) -> tuple[int, ...]:
        return tuple(links.shape)

    def random_element(
        self,
        shape: Sequence[int],
        *,
        dtype: tf.DType | str = tf.float64,
        generator: Generator | None = None,
    ) -> tf.Tensor:
        u = _gen(generator).uniform(tuple(shape), dtype=real_dtype(dtype))
        return wrap(TWO_PI * u - math.pi)

    def random(
        self,
        batch: int,
        shape: Sequence[int],
        *,
        dtype: tf.DType | str = tf.float64,
        generator: Generator | None = None,
    ) -> tf.Tensor:
        _check_shape(shape)
        return self.random_element(self.link_shape(batch, shape), dtype=dtype, generator=generator)

    def cold(
        self, batch: int, shape: Sequence[int], *, dtype: tf.DType | str = tf.float64
    ) -> tf.Tensor:
        _check_shape(shape)
        return tf.zeros(self.link_shape(batch, shape), dtype=real_dtype(dtype))

    def algebra_matrix(self, p: tf.Tensor) -> tf.Tensor:
        return tf.complex(tf.zeros_like(p), p)

    def algebra_components(self, m: tf.Tensor) -> tf.Tensor:
        return tf.math.imag(m) if m.dtype.is_complex else tf.zeros_like(m)

    def exp(self, p: tf.Tensor) -> tf.Tensor:
        return wrap(p)

    def exp_update(self, links: tf.Tensor, p: tf.Tensor, eps: float | tf.Tensor) -> tf.Tensor:
        return wrap(links + _per_chain(eps, p) * p)

    def multiply(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return wrap(a + b)

    def inverse(self, a: tf.Tensor) -> tf.Tensor:
        return wrap(-a)

    def project(self, links: tf.Tensor) -> tf.Tensor:
        return wrap(links)

    def gauge_transform(self, links: tf.Tensor, omega: tf.Tensor) -> tf.Tensor:
        d = links.shape[1]
        out = [links[:, mu] + omega - tf.roll(omega, shift=-1, axis=1 + mu) for mu in range(d)]
        return wrap(tf.stack(out, axis=1))


class SpecialUnitary(GaugeGroup):
    """SU(N) for N = 2, 3: links are complex ``N×N`` matrices ``[B, D, *L, N, N]``.

    The exponential map is exact to rounding and polynomial in the algebra element (hence
    differentiable at every point, ``P = 0`` included); the algorithm is that of the PyTorch
    runtime, step for step:

    * SU(2): ``exp(X) = cos θ · 1 + (sin θ / θ) X`` with ``X² = -θ² 1``, ``sin θ/θ`` and
      ``cos θ`` as functions of ``θ²`` (Taylor below ``θ² = 10⁻²``).
    * SU(3): Cayley–Hamilton reduction ``Y³ = s Y + d 1`` (``s = ½ tr Y²``, ``d = det Y``) of
      the Taylor series of ``exp(Y)`` to ``f₀ 1 + f₁ Y + f₂ Y²`` (Horner, order ``EXP_ORDER``),
      ``Y = X / 2^EXP_SQUARINGS``, then ``EXP_SQUARINGS`` squarings written as
      ``(1 + E)² = 1 + (2E + E²)``.  Truncation below 10⁻¹⁶ for ``‖X‖₂ ≤ 16``.
    """

    EXP_ORDER = 18
    EXP_SQUARINGS = 4

    is_abelian = False

    def __init__(self, n: int) -> None:
        if n not in (2, 3):
            raise ValueError(f"SU(N) is implemented for N = 2, 3; got N = {n}")
        self.n_colors = n
        self.n_generators = n * n - 1
        self.name = f"SU{n}"

    def link_shape(self, batch: int, shape: Sequence[int]) -> tuple[int, ...]:
        n = self.n_colors
        return (batch, len(shape), *shape, n, n)

    def momentum_shape(self, links: tf.Tensor) -> tuple[int, ...]:
        return (*links.shape[:-2], self.n_generators)

    def random_element(
        self,
        shape: Sequence[int],
        *,
        dtype: tf.DType | str = tf.float64,
        generator: Generator | None = None,
    ) -> tf.Tensor:
        """Haar-random SU(N) matrices ``[*shape, N, N]``.

        SU(2): a uniform point on S³ (normalised Gaussian 4-vector) as ``a₀ + i a·σ``.
        SU(3): QR of a complex Gaussian matrix with the phases of R's diagonal moved into Q
        (Haar on U(3), Mezzadri 2007), divided by a cube root of its determinant (the phase
        depends only on det, which left multiplication by SU(3) preserves: Haar on SU(3)).
        """
        rdt = real_dtype(dtype)
        gen = _gen(generator)
        shape = tuple(shape)
        if self.n_colors == 2:
            a = gen.normal((*shape, 4), dtype=rdt)
            a = a / tf.norm(a, axis=-1, keepdims=True)
            return _su2_from_quaternion(a)
        # real and imaginary parts drawn separately: TF kernels take at most 8 dimensions
        scale = 1.0 / math.sqrt(2.0)
        z = tf.complex(gen.normal((*shape, 3, 3), dtype=rdt), gen.normal((*shape, 3, 3), dtype=rdt))
        z = z * tf.cast(scale, z.dtype)
        q, r = tf.linalg.qr(z)
        diag = tf.linalg.diag_part(r)
        q = q * (diag / tf.cast(tf.abs(diag), diag.dtype))[..., None, :]
        phase = tf.math.angle(tf.linalg.det(q)) / 3.0
        return q * _polar(-phase)[..., None, None]

    def random(
        self,
        batch: int,
        shape: Sequence[int],
        *,
        dtype: tf.DType | str = tf.float64,
        generator: Generator | None = None,
    ) -> tf.Tensor:
        _check_shape(shape)
        return self.random_element(
            self.link_shape(batch, shape)[:-2], dtype=dtype, generator=generator
        )

    def cold(
        self, batch: int, shape: Sequence[int], *, dtype: tf.DType | str = tf.float64
    ) -> tf.Tensor:
        _check_shape(shape)
        eye = tf.eye(self.n_colors, dtype=complex_dtype(dtype))
        return tf.broadcast_to(eye, self.link_shape(batch, shape))

    def algebra_matrix(self, p: tf.Tensor) -> tf.Tensor:
        """``P = Σ_a p_a iλ_a/2`` as a complex ``[..., N, N]`` matrix (traceless, anti-Hermitian)."""
        if p.shape[-1] != self.n_generators:
            raise ValueError(
                f"{self.name} algebra components need a last axis of {self.n_generators}, "
                f"got shape {tuple(p.shape)}"
            )
        zero = tf.zeros_like(p[..., 0])
        n = self.n_colors
        if n == 2:
            p1, p2, p3 = tf.unstack(p, axis=-1)
            h = 0.5
            re = tf.stack([zero, h * p2, -h * p2, zero], axis=-1)
            im = tf.stack([h * p3, h * p1, h * p1, -h * p3], axis=-1)
        else:
            p1, p2, p3, p4, p5, p6, p7, p8 = (0.5 * c for c in tf.unstack(p, axis=-1))
            p8 = p8 / _SQRT3
            re = tf.stack([zero, p2, p5, -p2, zero, p7, -p5, -p7, zero], axis=-1)
            im = tf.stack([p3 + p8, p1, p4, p1, p8 - p3, p6, p4, p6, -2.0 * p8], axis=-1)
        m = tf.complex(re, im)
        return tf.reshape(m, tf.concat([tf.shape(m)[:-1], [n, n]], axis=0))

    def algebra_components(self, m: tf.Tensor) -> tf.Tensor:
        """``p_a = Im tr(λ_a M) = -2 Re tr(T_a M)`` from a complex ``[..., N, N]`` matrix."""
        re, im = tf.math.real(m), tf.math.imag(m)
        if self.n_colors == 2:
            return tf.stack(
                [
                    im[..., 0, 1] + im[..., 1, 0],
                    re[..., 0, 1] - re[..., 1, 0],
                    im[..., 0, 0] - im[..., 1, 1],
                ],
                axis=-1,
            )
        return tf.stack(
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
            axis=-1,
        )

    def exp(self, p: tf.Tensor) -> tf.Tensor:
        """``exp(Σ_a p_a T_a)`` as ``[..., N, N]`` (see the class docstring for the method)."""
        if self.n_colors == 2:
            return _su2_exp(p)
        return _su3_exp(self.algebra_matrix(p), self.EXP_ORDER, self.EXP_SQUARINGS)

    def multiply(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return matmul(a, b)

    def inverse(self, a: tf.Tensor) -> tf.Tensor:
        return dagger(a)

    def project(self, links: tf.Tensor) -> tf.Tensor:
        """Nearest-to-rounding SU(N) matrix (a safeguard, not part of any update).

        SU(2): ``a = (U₀₀ + U₁₁*)/2``, ``b = (U₀₁ - U₁₀*)/2``, normalised to ``|a|²+|b|² = 1``.
        SU(3): Gram–Schmidt on the first two rows, third row ``(u × v)*`` (det = 1 exactly).
        """
        if self.n_colors == 2:
            a = 0.5 * (links[..., 0, 0] + tf.math.conj(links[..., 1, 1]))
            b = 0.5 * (links[..., 0, 1] - tf.math.conj(links[..., 1, 0]))
            norm = tf.sqrt(
                tf.math.real(a) ** 2
                + tf.math.imag(a) ** 2
                + tf.math.real(b) ** 2
                + tf.math.imag(b) ** 2
            )
            norm = tf.cast(norm, a.dtype)
            a, b = a / norm, b / norm
            m = tf.stack([a, b, -tf.math.conj(b), tf.math.conj(a)], axis=-1)
            return tf.reshape(m, tf.concat([tf.shape(m)[:-1], [2, 2]], axis=0))
        u = links[..., 0, :]
        v = links[..., 1, :]
        u = u / tf.cast(tf.norm(u, axis=-1, keepdims=True), u.dtype)
        v = v - tf.reduce_sum(tf.math.conj(u) * v, axis=-1, keepdims=True) * u
        v = v / tf.cast(tf.norm(v, axis=-1, keepdims=True), v.dtype)
        w = tf.math.conj(_cross(u, v))
        return tf.stack([u, v, w], axis=-2)

    def gauge_transform(self, links: tf.Tensor, omega: tf.Tensor) -> tf.Tensor:
        d = links.shape[1]
        out = [
            matmul(matmul(omega, links[:, mu]), dagger(tf.roll(omega, shift=-1, axis=1 + mu)))
            for mu in range(d)
        ]
        return tf.stack(out, axis=1)


def _su2_from_quaternion(a: tf.Tensor) -> tf.Tensor:
    """``a₀ 1 + i (a₁σ₁ + a₂σ₂ + a₃σ₃)`` as a complex ``[..., 2, 2]`` matrix."""
    a0, a1, a2, a3 = tf.unstack(a, axis=-1)
    re = tf.stack([a0, a2, -a2, a0], axis=-1)
    im = tf.stack([a3, a1, a1, -a3], axis=-1)
    m = tf.complex(re, im)
    return tf.reshape(m, tf.concat([tf.shape(m)[:-1], [2, 2]], axis=0))


def _horner(x: tf.Tensor, coeffs: Sequence[float]) -> tf.Tensor:
    """``Σ_k coeffs[k] x^k`` by Horner's rule."""
    out = tf.fill(tf.shape(x), tf.constant(coeffs[-1], dtype=x.dtype))
    for c in reversed(coeffs[:-1]):
        out = out * x + c
    return out


def _su2_exp(p: tf.Tensor) -> tf.Tensor:
    """``exp(i p·σ/2) = cos θ + i sin θ (p̂·σ)`` with ``θ = |p|/2``, smooth at ``p = 0``."""
    t2 = 0.25 * tf.reduce_sum(tf.square(p), axis=-1)  # θ²
    small = t2 < 1e-2
    # the closed form's argument is kept away from 0 so that neither branch has NaN gradients
    t = tf.sqrt(tf.where(small, tf.ones_like(t2), t2))
    cos_series = _horner(t2, [(-1) ** k / math.factorial(2 * k) for k in range(8)])
    sinc_series = _horner(t2, [(-1) ** k / math.factorial(2 * k + 1) for k in range(8)])
    cos_t = tf.where(small, cos_series, tf.cos(t))
    sinc_t = tf.where(small, sinc_series, tf.sin(t) / t)
    a = tf.concat([cos_t[..., None], 0.5 * sinc_t[..., None] * p], axis=-1)
    return _su2_from_quaternion(a)


def _det3(m: tf.Tensor) -> tf.Tensor:
    """Determinant of ``[..., 3, 3]`` by cofactors (elementwise)."""
    return (
        m[..., 0, 0] * (m[..., 1, 1] * m[..., 2, 2] - m[..., 1, 2] * m[..., 2, 1])
        - m[..., 0, 1] * (m[..., 1, 0] * m[..., 2, 2] - m[..., 1, 2] * m[..., 2, 0])
        + m[..., 0, 2] * (m[..., 1, 0] * m[..., 2, 1] - m[..., 1, 1] * m[..., 2, 0])
    )


def _cross(u: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
    u0, u1, u2 = tf.unstack(u, axis=-1)
    v0, v1, v2 = tf.unstack(v, axis=-1)
    return tf.stack([u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0], axis=-1)


def _su3_exp(x: tf.Tensor, order: int, squarings: int) -> tf.Tensor:
    """``exp(X)`` for traceless ``X`` ``[..., 3, 3]`` (Cayley–Hamilton Taylor, scaling and
    squaring); see ``pt/groups.py::_su3_exp`` for the derivation."""
    y = x * (0.5**squarings)
    y2 = matmul(y, y)
    s = 0.5 * (y2[..., 0, 0] + y2[..., 1, 1] + y2[..., 2, 2])
    d = _det3(y)
    alpha, beta, gamma = tf.ones_like(s), tf.zeros_like(s), tf.zeros_like(s)
    for n in range(order, 1, -1):
        inv = 1.0 / n
        alpha, beta, gamma = 1.0 + (gamma * d) * inv, (alpha + gamma * s) * inv, beta * inv
    alpha, beta, gamma = gamma * d, alpha + gamma * s, beta
    eye = tf.eye(3, dtype=x.dtype)
    e = alpha[..., None, None] * eye + beta[..., None, None] * y + gamma[..., None, None] * y2
    for _ in range(squarings):
        e = 2.0 * e + matmul(e, e)
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


def group_of(links: tf.Tensor) -> GaugeGroup:
    """The group of a link tensor: real → U1; complex ``[..., N, N]`` → SU(N)."""
    if not links.dtype.is_complex:
        return U1
    n = links.shape[-1]
    if links.shape.rank < 4 or links.shape[-2] != n or n not in (2, 3):
        raise ValueError(
            f"complex links must be [B, D, *L, N, N] with N = 2 or 3, got shape {tuple(links.shape)}"
        )
    return SU2 if n == 2 else SU3
