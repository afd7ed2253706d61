"""The generalized leapfrog of L2HMC in TensorFlow (mirror of ``pt/dynamics.py``): exact inverse
layers, log-Jacobians, the merged-direction involution and the per-chain Metropolis–Hastings test.

State ``ξ = (x, v)``, ``H = S + ½Σv²``.  Layer ``k`` (step ``ε_k``, v-network ``V_k``,
x-networks ``X_k``, mask ``m_k`` of the links held fixed in its first x update):

1. ``(s, t, q) = V_k(x, F)``: ``v ← v ⊙ e^{εs/2} − (ε/2)(F ⊙ e^{εq} + t)``, ``log|J| += Σ εs/2``;
2. ``(s, t, q) = X_k(m ⊙ x, v)`` on the links ``m̄``: U1 ``x ← g_s(x) + ε(v ⊙ e^{εq} + t)`` with
   the compact map ``g_s(x) = 2 atan(e^{εs} tan(x/2))`` (evaluated as
   ``x + 2 atan(μ sin x / (2 + μ(1 − cos x)))``, ``μ = expm1(εs)``) or the affine ``x e^{εs}``;
   SU(N) ``U ← exp(ε(v ⊙ e^{εq} + t)) U`` (``log|J| = 0``);
3. the same with ``m`` and ``m̄`` swapped; 4. the v half step at the new ``x``.

``backward`` layers undo the sub-steps exactly, in reverse order, accumulating ``−log|J|``.
Merged directions: ``M = B^N ∘ flip ∘ F^N``, an involution; random directions: ``F^N`` or
``B^N`` per chain.  Accept per chain with ``A = min(1, exp(H(ξ) − H(ξ') + Σ log|J|))``.
See ``pt/dynamics.py`` for the full discussion; the operations here are the same, in the same
order, so that a layer whose networks output zeros is a leapfrog step bit for bit.

State dict: ``log_step_size`` ``[N]``, ``masks`` ``[N, D, *L]`` (bool), ``vnets.{k}.…``,
``xnets.{k}.{half}.…``, as the PyTorch module's ``state_dict()``.  Random masks are drawn with
numpy in both frameworks (``np.random.default_rng(mask_seed)``, one permutation per layer), so
the same ``mask_seed`` gives the same masks; ``load_state_dict`` restores the ``masks`` entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import tensorflow as tf

from ..common.config import DynamicsConfig, NetworkConfig
from .compile import compile_function, normalize_mode
from .groups import GaugeGroup, real_dtype
from .hmc import as_real, fourier_filter
from .lattice import action_and_force, mean_plaquette, sin_charge, topological_charge
from .networks import LeapfrogNet, LocalNet, VNet, XNet, lattice_laplacian

__all__ = [
    "Dynamics",
    "DynamicsConfig",
    "Proposal",
    "acceptance_probability",
    "compact_logdet",
    "compact_shift",
]


class Proposal(NamedTuple):
    """Result of ``Dynamics.propose``: ``x``/``v`` proposed, ``logdet`` ``Σ log|J|`` ``[B]``,
    ``h_init``/``h_prop`` ``H(ξ)``/``H(ξ')`` ``[B]``."""

    x: tf.Tensor
    v: tf.Tensor
    logdet: tf.Tensor
    h_init: tf.Tensor
    h_prop: tf.Tensor

    @property
    def acceptance(self) -> tf.Tensor:
        """``A = min(1, exp(H(ξ) − H(ξ') + Σ log|J|))`` per chain (differentiable)."""
        return acceptance_probability(self.h_init, self.h_prop, self.logdet)


def acceptance_probability(h_init: tf.Tensor, h_prop: tf.Tensor, logdet: tf.Tensor) -> tf.Tensor:
    """``min(1, exp(H(ξ) − H(ξ') + log|J|))``; a non-finite exponent gives 0 (reject)."""
    log_a = h_init - h_prop + logdet
    log_a = tf.where(
        tf.math.is_finite(log_a),
        log_a,
        tf.fill(tf.shape(log_a), tf.constant(-math.inf, log_a.dtype)),
    )
    return tf.exp(tf.minimum(log_a, 0.0))


def _sum_links(t: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.reshape(t, [tf.shape(t)[0], -1]), axis=1)


def compact_shift(x: tf.Tensor, eps_s: tf.Tensor) -> tf.Tensor:
    """``g(x) − x`` for ``g(x) = 2 atan(e^{εs} tan(x/2))``: ``2 atan(μ sin x / (2 + μ(1 − cos x)))``
    with ``μ = expm1(εs)``."""
    mu = tf.math.expm1(eps_s)
    return 2.0 * tf.atan(mu * tf.sin(x) / (2.0 + mu * (1.0 - tf.cos(x))))


def compact_logdet(x: tf.Tensor, eps_s: tf.Tensor) -> tf.Tensor:
    """``log g'(x) = εs − log1p(expm1(2εs)(1 − cos x)/2)`` elementwise."""
    return eps_s - tf.math.log1p(tf.math.expm1(2.0 * eps_s) * (0.5 * (1.0 - tf.cos(x))))


# One layer's (x, v, logdet, action, force), as apply_layer and its compiled form return it.
_LayerOut: TypeAlias = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]


