"""The lattice Laplacian's spectrum, framework-neutral (numpy): what the Fourier filter of
``network local { fourier }`` (``pt``/``tf`` ``LocalNet.kinetic``) divides by."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["lattice_laplacian"]


def lattice_laplacian(shape: Sequence[int]) -> NDArray[np.float64]:
    """``λ(k) = Σ_d 4 sin²(k_d/2)``, ``k_d = 2π n_d / L_d``, on the half spectrum of a real FFT
    over the lattice dimensions (the last one ``L // 2 + 1`` long); float64, dimensionless
    (lattice units)."""
    n_dim = len(shape)
    lap = np.zeros([*shape[:-1], shape[-1] // 2 + 1])
    for d, n in enumerate(shape):
        count = n // 2 + 1 if d == n_dim - 1 else n
        k = 2 * math.pi * np.arange(count) / n
        lap = lap + (4 * np.sin(k / 2) ** 2).reshape([-1 if j == d else 1 for j in range(n_dim)])
    return lap
