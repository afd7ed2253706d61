"""The generalized leapfrog of L2HMC (Levy et al. 2018; Foreman, Jin, Osborn 2021) for lattice
gauge fields: exact inverse layers, log-Jacobians, the merged-direction involution and the
per-chain Metropolis–Hastings test.

State ``ξ = (x, v)``: links ``x`` (U1 angles ``[B, D, *L]``, SU(N) matrices ``[B, D, *L, N, N]``)
and momenta ``v`` (algebra components, ``[B, D, *L]`` / ``[B, D, *L, N²−1]``); ``H = S + ½Σv²``.
Layer ``k`` (step size ``ε = ε_k > 0``, v-network ``V_k``, x-networks ``X_k``, mask ``m_k``
marking the links held fixed in its first x update; ``m̄ = 1 − m``):

1. v half step, ``(s, t, q) = V_k(x, F)`` with ``F = ∂S/∂ω(x)``:
   ``v ← v ⊙ e^{εs/2} − (ε/2)(F ⊙ e^{εq} + t)``,  ``log|J| += Σ εs/2``;
2. x update of the links ``m̄``, ``(s, t, q) = X_k(m ⊙ x, v)``:
   U1 ``x ← g_s(x) + ε(v ⊙ e^{εq} + t)`` on ``m̄`` with
   * ``compact``: ``g_s(x) = 2 atan(e^{εs} tan(x/2))``, evaluated as
     ``x + 2 atan(μ sin x / (2 + μ(1 − cos x)))`` with ``μ = expm1(εs)`` (the same function of the
     angle, smooth and 2π-periodic-equivariant, and exactly ``x`` when ``s = 0``);
     ``log g_s' = εs − log1p(expm1(2εs)(1 − cos x)/2)`` ``= log[e^{εs}/(cos²(x/2) + e^{2εs} sin²(x/2))]``;
   * ``affine``: ``g_s(x) = x e^{εs}``, ``log g_s' = εs``;
   SU(N): ``U ← exp(ε(v ⊙ e^{εq} + t)) U`` on ``m̄`` (left multiplication by an element that does
   not depend on the updated links: Haar measure preserving, ``log|J| = 0``; no ``s``);
3. the same with ``m`` and ``m̄`` swapped (second x-network when ``split_x``);
4. v half step as 1 at the new ``x``.

With ``dynamics { fourier > 0 }`` (U1, 2D/3D) the kicks use ``K F`` and the drift ``ε K v``
(``K`` the layer's Fourier filter, ``Dynamics.kinetic``: HMC with a momentum-space mass, still
shears), with any networks or none.

Networks never see the coordinates they update, so each sub-step has a triangular Jacobian and
an exact inverse; ``backward`` layers undo the four sub-steps in reverse order and accumulate
``−log|J|``. ``F^N`` applies layers ``0…N−1``, ``B^N = (F^N)⁻¹`` layers ``N−1…0`` backwards.
The proposal is an involution: ``merged``: ``M = B^N ∘ flip ∘ F^N`` (``M∘M = id``); ``random``: a
direction ``d`` per chain, ``F^N`` or ``B^N`` (and ``d`` flipped; it is redrawn every trajectory).
Accept per chain with ``A = min(1, exp(H(ξ) − H(ξ') + Σ log|J|))``.

Masks: ``checkerboard`` (site parity ``Σ_i n_i mod 2``, the same for every direction; layer k
holds parity ``k mod 2`` fixed first) or ``random`` (a fixed random half of the links per
layer: ``np.random.default_rng(mask_seed).permutation(D·|L|)[: D·|L| // 2]``, layer after
layer, over the links flattened as ``[D, *L]``). Step sizes ``ε_k = exp(a_k)`` (parameter
``log_step_size`` ``[N]``; learnable unless ``learnable_step_size`` is false).

The ``affine`` U1 update is the seed's: ``x e^{εs}`` is a bijection of the real line but not of
the circle (``x`` and ``x + 2π`` scale differently), so angles are not wrapped inside the
proposal (wrapped at its end) and the resulting chain is exact only as a chain of real
coordinates; ``compact`` is the exact choice for angles and the default.

Nothing here draws random numbers inside ``propose``: momenta, directions and the uniform of the
accept test are drawn by ``step`` and passed in, so ``propose`` is one ``torch.compile`` graph.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..common.config import DynamicsConfig
from . import su_pairs
from .compile import maybe_compile
from .groups import GaugeGroup, real_dtype
from .hmc import COMPILE_OPTIONS, DenseFilter, fourier_filter, fourier_hartley
from .lattice import (
    action_and_force,
    mean_plaquette,
    sin_charge,
    topological_charge,
    u1_action_and_force_halo,
)
from .networks import (
    LeapfrogNet,
    LocalNet,
    NetworkConfig,
    VNet,
    XNet,
    lattice_laplacian,
    new_pass,
)

__all__ = ["Dynamics", "DynamicsConfig", "Proposal", "acceptance_probability", "fourier_filter"]

#: ``Dynamics``' buffers of the Fourier filter by matmuls (``fourier_hartley``), in its order
_DENSE_BUFFERS = ("kinetic_full", "kinetic_hartley_0", "kinetic_hartley_1", "kinetic_hartley_2")


#: devices whose networks run under ``torch.autocast`` when ``network_precision`` is bf16/fp16
AUTOCAST_DEVICES = ("cuda", "xpu")


class Proposal(NamedTuple):
    """Result of ``Dynamics.propose``: the proposed state and the energies of the MH test.

    ``x``/``v`` the proposed links and momenta; ``logdet`` ``Σ log|J|`` ``[B]``; ``h_init`` and
    ``h_prop`` ``H(ξ)`` and ``H(ξ')`` ``[B]``.
    """

    x: Tensor
    v: Tensor
    logdet: Tensor
    h_init: Tensor
    h_prop: Tensor

    @property
    def acceptance(self) -> Tensor:
        """``A = min(1, exp(H(ξ) − H(ξ') + Σ log|J|))`` per chain (differentiable)."""
        return acceptance_probability(self.h_init, self.h_prop, self.logdet)


def acceptance_probability(h_init: Tensor, h_prop: Tensor, logdet: Tensor) -> Tensor:
    """``min(1, exp(H(ξ) − H(ξ') + log|J|))``; a non-finite exponent gives 0 (reject)."""
    log_a = h_init - h_prop + logdet
    log_a = torch.where(torch.isfinite(log_a), log_a, torch.full_like(log_a, -math.inf))
    return torch.exp(torch.clamp(log_a, max=0.0))


def _sum_links(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


def v_update(
    s: Tensor | None,
    t: Tensor | None,
    q: Tensor | None,
    eps: Tensor,
    v: Tensor,
    f: Tensor,
    logdet: Tensor,
    inverse: bool,
) -> tuple[Tensor, Tensor]:
    """The v half step (module docstring, step 1) from the v-network's ``(s, t, q)``, or its
    inverse: ``(v, logdet)``."""
    kick = f if q is None else f * torch.exp(eps * q)
    if t is not None:
        kick = kick + t
    half = 0.5 * eps
    if not inverse:
        if s is not None:
            v = v * torch.exp(half * s)
        v = v - half * kick
    else:
        v = v + half * kick
        if s is not None:
            v = v * torch.exp(-half * s)
    if s is not None:
        ld = _sum_links(half * s)
        logdet = logdet - ld if inverse else logdet + ld
    return v, logdet


def x_drift(t: Tensor | None, q: Tensor | None, eps: Tensor, v: Tensor) -> Tensor:
    """The algebra element of an x update, ``v ⊙ e^{εq} + t``."""
    drift = v if q is None else v * torch.exp(eps * q)
    return drift if t is None else drift + t


def _pairs_v_step(
    net: LeapfrogNet,
    links: Tensor,
    v: Tensor,
    f: Tensor,
    logdet: Tensor,
    eps: Tensor,
    inverse: Tensor,
) -> tuple[Tensor, Tensor]:
    """SU(N) v half step on planar pair links, the v-network included: one compiled unit for
    the forward and the inverse step (``inverse`` a 0-d bool tensor selects, so that both
    directions share one graph)."""
    s, t, q = net(links, f, None)
    fwd = v_update(s, t, q, eps, v, f, logdet, False)
    inv = v_update(s, t, q, eps, v, f, logdet, True)
    return torch.where(inverse, inv[0], fwd[0]), torch.where(inverse, inv[1], fwd[1])


def _pairs_x_drift(
    net: LeapfrogNet, links: Tensor, v: Tensor, fixed: Tensor, eps: Tensor
) -> Tensor:
    """The algebra element of an SU(N) x update on planar pairs, the x-network included
    (``fixed`` its real 0/1 mask)."""
    _, t, q = net(links, v, fixed)
    return x_drift(t, q, eps, v)


def _pairs_x_drift_moved(
    net: LeapfrogNet,
    links: Tensor,
    v: Tensor,
    fixed: Tensor,
    held: Tensor,
    moving: Tensor,
    eps: Tensor,
) -> Tensor:
    """``_pairs_x_drift`` at the links ``moving`` only (indices into ``[D, *L]``; ``held`` the
    others): ``[B, M, N²−1]``, the x-network's heads computed for those links alone
    (``LeapfrogNet.forward_moved``)."""
    _, t, q = net.forward_moved(links, v, fixed, held, moving)
    return x_drift(t, q, eps, v.flatten(1, -2).index_select(1, moving))


#: Moved links per call of the SU(N) drift unit on CPU (``Dynamics._pairs_drift``): about
#: 2000 SU(3) exponentials keep their intermediates in a core's L2 cache (measured on 4⁴ × 8
#: chains, fp64: 8 chains in one call 2.6 ms, in chunks of 4 or 2 chains 1.9–2.0 ms).
DRIFT_CHUNK_LINKS = 2048

#: The SU(N) layer's units on pairs with their networks (``Dynamics.compile_layers``).
LAYER_UNITS: Mapping[str, Callable[..., Any]] = {
    **su_pairs.PAIR_UNITS,
    "v_step": _pairs_v_step,
    "x_drift": _pairs_x_drift,
    "x_drift_moved": _pairs_x_drift_moved,
}


def compact_shift(x: Tensor, eps_s: Tensor) -> Tensor:
    """``g(x) − x`` for ``g(x) = 2 atan(e^{εs} tan(x/2))``: ``2 atan(μ sin x / (2 + μ(1 − cos x)))``
    with ``μ = expm1(εs)``.  The denominator is ``> 0`` for every ``x`` (``μ > −1``)."""
    mu = torch.expm1(eps_s)
    return 2.0 * torch.atan(mu * torch.sin(x) / (2.0 + mu * (1.0 - torch.cos(x))))


def compact_logdet(x: Tensor, eps_s: Tensor) -> Tensor:
    """``log g'(x) = εs − log1p(expm1(2εs)(1 − cos x)/2)`` elementwise."""
    return eps_s - torch.log1p(torch.expm1(2.0 * eps_s) * (0.5 * (1.0 - torch.cos(x))))


#: Inductor options of the compiled layer graph of ``network local`` on CPU (its v-networks,
#: ``LocalNet``, are a conv and per-site dense layers over ``[B, C, *L]``): the defaults with
#: layout optimisation off, so that the conv and the tanh after it stay channels first (the
#: lattice axis innermost, whole vectors) instead of channels last (8 channels: part vectors).
#: ``COMPILE_OPTIONS`` (``realize_opcount_threshold = 1``, which pays for the force of the
#: network-free graph) materialises the network's rolled and summed intermediates: the layer
#: graph of specs/u1.l2h's network took about twice as long with it (bench/bench_cost.py,
#: docs/performance.md). ``cpp_wrapper``: the graph's wrapper (its buffers' allocation and
#: views, the kernels' and matmuls' calls; about 200 statements per layer graph of that network)
#: runs as C++ instead of Python, the same kernels (the same values, bit for bit).
LOCAL_COMPILE_OPTIONS: dict[str, object] = {"layout_optimization": False, "cpp_wrapper": True}


def _compile_defaults(device: torch.device) -> dict[str, Any]:
    """``torch.compile`` keywords of the proposal: static shapes; on CUDA the steady state
    replayed as CUDA graphs (launch-bound small lattices), on CPU the inductor options that
    keep the periodic shifts of the force vectorised (``hmc.COMPILE_OPTIONS``)."""
    if device.type == "cuda":
        return {"dynamic": False, "mode": "reduce-overhead"}
    return {"dynamic": False, "options": dict(COMPILE_OPTIONS)}


class Dynamics(nn.Module):
    """Generalized leapfrog (see the module docstring) for one gauge group and lattice.

    ``group``: a ``GaugeGroup``; ``lattice_shape``: ``L``; ``network``: the architecture of every
    x/v network, or ``None`` for no networks (``s = t = q = 0``: a leapfrog with per-layer step
    sizes). ``dtype`` is the real precision (``torch.float32``/``torch.float64``; SU(N) links are
    then complex64/complex128). ``network_precision`` ``"bf16"``/``"fp16"`` runs the networks under
    autocast on CUDA and XPU (``AUTOCAST_DEVICES``; ignored on CPU); their outputs are cast back
    to ``dtype``.
    """

    # buffers (register_buffer in __init__); Module.__getattr__ would type them Tensor | Module
    masks: Tensor
    moved_links: Tensor | None
    site_shifts: Tensor
    inverse_flags: Tensor
    #: ``fourier > 0``: the filters' log mass² ``[N]`` (a parameter when the step sizes learn)
    kinetic_log_m2: Tensor | None
    #: ``fourier > 0``: the Laplacian's eigenvalues on ``rfftn``'s half spectrum (not saved)
    kinetic_lap: Tensor
    #: ``fourier > 0`` on a small lattice: the filter's buffers (``fourier_hartley``; not
    #: saved; ``kinetic_hartley_2`` 3D only), else ``None`` (the filter through FFTs)
    kinetic_full: Tensor | None
    kinetic_hartley_0: Tensor | None
    kinetic_hartley_1: Tensor | None
    kinetic_hartley_2: Tensor | None
    #: SU(N) on planar pairs: the layer's units (``LAYER_UNITS``; compiled ones after
    #: ``compile_layers``)
    _pair_units: Mapping[str, Callable[..., Any]] = LAYER_UNITS
    #: SU(N) layers run on planar pairs (set by ``compile_layers``)
    _planar = False

    def __init__(
        self,
        group: GaugeGroup,
        lattice_shape: Sequence[int],
        config: DynamicsConfig,
        network: NetworkConfig | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        network_precision: Literal["fp32", "fp64", "bf16", "fp16"] | None = None,
    ) -> None:
        super().__init__()
        self.group = group
        self.config = config
        self.lattice_shape = tuple(int(n) for n in lattice_shape)
        self.n_dim = len(self.lattice_shape)
        self.dtype = real_dtype(dtype)
        self.abelian = bool(group.is_abelian)
        if config.x_update == "affine" and not self.abelian:
            raise ValueError(
                "dynamics.x_update: 'affine' applies to U1 only (SU(N) uses the group update)"
            )
        self.compact = config.x_update == "compact"
        n = config.leapfrog
        factory: dict[str, Any] = {"dtype": self.dtype, "device": device}

        init = torch.full((n,), math.log(config.step_size), **factory)
        if config.learnable_step_size:
            self.log_step_size = nn.Parameter(init)
        else:
            self.register_buffer("log_step_size", init)
        self.register_buffer("masks", self._build_masks(device))
        # Fourier acceleration: one log mass² per layer, stored and learned as the step sizes
        if config.fourier <= 0:
            self.kinetic_log_m2 = None
        else:
            if not self.abelian or self.n_dim not in (2, 3):
                raise ValueError("dynamics.fourier: U1 on a lattice of dimension 2 or 3 only")
            m2 = torch.full((n,), math.log(config.fourier), **factory)
            if config.learnable_step_size:
                self.kinetic_log_m2 = nn.Parameter(m2)
            else:
                self.register_buffer("kinetic_log_m2", m2)
            lap = lattice_laplacian(self.lattice_shape, **factory)
            self.register_buffer("kinetic_lap", lap, persistent=False)
            dense = fourier_hartley(self.lattice_shape, **factory) or ()
            for i, name in enumerate(_DENSE_BUFFERS):
                self.register_buffer(name, dense[i] if i < len(dense) else None, persistent=False)
        # not in the state_dict: derived from the masks, like them rebuilt from the config
        moved = self._moved_links(self._mask_array())
        moved = None if moved is None else moved.to(self.masks.device)
        self.register_buffer("moved_links", moved, persistent=False)
        # SU(N) on pairs: periodic shifts as index tensors, the direction flag of the v unit
        shifts = su_pairs.site_shifts(self.lattice_shape, device)
        self.register_buffer("site_shifts", shifts, persistent=False)
        flags = torch.tensor([False, True], device=device)
        self.register_buffer("inverse_flags", flags, persistent=False)

        self.vnets = nn.ModuleList()
        self.xnets = nn.ModuleList()
        if network is not None:
            n_nets = n if config.networks == "separate" else 1
            n_x = 2 if config.split_x else 1
            net_kw = {"dtype": self.dtype, "device": device}
            for _ in range(n_nets):
                if network.kind == "local":  # v-networks only (see LocalNet)
                    self.vnets.append(
                        LocalNet(
                            group, self.lattice_shape, network, dtype=self.dtype, device=device
                        )
                    )
                    continue
                self.vnets.append(VNet(group, self.lattice_shape, network, **net_kw))
                self.xnets.append(
                    nn.ModuleList(
                        XNet(group, self.lattice_shape, network, **net_kw) for _ in range(n_x)
                    )
                )
        self.autocast_dtype: torch.dtype | None = None
        if network_precision in ("bf16", "fp16"):
            self.autocast_dtype = torch.bfloat16 if network_precision == "bf16" else torch.float16
        self.has_charge = self.abelian or self.n_dim == 4
        self._halo_force = network is not None and network.kind == "local"
        self._layer_fn = self.apply_layer
        self._propose_fn = self.trajectory

    # -- construction ------------------------------------------------------------------------
    def _build_masks(self, device: torch.device | str | None) -> Tensor:
        """``[N, D, *L]`` bool: true = held fixed in the first x update of the layer."""
        return torch.from_numpy(self._mask_array().copy()).to(device)

    def _mask_array(self) -> np.ndarray:
        """The masks of ``_build_masks`` as a numpy array: built on the host (the TensorFlow
        runtime builds the same masks from the same seed; ``_moved_links`` reads their values
        without a device sync)."""
        n, shape = self.config.leapfrog, (self.n_dim, *self.lattice_shape)
        if self.config.mask == "checkerboard":
            parity = np.broadcast_to(np.indices(self.lattice_shape).sum(0) % 2 == 1, shape)
            return np.stack([parity if k % 2 else ~parity for k in range(n)])
        rng = np.random.default_rng(self.config.mask_seed)
        size = math.prod(shape)
        masks = np.zeros((n, size), dtype=bool)
        for k in range(n):
            masks[k, rng.permutation(size)[: size // 2]] = True
        return masks.reshape(n, *shape)

    def _moved_links(self, masks: np.ndarray) -> Tensor | None:
        """``[N, 2, M]`` int64: the links (flattened as ``[D, *L]``) that the first and the second
        x update of each layer move, when the halves are equal (``None`` otherwise).

        Static per layer, so a compiled layer gathers and scatters the moved half of the links
        with a fixed index (no ``nonzero`` at run time) and its x-networks compute their heads
        for those links only (``LeapfrogNet.forward_moved``).
        """
        flat = masks.reshape(masks.shape[0], -1)
        if bool((2 * flat.sum(1) != flat.shape[1]).any()):
            return None
        moved = [np.stack([np.flatnonzero(~f), np.flatnonzero(f)]) for f in flat]
        return torch.from_numpy(np.stack(moved).astype(np.int64))

    # -- pieces ------------------------------------------------------------------------------
    def step_sizes(self) -> Tensor:
        """``ε_k`` for every layer ``[N]``."""
        return torch.exp(self.log_step_size)

    def kinetic(self, a: Tensor, k: int = 0) -> Tensor:
        """``K a`` with layer ``k``'s mass² (``fourier_filter``); ``fourier > 0`` only."""
        if self.kinetic_log_m2 is None:
            raise ValueError("dynamics: no Fourier filter (`fourier` is 0)")
        return fourier_filter(
            a, self.kinetic_log_m2[k : k + 1], self.kinetic_lap, self._kinetic_dense()
        )

    def _kinetic_dense(self) -> DenseFilter:
        """The filter's buffers by matmuls (``fourier_hartley``), or ``None`` (FFTs)."""
        bufs = [getattr(self, name, None) for name in _DENSE_BUFFERS]
        if bufs[0] is None:  # no filter, a large lattice, or removed (FFTs)
            return None
        return tuple(b for b in bufs if b is not None)

    def _vnet(self, k: int) -> LeapfrogNet | None:
        if not len(self.vnets):
            return None
        return self.vnets[k if self.config.networks == "separate" else 0]  # type: ignore[return-value]

    def _xnet(self, k: int, half: int) -> LeapfrogNet | None:
        if not len(self.xnets):
            return None
        nets = self.xnets[k if self.config.networks == "separate" else 0]
        return nets[half if self.config.split_x else 0]  # type: ignore[index,no-any-return]

    def _run(
        self,
        net: LeapfrogNet | Callable[..., Any] | None,
        links: Tensor,
        other: Tensor,
        mask: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        if net is None:
            return None, None, None
        call: Callable[..., Any] = net
        if self._planar and not links.is_complex():  # compiled SU(N) layers
            call = functools.partial(self._pair_units["network"], net)
        out: tuple[Tensor | None, Tensor | None, Tensor | None]
        if self.autocast_dtype is None or links.device.type not in AUTOCAST_DEVICES:
            out = call(links, other, mask)
            return out
        with torch.autocast(links.device.type, dtype=self.autocast_dtype):
            out = call(links, other, mask)
        return tuple(None if o is None else o.to(self.dtype) for o in out)  # type: ignore[return-value]

    def _v_step(
        self,
        net: LeapfrogNet | None,
        eps: Tensor,
        x: Tensor,
        v: Tensor,
        f: Tensor,
        logdet: Tensor,
        inverse: bool,
    ) -> tuple[Tensor, Tensor]:
        if net is not None and self._fused_pairs(x):
            flag = self.inverse_flags[int(inverse)]
            return self._pair_units["v_step"](net, x, v, f, logdet, eps, flag)  # type: ignore[no-any-return]
        return v_update(*self._run(net, x, f), eps, v, f, logdet, inverse)

    def _x_step(
        self,
        net: LeapfrogNet | None,
        fixed: Tensor,
        eps: Tensor,
        x: Tensor,
        v: Tensor,
        logdet: Tensor,
        inverse: bool,
        moving: Tensor | None = None,
        held: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """x update of the links where ``fixed`` is false; ``moving`` (optional) their indices
        into the links flattened as ``[D, *L]`` (else found from ``fixed``), ``held`` those of
        the others.  SU(N) pairs without gradients, given both: the x-network's heads at the
        moved links only and their drift on matrix entries (``x_drift_moved``,
        ``drift_moved_entries``); with gradients the heads of all links and the stacked drift
        (``x_drift``, ``drift_links``), whose backward graphs run and compile faster (the
        gathered head weights' gradient is a scatter: 8.5 against 6.5 ms per x-network call with
        its backward, 4⁴ × 8 chains fp64)."""
        signed = -eps if inverse else eps
        if not self.abelian and not x.is_complex():  # SU(N) on planar pairs
            fused = net is not None and self._fused_pairs(x)
            if fused and moving is not None and held is not None and not torch.is_grad_enabled():
                unit = self._pair_units["x_drift_moved"]
                p = unit(net, x, v, fixed.to(self.dtype), held, moving, eps)
                return self._pairs_drift(x, p, signed, moving, gathered=True), logdet
            if fused:
                drift = self._pair_units["x_drift"](net, x, v, fixed.to(self.dtype), eps)
            else:
                drift = x_drift(*self._run(net, x, v, fixed.to(self.dtype))[1:], eps, v)
            if moving is None:
                moving = (~fixed).flatten().nonzero().squeeze(1)
            return self._pairs_drift(x, drift, signed, moving), logdet
        s, t, q = self._run(net, x, v, fixed.to(self.dtype))
        drift = x_drift(t, q, eps, v)
        if self.abelian:
            new, ld = self._u1_x_step(eps, x, drift, s, inverse)
        else:
            new = self.group.exp_update(x, drift, signed)
            ld = None
        upd = ~fixed
        if not self.abelian:
            upd = upd[..., None, None]
        x = torch.where(upd, new, x)
        if ld is not None:
            logdet = logdet + _sum_links(torch.where(~fixed, ld, torch.zeros_like(ld)))
        return x, logdet

    def _u1_x_half(
        self,
        net: LeapfrogNet | None,
        fixed: Tensor,
        held: Tensor,
        moving: Tensor,
        eps: Tensor,
        x: Tensor,
        v: Tensor,
        logdet: Tensor,
        inverse: bool,
    ) -> tuple[Tensor, Tensor]:
        """``_x_step`` for U1 on the moved links only: ``held``/``moving`` index the links (as
        ``[D, *L]``) where ``fixed`` is true/false; the update, its ``log|J|`` and the networks'
        heads are computed for ``moving`` alone and scattered back."""
        s = t = q = None
        if net is not None:
            call = functools.partial(net.forward_moved, fixed=held, moved=moving)
            s, t, q = self._run(call, x, v, fixed.to(self.dtype))
        b = x.shape[0]
        flat = x.reshape(b, -1)
        drift = v.reshape(b, -1)[:, moving]
        if q is not None:
            drift = drift * torch.exp(eps * q)
        if t is not None:
            drift = drift + t
        new, ld = self._u1_x_step(eps, flat[:, moving], drift, s, inverse)
        x = flat.index_copy(1, moving, new).reshape(x.shape)
        if ld is not None:
            logdet = logdet + ld.sum(1)
        return x, logdet

    def _drift(self, eps: Tensor, x: Tensor, drift: Tensor, inverse: bool) -> Tensor:
        """The x update of every link without networks (``s = t = q = 0``), or its inverse."""
        if self.abelian:
            return self._u1_x_step(eps, x, drift, None, inverse)[0]
        return self._su_update(x, drift, -eps if inverse else eps)

    def _su_update(self, x: Tensor, p: Tensor, eps: Tensor) -> Tensor:
        """SU(N) ``U ← exp(ε P) U`` on complex links, or on planar pairs (``su_pairs``: the
        links of ``compile_layers``' graphs, which hold no complex tensors)."""
        if x.is_complex():
            return self.group.exp_update(x, p, eps)
        return self._pair_units["drift"](x, p, eps)  # type: ignore[no-any-return]

    def _pairs_drift(
        self, x: Tensor, p: Tensor, eps: Tensor, moving: Tensor, gathered: bool = False
    ) -> Tensor:
        """``U ← exp(ε P) U`` on planar pairs for the links ``moving`` (indices into ``[D, *L]``),
        the others kept, in chunks of chains of about ``DRIFT_CHUNK_LINKS`` moved links each
        (each chunk one call of the ``drift_links`` unit, or, when ``gathered``: ``p``
        ``[B, M, N²−1]`` holds the moved links' elements only, of ``drift_moved_entries``, the
        same on matrix entries, faster without gradients): the exponential's intermediates of a
        chunk stay in the core's cache, which on CPU more than pays for the extra calls."""
        per_chunk = max(1, DRIFT_CHUNK_LINKS // max(1, moving.shape[0]))
        n = -(-x.shape[3] // per_chunk)
        drift = self._pair_units["drift_moved_entries" if gathered else "drift_links"]
        if n == 1 or x.device.type != "cpu":
            return drift(x, p, eps, moving)  # type: ignore[no-any-return]
        parts = zip(torch.split(x, per_chunk, 3), torch.split(p, per_chunk, 0), strict=True)
        return torch.cat([drift(xc, pc, eps, moving) for xc, pc in parts], 3)

    def _fused_pairs(self, x: Tensor) -> bool:
        """Whether a network call on the planar pair links ``x`` runs inside the fused layer
        units (``v_step``, ``x_drift``): compiled SU(N) layers whose networks need no autocast."""
        return (
            self._planar
            and not x.is_complex()
            and (self.autocast_dtype is None or x.device.type not in AUTOCAST_DEVICES)
        )

    def _action_and_force(self, x: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
        """``lattice.action_and_force``, or its planar form for SU(N) pairs (``su_pairs``); U1
        with ``network local``: its halo form (``u1_action_and_force_halo``, the same values),
        which that network's layer graph, compiled with ``LOCAL_COMPILE_OPTIONS``, vectorises."""
        if self.abelian and self._halo_force:
            return u1_action_and_force_halo(x, beta)
        if self.abelian or x.is_complex():
            return action_and_force(x, beta)
        return su_pairs.action_and_force(x, beta, self._pair_units, self.site_shifts)

    def _u1_x_step(
        self, eps: Tensor, x: Tensor, drift: Tensor, s: Tensor | None, inverse: bool
    ) -> tuple[Tensor, Tensor | None]:
        """U1 update of every link (the caller keeps the fixed ones) and its ``log|J|``."""
        es = None if s is None else eps * s
        if not inverse:
            if es is None:
                y, ld = x, None
            elif self.compact:
                y, ld = x + compact_shift(x, es), compact_logdet(x, es)
            else:
                y, ld = x * torch.exp(es), es
            return (self.group.exp_update(y, drift, eps) if self.compact else y + eps * drift), ld
        y = self.group.exp_update(x, drift, -eps) if self.compact else x - eps * drift
        if es is None:
            return y, None
        if self.compact:
            return y + compact_shift(y, -es), compact_logdet(y, -es)
        return y * torch.exp(-es), -es

    def _layer(
        self,
        k: int,
        eps: Tensor,
        x: Tensor,
        v: Tensor,
        f: Tensor,
        logdet: Tensor,
        beta: Tensor,
        inverse: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Layer ``k`` forward or its exact inverse; ``f`` is the force at the input ``x``.

        Returns ``(x, v, logdet, action, force)`` with the action and force at the output ``x``
        (reused by the next layer: one force evaluation per layer).
        """
        nets = (self._vnet(k), self._xnet(k, 0), self._xnet(k, 1))
        moved = None if self.moved_links is None else self.moved_links[k]
        m2 = None if self.kinetic_log_m2 is None else self.kinetic_log_m2[k : k + 1]
        return self._layer_fn(
            *nets, self.masks[k], eps, x, v, f, logdet, beta, inverse, moved=moved, log_m2=m2
        )

    def apply_layer(
        self,
        vnet: LeapfrogNet | None,
        xnet_first: LeapfrogNet | None,
        xnet_second: LeapfrogNet | None,
        mask: Tensor,
        eps: Tensor,
        x: Tensor,
        v: Tensor,
        f: Tensor,
        logdet: Tensor,
        beta: Tensor,
        inverse: bool,
        moved: Tensor | None = None,
        log_m2: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """One layer with its networks and mask passed in: the unit that ``compile_layers``
        compiles (the networks are arguments, so every layer reuses one graph).  ``log_m2``: the
        layer's log mass² of the Fourier filter (``fourier > 0``), else ``None``.

        ``moved``: the layer's row of ``moved_links``; the x updates then gather, update and
        scatter back only the links they move, and the x-networks compute those links' heads
        only (the same values as the masked updates of every link, at about half the work; SU(N)
        on planar pairs, in compiled layers).
        """
        kin = (  # Fourier acceleration (dynamics' `fourier`), or None
            None
            if log_m2 is None
            else functools.partial(
                fourier_filter, log_m2=log_m2, lap=self.kinetic_lap, dense=self._kinetic_dense()
            )
        )
        v, logdet = self._v_step(vnet, eps, x, v, f if kin is None else kin(f), logdet, inverse)
        if xnet_first is None and xnet_second is None:
            # Without x-networks the two masked halves move every link by the same elementwise
            # map of (x, v): one drift of all links gives the same values at half the work.
            x = self._drift(eps, x, v if kin is None else kin(v), inverse)
        elif moved is not None and self.abelian:
            first = (xnet_first, mask, moved[1], moved[0])  # net, fixed, held, moving
            second = (xnet_second, ~mask, moved[0], moved[1])
            for net, fixed, held, mover in (second, first) if inverse else (first, second):
                x, logdet = self._u1_x_half(net, fixed, held, mover, eps, x, v, logdet, inverse)
        else:
            # SU(N): the moved links' indices, static per layer (no nonzero at run time)
            move_1, move_2 = (None, None) if moved is None else (moved[0], moved[1])
            halves = (
                ((xnet_second, ~mask, move_2, move_1), (xnet_first, mask, move_1, move_2))
                if inverse
                else ((xnet_first, mask, move_1, move_2), (xnet_second, ~mask, move_2, move_1))
            )
            for net, fixed, moving, kept in halves:
                x, logdet = self._x_step(net, fixed, eps, x, v, logdet, inverse, moving, kept)
        action, f = self._action_and_force(x, beta)
        v, logdet = self._v_step(vnet, eps, x, v, f if kin is None else kin(f), logdet, inverse)
        return x, v, logdet, action, f

    def _layer_forward(
        self,
        vnet: LeapfrogNet | None,
        xnet_first: LeapfrogNet | None,
        xnet_second: LeapfrogNet | None,
        mask: Tensor,
        eps: Tensor,
        x: Tensor,
        v: Tensor,
        f: Tensor,
        logdet: Tensor,
        beta: Tensor,
        **kwargs: Any,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``apply_layer`` forward (the unit that ``compile_layers`` compiles for U1)."""
        nets = (vnet, xnet_first, xnet_second)
        return self.apply_layer(*nets, mask, eps, x, v, f, logdet, beta, False, **kwargs)

    def _layer_inverse(
        self,
        vnet: LeapfrogNet | None,
        xnet_first: LeapfrogNet | None,
        xnet_second: LeapfrogNet | None,
        mask: Tensor,
        eps: Tensor,
        x: Tensor,
        v: Tensor,
        f: Tensor,
        logdet: Tensor,
        beta: Tensor,
        **kwargs: Any,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``apply_layer`` inverse (compiled apart from ``_layer_forward``)."""
        nets = (vnet, xnet_first, xnet_second)
        return self.apply_layer(*nets, mask, eps, x, v, f, logdet, beta, True, **kwargs)

    def compile_layers(self, enabled: bool = True, **compile_kwargs: Any) -> None:
        """Run every layer through ``torch.compile(apply_layer)`` (eager fallback on failure).

        One graph for forward layers and one for inverse layers, shared by all layers (their
        networks are graph inputs): compile time does not grow with the number of layers, as it
        does when the whole trajectory is one graph (see ``compile.py``).

        SU(N): inductor emits no fused code for complex tensors, so the layers run on planar
        real pairs (``su_pairs``; ``involution``/``transport`` convert the complex links once
        per proposal, so callers see complex links as before) and what is compiled is the units
        of ``LAYER_UNITS``, each a small graph reused within a layer and across layers: the v
        half step with its network, the x-network with its drift algebra, the drift
        ``U ← exp(εP) U`` of the links being updated (in chunks of chains on CPU), one plane's
        staple terms with their shifts, the force from the staples (``su_pairs.compile_units``;
        docs/performance.md has the measurements behind this split).
        """
        if enabled:
            # The graphs are per code object, shared by every Dynamics of the process: train and
            # eval modes, the first-layer requires_grad variants, precisions and lattices add up
            # past dynamo's default of 8, after which it silently runs eager.
            limit = torch._dynamo.config.recompile_limit
            torch._dynamo.config.recompile_limit = max(limit, 64)
        self._propose_fn = self.trajectory  # layer by layer, not a whole compiled trajectory
        if self.abelian and not enabled:
            self._layer_fn = self.apply_layer
        elif self.abelian:
            # Forward and inverse layers as two compiled functions (two code objects): each call
            # then finds its graph in its own cache entry, where one function with an
            # ``inverse`` argument evaluated the forward entry's guards before every inverse
            # call's own.
            forward = maybe_compile(
                self._layer_forward, True, name="leapfrog layer", **compile_kwargs
            )
            inverse = maybe_compile(
                self._layer_inverse, True, name="leapfrog layer", **compile_kwargs
            )

            def layer(*args: Any, **kwargs: Any) -> Any:
                *nets_and_state, backward = args
                return (inverse if backward else forward)(*nets_and_state, **kwargs)

            self._layer_fn = layer
        else:
            self._pair_units = (
                su_pairs.compile_units(LAYER_UNITS, **compile_kwargs) if enabled else LAYER_UNITS
            )
            self._planar = enabled
            self._layer_fn = self.apply_layer

    def compile_proposal(self, enabled: bool = True, **compile_kwargs: Any) -> str:
        """Compile the proposal: the whole trajectory as one graph where its compile time stays
        small, else every layer (``compile_layers``); returns ``"proposal"`` or ``"layers"``.

        U1 without networks: one graph (every layer forward, the flip, every layer backward,
        the energies), with inductor's ``COMPILE_OPTIONS`` on CPU and CUDA graphs
        (``mode="reduce-overhead"``) on CUDA; it compiles in one to two minutes cold (seconds
        from a warm inductor cache) and runs below the compiled HMC integrator's cost per force
        (``bench/bench_cost.py``).
        With networks the unrolled graph's compile time grows with the layer count (minutes
        for 8 layers), so the layer graph, shared by all layers, is compiled instead; SU(N)
        layers run on planar pairs (``compile_layers``).  Both fall back to eager (with one
        warning) if compilation fails.
        """
        whole = enabled and self.abelian and not len(self.vnets) and not len(self.xnets)
        defaults = _compile_defaults(self.masks.device)
        if not whole:
            if enabled and self.abelian and self.masks.device.type == "cpu":
                if len(self.vnets) and isinstance(self.vnets[0], LocalNet):
                    defaults = {**defaults, "options": dict(LOCAL_COMPILE_OPTIONS)}
                compile_kwargs = {**defaults, **compile_kwargs}
            self.compile_layers(enabled, **compile_kwargs)
            return "layers"
        limit = torch._dynamo.config.recompile_limit  # train/eval and grad modes, precisions
        torch._dynamo.config.recompile_limit = max(limit, 64)
        self._layer_fn = self.apply_layer
        kwargs = {**defaults, **compile_kwargs}
        self._propose_fn = maybe_compile(self.trajectory, True, name="L2HMC proposal", **kwargs)
        return "proposal"

    def transport(
        self,
        x: Tensor,
        v: Tensor,
        beta: Tensor | float,
        *,
        backward: bool = False,
        action_force: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``F^N`` (or ``B^N = (F^N)⁻¹`` if ``backward``): ``(x, v, logdet, S(x'), F(x'))``.

        ``action_force`` is ``action_and_force(x, beta)`` if the caller has it.  U1 ``affine``:
        the angles are not wrapped (see the module docstring).
        """
        beta = self._beta(beta)
        eps_all = self.step_sizes()
        y, v = self._layer_inputs(x, v)  # compiled SU(N): layers on planar pairs
        _, f = action_force if action_force is not None else self._action_and_force(y, beta)
        logdet = torch.zeros(v.shape[0], dtype=self.dtype, device=v.device)
        action = torch.zeros_like(logdet)
        if v.requires_grad and self._planar:
            logdet.requires_grad_()  # one requires_grad pattern for every layer (_layer_inputs)
        n = self.config.leapfrog
        for k in range(n - 1, -1, -1) if backward else range(n):
            y, v, logdet, action, f = self._layer(k, eps_all[k], y, v, f, logdet, beta, backward)
        return self._caller_links(y, x), v, logdet, action, f

    def involution(
        self, x: Tensor, v: Tensor, beta: Tensor | float
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Merged directions ``M = B^N ∘ flip ∘ F^N``: ``(x', v', logdet, S(x), S(x'))``.

        ``M(M(ξ)) = ξ`` to rounding (U1 affine: as real coordinates, unwrapped).
        """
        beta = self._beta(beta)
        y, v = self._layer_inputs(x, v)  # compiled SU(N): pairs through both halves
        s0, f0 = self._action_and_force(y, beta)
        y1, v1, ld1, s1, f1 = self.transport(y, v, beta, action_force=(s0, f0))
        y2, v2, ld2, s2, _ = self.transport(y1, -v1, beta, backward=True, action_force=(s1, f1))
        return self._caller_links(y2, x), v2, ld1 + ld2, s0, s2

    def _layer_inputs(self, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """The links and momenta as the layers take them: for compiled SU(N) layers the links as
        planar pairs and, with gradients on, both requiring grad even where the caller's do not
        (new leaves: no gradient path is cut).  Every unit then sees the same requires_grad
        pattern from the first layer on, so each compiles one training graph instead of one per
        pattern (the first layer's inputs, the force at the start, the log-det before the first
        ``s``): a fraction of the compile time, for a few gradients nobody reads."""
        if not self._planar or self.abelian:
            return x, v
        y = su_pairs.to_pairs(x) if x.is_complex() else x
        if torch.is_grad_enabled():
            y = y if y.requires_grad else y.detach().requires_grad_()
            v = v if v.requires_grad else v.detach().requires_grad_()
        return y, v

    def _caller_links(self, y: Tensor, like: Tensor) -> Tensor:
        """``_layer_inputs``' inverse for the links: complex again where the caller gave complex."""
        return su_pairs.from_pairs(y) if like.is_complex() and not y.is_complex() else y

    def _beta(self, beta: Tensor | float) -> Tensor:
        if isinstance(beta, Tensor):
            return beta.to(self.dtype)
        return torch.tensor(beta, dtype=self.dtype, device=self.masks.device)

    # -- the proposal and the MH test ---------------------------------------------------------
    def propose(
        self,
        x: Tensor,
        v: Tensor,
        beta: Tensor | float,
        forward_mask: Tensor | None = None,
    ) -> Proposal:
        """The L2HMC proposal ``ξ → ξ'`` for every chain (no randomness inside).

        ``merged`` directions: ``M`` (``forward_mask`` unused). ``random``: ``forward_mask`` ``[B]``
        bool, true where the chain moves with ``F^N`` (the other chains ``B^N``); both are
        computed for the whole batch and selected per chain (twice the work of one direction).
        Runs ``trajectory``, compiled as one graph after ``compile_proposal`` where it pays.
        """
        if not torch.compiler.is_compiling():
            new_pass()  # the networks' weights are fixed within the proposal (networks.new_pass)
        p: Proposal = self._propose_fn(x, v, self._beta(beta), forward_mask)
        return p

    def trajectory(
        self, x: Tensor, v: Tensor, beta: Tensor, forward_mask: Tensor | None
    ) -> Proposal:
        """The body of ``propose`` (``beta`` a 0-d tensor): the unit compiled whole."""
        if self.config.directions == "merged":
            x1, v1, logdet, s0, s1 = self.involution(x, v, beta)
        else:
            if forward_mask is None:
                raise ValueError("random directions need forward_mask ([B] bool)")
            y, w = self._layer_inputs(x, v)
            s0, f0 = self._action_and_force(y, beta)
            yf, vf, ldf, sf, _ = self.transport(y, w, beta, action_force=(s0, f0))
            yb, vb, ldb, sb, _ = self.transport(y, w, beta, backward=True, action_force=(s0, f0))
            xf, xb = self._caller_links(yf, x), self._caller_links(yb, x)
            d = forward_mask.reshape((-1,) + (1,) * (x.dim() - 1))
            x1 = torch.where(d, xf, xb)
            v1 = torch.where(forward_mask.reshape((-1,) + (1,) * (v.dim() - 1)), vf, vb)
            logdet = torch.where(forward_mask, ldf, ldb)
            s1 = torch.where(forward_mask, sf, sb)
        if self.abelian and not self.compact:
            x1 = self.group.project(x1)  # affine: wrap once, at the end
        h0 = s0 + self.group.kinetic_energy(v)
        h1 = s1 + self.group.kinetic_energy(v1)
        return Proposal(x1, v1, logdet, h0, h1)

    def forward(
        self, x: Tensor, v: Tensor, beta: Tensor | float, forward_mask: Tensor | None = None
    ) -> Proposal:
        """``propose`` (``forward`` so that wrappers such as DDP see the call)."""
        return self.propose(x, v, beta, forward_mask)

    def draw(
        self, x: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """The randomness of one step: momenta ``v``, directions (``random`` only), uniforms ``u``."""
        v = self.group.random_momenta(x, generator)
        b = x.shape[0]
        d = None
        if self.config.directions == "random":
            d = torch.rand(b, dtype=self.dtype, device=x.device, generator=generator) < 0.5
        u = torch.rand(b, dtype=self.dtype, device=x.device, generator=generator)
        return v, d, u

    def accept(self, x: Tensor, proposal: Proposal, u: Tensor) -> tuple[Tensor, Tensor]:
        """Per-chain MH: ``(x_new, accepted [B] bool)``, accepting where ``u < A``."""
        accepted = u < proposal.acceptance.detach()
        keep = accepted.reshape((-1,) + (1,) * (x.dim() - 1))
        return torch.where(keep, proposal.x.detach(), x), accepted

    @torch.no_grad()
    def metrics(
        self, x_old: Tensor, x_new: Tensor, proposal: Proposal, accepted: Tensor
    ) -> dict[str, Tensor]:
        """Per-step metrics: ``[B]`` tensors, and ``step_sizes`` ``[N]``.

        ``accept_prob``, ``accepted``, ``dH`` (``H(ξ') − H(ξ)``), ``sumlogdet``, ``plaquette``
        (of ``x_new``), and where defined ``charge`` (U1 integer; SU(N) 4D clover, unsmoothed),
        ``sin_charge`` (U1), ``dQ`` ``|Q(x_new) − Q(x_old)|`` and ``dQ_sin``.
        """
        out = {
            "accept_prob": proposal.acceptance.detach(),
            "accepted": accepted.to(self.dtype),
            "dH": (proposal.h_prop - proposal.h_init).detach(),
            "sumlogdet": proposal.logdet.detach(),
            "plaquette": mean_plaquette(x_new),
            "step_sizes": self.step_sizes().detach(),
        }
        if self.has_charge:
            q_new, q_old = topological_charge(x_new), topological_charge(x_old)
            out["charge"] = q_new
            out["dQ"] = (q_new - q_old).abs()
            if self.abelian:
                qs_new, qs_old = sin_charge(x_new), sin_charge(x_old)
                out["sin_charge"] = qs_new
                out["dQ_sin"] = (qs_new - qs_old).abs()
        return out

    def step(
        self, x: Tensor, beta: Tensor | float, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """One L2HMC trajectory per chain: draw, propose, accept; ``(x_new, metrics)``."""
        v, d, u = self.draw(x, generator)
        with torch.no_grad():
            prop = self.propose(x, v, beta, d)
        x_new, accepted = self.accept(x, prop, u)
        return x_new, self.metrics(x, x_new, prop, accepted)