class _BoundNet:
    """A network's forward with another network's variables (same architecture)."""

    def __init__(self, template: LeapfrogNet | LocalNet, params: Mapping[str, Any]) -> None:
        self.template, self.params = template, params

    def __call__(
        self, links: tf.Tensor, other: tf.Tensor, mask: tf.Tensor | None, *, training: bool
    ) -> tuple[tf.Tensor | None, tf.Tensor | None, tf.Tensor | None]:
        return self.template(links, other, mask, training=training, params=self.params)


def _chain_mask(mask: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    return tf.reshape(mask, [-1] + [1] * (like.shape.rank - 1))


class Dynamics(tf.Module):  # type: ignore[misc]  # tensorflow ships no type information
    """Generalized leapfrog for one gauge group and lattice (see the module docstring).

    ``network=None`` gives no networks (``s = t = q = 0``: a leapfrog with per-layer step
    sizes); a ``kind="local"`` network gives v-networks only (``LocalNet``; the x updates are
    the drift of every link).  ``dtype`` is the real precision (SU(N) links are then complex).
    ``seed`` seeds the networks' initial weights (numpy).
    """

    def __init__(
        self,
        group: GaugeGroup,
        lattice_shape: Sequence[int],
        config: DynamicsConfig,
        network: NetworkConfig | None = None,
        *,
        dtype: tf.DType | str = tf.float64,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
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
        init = np.full((n,), math.log(config.step_size), self.dtype.as_numpy_dtype)
        self.log_step_size = tf.Variable(
            init, trainable=config.learnable_step_size, name="log_step_size"
        )
        self.masks = tf.Variable(self._build_masks(), trainable=False, name="masks")
        # Fourier acceleration: one log mass² per layer, stored and learned as the step sizes
        self.kinetic_log_m2: tf.Variable | None = None
        self.kinetic_lap: np.ndarray | None = None
        if config.fourier > 0:
            if not self.abelian or self.n_dim not in (2, 3):
                raise ValueError("dynamics.fourier: U1 on a lattice of dimension 2 or 3 only")
            m2 = np.full((n,), math.log(config.fourier), self.dtype.as_numpy_dtype)
            self.kinetic_log_m2 = tf.Variable(
                m2, trainable=config.learnable_step_size, name="kinetic_log_m2"
            )
            self.kinetic_lap = lattice_laplacian(self.lattice_shape).astype(
                self.dtype.as_numpy_dtype
            )
        self.vnets: list[LeapfrogNet | LocalNet] = []
        self.xnets: list[list[LeapfrogNet]] = []
        if network is not None:
            n_nets = n if config.networks == "separate" else 1
            local = network.kind == "local"  # v-networks only (see LocalNet)
            n_x = 0 if local else 2 if config.split_x else 1
            seeds = np.random.SeedSequence(seed).spawn(n_nets * (1 + n_x))
            it = iter(int(s.generate_state(1)[0]) for s in seeds)
            for k in range(n_nets):
                if local:
                    self.vnets.append(
                        LocalNet(
                            group,
                            self.lattice_shape,
                            network,
                            dtype=self.dtype,
                            seed=next(it),
                            name=f"vnet_{k}",
                        )
                    )
                    continue
                self.vnets.append(
                    VNet(
                        group,
                        self.lattice_shape,
                        network,
                        dtype=self.dtype,
                        seed=next(it),
                        name=f"vnet_{k}",
                    )
                )
                self.xnets.append(
                    [
                        XNet(
                            group,
                            self.lattice_shape,
                            network,
                            dtype=self.dtype,
                            seed=next(it),
                            name=f"xnet_{k}_{h}",
                        )
                        for h in range(n_x)
                    ]
                )
        self.has_charge = self.abelian or self.n_dim == 4
        self.training = True
        self._layer_fn: Callable[..., _LayerOut] = self.apply_layer
        self._loop = False

    # -- construction ------------------------------------------------------------------------
    def _build_masks(self) -> np.ndarray:
        """``[N, D, *L]`` bool: true = held fixed in the first x update of the layer."""
        n, shape = self.config.leapfrog, (self.n_dim, *self.lattice_shape)
        if self.config.mask == "checkerboard":
            grids = np.meshgrid(*(np.arange(s) for s in self.lattice_shape), indexing="ij")
            parity = np.broadcast_to((np.sum(grids, axis=0) % 2).astype(bool), shape)
            return np.stack([parity if k % 2 else ~parity for k in range(n)])
        rng = np.random.default_rng(self.config.mask_seed)
        size = math.prod(shape)
        masks = np.zeros((n, size), dtype=bool)
        for k in range(n):
            masks[k, rng.permutation(size)[: size // 2]] = True
        return masks.reshape(n, *shape)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """All parameters and buffers as numpy arrays under the PyTorch ``state_dict`` keys."""
        out = {"log_step_size": self.log_step_size.numpy(), "masks": self.masks.numpy()}
        if self.kinetic_log_m2 is not None:
            out["kinetic_log_m2"] = self.kinetic_log_m2.numpy()
        for k, net in enumerate(self.vnets):
            out.update({f"vnets.{k}.{key}": v for key, v in net.state_dict().items()})
        for k, nets in enumerate(self.xnets):
            for h, net in enumerate(nets):
                out.update({f"xnets.{k}.{h}.{key}": v for key, v in net.state_dict().items()})
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Assign everything from ``state`` (numpy arrays; e.g. a converted PyTorch
        ``state_dict``); keys and shapes must match exactly."""
        own = self.state_dict()
        missing, unexpected = set(own) - set(state), set(state) - set(own)
        if missing or unexpected:
            raise KeyError(
                f"state dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        self.log_step_size.assign(np.asarray(state["log_step_size"], self.dtype.as_numpy_dtype))
        self.masks.assign(np.asarray(state["masks"], bool))
        if self.kinetic_log_m2 is not None:
            self.kinetic_log_m2.assign(
                np.asarray(state["kinetic_log_m2"], self.dtype.as_numpy_dtype)
            )
        for k, net in enumerate(self.vnets):
            prefix = f"vnets.{k}."
            net.load_state_dict(
                {key[len(prefix) :]: v for key, v in state.items() if key.startswith(prefix)}
            )
        for k, nets in enumerate(self.xnets):
            for h, net in enumerate(nets):
                prefix = f"xnets.{k}.{h}."
                net.load_state_dict(
                    {key[len(prefix) :]: v for key, v in state.items() if key.startswith(prefix)}
                )

    def named_parameters(self) -> list[tuple[str, tf.Variable]]:
        """The trainable variables under their ``state_dict`` keys (the optimizer's order)."""
        out = []
        if self.log_step_size.trainable:
            out.append(("log_step_size", self.log_step_size))
        if self.kinetic_log_m2 is not None and self.kinetic_log_m2.trainable:
            out.append(("kinetic_log_m2", self.kinetic_log_m2))
        for k, net in enumerate(self.vnets):
            out += [(f"vnets.{k}.{n}", v) for n, v in net.params.items() if v.trainable]
        for k, nets in enumerate(self.xnets):
            for h, net in enumerate(nets):
                out += [(f"xnets.{k}.{h}.{n}", v) for n, v in net.params.items() if v.trainable]
        return out

    def train(self, mode: bool = True) -> Dynamics:
        self.training = mode
        for net in self._all_nets():
            net.train(mode)
        return self

    def eval(self) -> Dynamics:
        return self.train(False)

    def _all_nets(self) -> list[LeapfrogNet | LocalNet]:
        return [*self.vnets, *(n for nets in self.xnets for n in nets)]

    # -- pieces ------------------------------------------------------------------------------
    def step_sizes(self) -> tf.Tensor:
        """``ε_k`` for every layer ``[N]``."""
        return tf.exp(self.log_step_size)

    def _vnet(self, k: int) -> LeapfrogNet | LocalNet | None:
        if not self.vnets:
            return None
        return self.vnets[k if self.config.networks == "separate" else 0]

    def _xnet(self, k: int, half: int) -> LeapfrogNet | None:
        if not self.xnets:
            return None
        nets = self.xnets[k if self.config.networks == "separate" else 0]
        return nets[half if self.config.split_x else 0]

    def _run(
        self,
        net: LeapfrogNet | LocalNet | _BoundNet | None,
        links: tf.Tensor,
        other: tf.Tensor,
        mask: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor | None, tf.Tensor | None, tf.Tensor | None]:
        if net is None:
            return None, None, None
        return net(links, other, mask, training=self.training)

    def _v_step(
        self,
        net: LeapfrogNet | LocalNet | _BoundNet | None,
        eps: tf.Tensor,
        x: tf.Tensor,
        v: tf.Tensor,
        f: tf.Tensor,
        logdet: tf.Tensor,
        inverse: bool,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        s, t, q = self._run(net, x, f)
        kick = f if q is None else f * tf.exp(eps * q)
        if t is not None:
            kick = kick + t
        half = 0.5 * eps
        if not inverse:
            if s is not None:
                v = v * tf.exp(half * s)
            v = v - half * kick
        else:
            v = v + half * kick
            if s is not None:
                v = v * tf.exp(-half * s)
        if s is not None:
            ld = _sum_links(half * s)
            logdet = logdet - ld if inverse else logdet + ld
        return v, logdet

    def _x_step(
        self,
        net: LeapfrogNet | _BoundNet | None,
        fixed: tf.Tensor,
        eps: tf.Tensor,
        x: tf.Tensor,
        v: tf.Tensor,
        logdet: tf.Tensor,
        inverse: bool,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        s, t, q = self._run(net, x, v, tf.cast(fixed, self.dtype))
        drift = v if q is None else v * tf.exp(eps * q)
        if t is not None:
            drift = drift + t
        if self.abelian:
            new, ld = self._u1_x_step(eps, x, drift, s, inverse)
        else:
            new = self.group.exp_update(x, drift, -eps if inverse else eps)
            ld = None
        upd = tf.logical_not(fixed)
        if not self.abelian:
            upd = upd[..., None, None]
        x = tf.where(upd, new, x)
        if ld is not None:
            logdet = logdet + _sum_links(tf.where(tf.logical_not(fixed), ld, tf.zeros_like(ld)))
        return x, logdet

    def _drift(self, eps: tf.Tensor, x: tf.Tensor, drift: tf.Tensor, inverse: bool) -> tf.Tensor:
        """The x update of every link without networks (``s = t = q = 0``), or its inverse."""
        if self.abelian:
            return self._u1_x_step(eps, x, drift, None, inverse)[0]
        return self.group.exp_update(x, drift, -eps if inverse else eps)

    def _u1_x_step(
        self, eps: tf.Tensor, x: tf.Tensor, drift: tf.Tensor, s: tf.Tensor | None, inverse: bool
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """U1 update of every link (the caller keeps the fixed ones) and its ``log|J|``."""
        es = None if s is None else eps * s
        if not inverse:
            if es is None:
                y, ld = x, None
            elif self.compact:
                y, ld = x + compact_shift(x, es), compact_logdet(x, es)
            else:
                y, ld = x * tf.exp(es), es
            return (self.group.exp_update(y, drift, eps) if self.compact else y + eps * drift), ld
        y = self.group.exp_update(x, drift, -eps) if self.compact else x - eps * drift
        if es is None:
            return y, None
        if self.compact:
            return y + compact_shift(y, -es), compact_logdet(y, -es)
        return y * tf.exp(-es), -es

    def _layer(
        self,
        k: int,
        eps: tf.Tensor,
        x: tf.Tensor,
        v: tf.Tensor,
        f: tf.Tensor,
        logdet: tf.Tensor,
        beta: tf.Tensor,
        inverse: bool,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Layer ``k`` forward or its exact inverse; ``f`` is the force at the input ``x``.
        Returns ``(x, v, logdet, action, force)`` at the output ``x`` (one force per layer)."""
        nets = (self._vnet(k), self._xnet(k, 0), self._xnet(k, 1))
        m2 = None if self.kinetic_log_m2 is None else self.kinetic_log_m2[k : k + 1]
        return self._layer_fn(*nets, self.masks[k], eps, x, v, f, logdet, beta, inverse, log_m2=m2)

    def apply_layer(
        self,
        vnet: LeapfrogNet | LocalNet | _BoundNet | None,
        xnet_first: LeapfrogNet | _BoundNet | None,
        xnet_second: LeapfrogNet | _BoundNet | None,
        mask: tf.Tensor,
        eps: tf.Tensor,
        x: tf.Tensor,
        v: tf.Tensor,
        f: tf.Tensor,
        logdet: tf.Tensor,
        beta: tf.Tensor,
        inverse: bool,
        log_m2: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """One layer with its networks and mask passed in (the unit ``compile_layers``
        compiles); ``log_m2`` the layer's log mass² of the Fourier filter, or ``None``."""
        lap = self.kinetic_lap
        kin: Callable[[tf.Tensor], tf.Tensor] | None = (  # Fourier acceleration, or None
            None
            if log_m2 is None or lap is None
            else lambda a: fourier_filter(a, log_m2, lap, self.lattice_shape)
        )
        v, logdet = self._v_step(vnet, eps, x, v, f if kin is None else kin(f), logdet, inverse)
        if xnet_first is None and xnet_second is None:
            # Without x-networks the two masked halves move every link by the same elementwise
            # map of (x, v): one drift of all links gives the same values at half the work.
            x = self._drift(eps, x, v if kin is None else kin(v), inverse)
        else:
            not_mask = tf.logical_not(mask)
            halves = (
                ((xnet_second, not_mask), (xnet_first, mask))
                if inverse
                else ((xnet_first, mask), (xnet_second, not_mask))
            )
            for net, fixed in halves:
                x, logdet = self._x_step(net, fixed, eps, x, v, logdet, inverse)
        action, f = action_and_force(x, beta)
        v, logdet = self._v_step(vnet, eps, x, v, f if kin is None else kin(f), logdet, inverse)
        return x, v, logdet, action, f

    def compile_layers(self, mode: str | bool = "xla") -> None:
        """Run every layer through one compiled ``apply_layer`` (``mode`` as in
        ``compile.compile_function``; ``"eager"`` undoes it).

        The networks' variables are arguments of the compiled function, not captures, so all
        layers share one trace (and one XLA executable) per direction and mode: compile time
        does not grow with the number of layers, as it does when a whole trajectory is one
        graph.  Called inside a plain ``tf.function`` (the trainer's train step), each layer is
        its own XLA cluster, forward and backward.  It replaces ``loop_layers``: the layers are
        unrolled again (a generated ``train.py`` switching compilation before evaluation).
        """
        self._loop = False
        if normalize_mode(mode) == "eager":
            self._layer_fn = self.apply_layer
            return
        templates = (self._vnet(0), self._xnet(0, 0), self._xnet(0, 1))

        def layer(
            params: tuple[dict[str, tf.Variable] | None, ...],
            training: bool,
            mask: tf.Tensor,
            eps: tf.Tensor,
            x: tf.Tensor,
            v: tf.Tensor,
            f: tf.Tensor,
            logdet: tf.Tensor,
            beta: tf.Tensor,
            inverse: bool,
            log_m2: tf.Tensor | None = None,
        ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
            vnet, xnet_first, xnet_second = (
                None if t is None or p is None else _BoundNet(t, p)
                for t, p in zip(templates, params, strict=True)
            )
            previous, self.training = self.training, training
            try:
                return self.apply_layer(
                    vnet, xnet_first, xnet_second, mask, eps, x, v, f, logdet, beta, inverse, log_m2
                )
            finally:
                self.training = previous

        compiled = compile_function(layer, mode, name="leapfrog layer")

        def run(
            vnet: LeapfrogNet | LocalNet | None,
            xnet_first: LeapfrogNet | None,
            xnet_second: LeapfrogNet | None,
            *args: Any,
            log_m2: tf.Tensor | None = None,
        ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
            params = tuple(None if n is None else n.params for n in (vnet, xnet_first, xnet_second))
            out: tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor] = compiled(
                params, self.training, *args, log_m2
            )
            return out

        self._layer_fn = run

    def loop_layers(self, on: bool = True) -> bool:
        """Run the layers of a transport as one ``tf.while_loop`` over the layers' stacked
        parameters (masks, step sizes, network variables) instead of unrolling them; returns
        whether it does.

        Traced into one XLA function (the trainer's ``"xla-step"`` mode) the loop body is one layer,
        so compile time does not grow with the number of layers, as it does when a whole
        unrolled trajectory and its gradient are one XLA function.  Not with batch norm (its
        running statistics are per-layer variables, assigned in training, which a loop over
        stacked copies cannot update): then ``False`` and the layers stay unrolled.
        """
        self._loop = on and not any(net.config.batch_norm for net in self._all_nets())
        return self._loop

    def _transport_loop(
        self,
        eps_all: tf.Tensor,
        x: tf.Tensor,
        v: tf.Tensor,
        f: tf.Tensor,
        logdet: tf.Tensor,
        beta: tf.Tensor,
        backward: bool,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """The layers of ``transport`` as one loop (``loop_layers``); the same operations in
        the same order as the unrolled layers."""
        n = self.config.leapfrog
        slots = [(self._vnet(k), self._xnet(k, 0), self._xnet(k, 1)) for k in range(n)]
        templates = slots[0]
        separate = self.config.networks == "separate"

        # per slot: layer k's variables, stacked along a new first axis (shared networks: as
        # they are)
        def stack(j: int, name: str) -> tf.Tensor:
            nets = [slots[k][j] for k in range(n)]
            return tf.stack([net.params[name] for net in nets if net is not None])

        stacked = [
            None
            if net is None
            else {name: stack(j, name) if separate else var for name, var in net.params.items()}
            for j, net in enumerate(templates)
        ]

        def body(
            i: tf.Tensor,
            x: tf.Tensor,
            v: tf.Tensor,
            logdet: tf.Tensor,
            action: tf.Tensor,
            f: tf.Tensor,
        ) -> tuple[tf.Tensor, ...]:
            k = n - 1 - i if backward else i
            nets = [
                None
                if net is None or params is None
                else _BoundNet(
                    net,
                    {name: tf.gather(val, k) for name, val in params.items()}
                    if separate
                    else params,
                )
                for net, params in zip(templates, stacked, strict=True)
            ]
            vnet, xnet_first, xnet_second = nets
            out = self.apply_layer(
                vnet,
                xnet_first,
                xnet_second,
                tf.gather(self.masks, k),
                tf.gather(eps_all, k),
                x,
                v,
                f,
                logdet,
                beta,
                backward,
                None if self.kinetic_log_m2 is None else tf.gather(self.kinetic_log_m2, [k]),
            )
            return (i + 1, *out)

        action = tf.zeros_like(logdet)
        start = (tf.constant(0), x, v, logdet, action, f)
        _, x, v, logdet, action, f = tf.while_loop(
            lambda i, *_: i < n, body, start, maximum_iterations=n
        )
        return x, v, logdet, action, f

    def transport(
        self,
        x: tf.Tensor,
        v: tf.Tensor,
        beta: tf.Tensor | float,
        *,
        backward: bool = False,
        action_force: tuple[tf.Tensor, tf.Tensor] | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """``F^N`` (or ``B^N = (F^N)⁻¹`` if ``backward``): ``(x, v, logdet, S(x'), F(x'))``."""
        beta = self._beta(beta)
        eps_all = self.step_sizes()
        _, f = action_force if action_force is not None else action_and_force(x, beta)
        logdet = tf.zeros(tf.shape(x)[:1], dtype=self.dtype)
        if self._loop:
            return self._transport_loop(eps_all, x, v, f, logdet, beta, backward)
        action = tf.zeros_like(logdet)
        n = self.config.leapfrog
        for k in range(n - 1, -1, -1) if backward else range(n):
            x, v, logdet, action, f = self._layer(k, eps_all[k], x, v, f, logdet, beta, backward)
        return x, v, logdet, action, f

    def involution(
        self, x: tf.Tensor, v: tf.Tensor, beta: tf.Tensor | float
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Merged directions ``M = B^N ∘ flip ∘ F^N``: ``(x', v', logdet, S(x), S(x'))``."""
        beta = self._beta(beta)
        s0, f0 = action_and_force(x, beta)
        x1, v1, ld1, s1, f1 = self.transport(x, v, beta, action_force=(s0, f0))
        x2, v2, ld2, s2, _ = self.transport(x1, -v1, beta, backward=True, action_force=(s1, f1))
        return x2, v2, ld1 + ld2, s0, s2

    def _beta(self, beta: tf.Tensor | float) -> tf.Tensor:
        return as_real(beta, self.dtype)

    # -- the proposal and the MH test ---------------------------------------------------------
    def propose(
        self,
        x: tf.Tensor,
        v: tf.Tensor,
        beta: tf.Tensor | float,
        forward_mask: tf.Tensor | None = None,
    ) -> Proposal:
        """The L2HMC proposal ``ξ → ξ'`` for every chain (no randomness inside).  ``random``
        directions: ``forward_mask`` ``[B]`` bool, true where the chain moves with ``F^N``."""
        beta = self._beta(beta)
        if self.config.directions == "merged":
            x1, v1, logdet, s0, s1 = self.involution(x, v, beta)
        else:
            if forward_mask is None:
                raise ValueError("random directions need forward_mask ([B] bool)")
            s0, f0 = action_and_force(x, beta)
            xf, vf, ldf, sf, _ = self.transport(x, v, beta, action_force=(s0, f0))
            xb, vb, ldb, sb, _ = self.transport(x, v, beta, backward=True, action_force=(s0, f0))
            x1 = tf.where(_chain_mask(forward_mask, x), xf, xb)
            v1 = tf.where(_chain_mask(forward_mask, v), vf, vb)
            logdet = tf.where(forward_mask, ldf, ldb)
            s1 = tf.where(forward_mask, sf, sb)
        if self.abelian and not self.compact:
            x1 = self.group.project(x1)  # affine: wrap once, at the end
        h0 = s0 + self.group.kinetic_energy(v)
        h1 = s1 + self.group.kinetic_energy(v1)
        return Proposal(x1, v1, logdet, h0, h1)

    def __call__(
        self,
        x: tf.Tensor,
        v: tf.Tensor,
        beta: tf.Tensor | float,
        forward_mask: tf.Tensor | None = None,
    ) -> Proposal:
        return self.propose(x, v, beta, forward_mask)

    def draw(
        self, x: tf.Tensor, generator: tf.random.Generator | None = None
    ) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor]:
        """The randomness of one step: momenta ``v``, directions (``random`` only), uniforms."""
        gen = generator if generator is not None else tf.random.get_global_generator()
        v = self.group.random_momenta(x, gen)
        b = tf.shape(x)[:1]
        d = None
        if self.config.directions == "random":
            d = gen.uniform(b, dtype=self.dtype) < 0.5
        u = gen.uniform(b, dtype=self.dtype)
        return v, d, u

    def accept(self, x: tf.Tensor, proposal: Proposal, u: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-chain MH: ``(x_new, accepted [B] bool)``, accepting where ``u < A``."""
        accepted = u < tf.stop_gradient(proposal.acceptance)
        new = tf.where(_chain_mask(accepted, x), tf.stop_gradient(proposal.x), x)
        return new, accepted

    def metrics(
        self, x_old: tf.Tensor, x_new: tf.Tensor, proposal: Proposal, accepted: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """Per-step metrics (``[B]`` tensors, and ``step_sizes`` ``[N]``): ``accept_prob``,
        ``accepted``, ``dH``, ``sumlogdet``, ``plaquette``, and where defined ``charge``,
        ``dQ``, ``sin_charge``, ``dQ_sin`` (U1)."""
        sg = tf.stop_gradient
        out = {
            "accept_prob": sg(proposal.acceptance),
            "accepted": tf.cast(accepted, self.dtype),
            "dH": sg(proposal.h_prop - proposal.h_init),
            "sumlogdet": sg(proposal.logdet),
            "plaquette": mean_plaquette(x_new),
            "step_sizes": sg(self.step_sizes()),
        }
        if self.has_charge:
            q_new, q_old = topological_charge(x_new), topological_charge(x_old)
            out["charge"] = q_new
            out["dQ"] = tf.abs(q_new - q_old)
            if self.abelian:
                qs_new, qs_old = sin_charge(x_new), sin_charge(x_old)
                out["sin_charge"] = qs_new
                out["dQ_sin"] = tf.abs(qs_new - qs_old)
        return out

    def step(
        self, x: tf.Tensor, beta: tf.Tensor | float, generator: tf.random.Generator | None = None
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """One L2HMC trajectory per chain: draw, propose, accept; ``(x_new, metrics)``."""
        v, d, u = self.draw(x, generator)
        prop = self.propose(x, v, beta, d)
        prop = Proposal(*(tf.stop_gradient(t) for t in prop))
        x_new, accepted = self.accept(x, prop, u)
        return x_new, self.metrics(x, x_new, prop, accepted)
