"""The networks of the generalized leapfrog in TensorFlow (mirror of ``pt/networks.py``).

One ``LeapfrogNet`` computes, for a batch of configurations,

    z = act(W_x · embed(links) + W_v · flatten(other))      (+ hidden layers, dropout, batch norm)
    s = λ_s tanh(W_s z),   t = W_t z + b_t,   q = λ_q tanh(W_q z)

with ``λ_s = scale_s · exp(a_s)``, ``λ_q = scale_q · exp(a_q)``; outputs have the momentum
shape.  x-networks see the fixed links (``mask``) and ``v``; v-networks see all links and the
force, and are dense only.  See ``pt/networks.py`` for the full description.

**Parameter layout.**  The variables are those of the PyTorch module, with the same names (the
keys of its ``state_dict()``) and the same layouts: ``Linear`` weights ``[out, in]``, conv
kernels ``[out, in, *k]``, the fused head weight ``[n_heads · n_out, width]``, head scales
``[1]``, the flatten before the first dense layer channels-last for 2D lattices and
channels-first otherwise.  ``state_dict()`` / ``load_state_dict()``
exchange numpy arrays under those keys, so weights copy across frameworks exactly (the
cross-framework test does that).  Internally the convolutions run channels-last (TensorFlow's
CPU layout): kernels are transposed at call time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import tensorflow as tf

from ..common.config import NetworkConfig, seed_u1_network
from .groups import wrap
from .lattice import planes, plaquette_field

__all__ = [
    "ACTIVATIONS",
    "LeapfrogNet",
    "LocalNet",
    "NetworkConfig",
    "VNet",
    "XNet",
    "group_colors",
    "lattice_laplacian",
    "max_pool",
    "periodic_pad",
    "seed_u1_network",
]


def _leaky_relu(x: tf.Tensor) -> tf.Tensor:
    # torch's default slope 0.01; tf.nn.leaky_relu holds alpha as a float32 attribute (2.5e-10
    # relative error in float64)
    return tf.where(x > 0, x, x * 0.01)


def _softplus(x: tf.Tensor) -> tf.Tensor:
    # torch's softplus: linear above the threshold 20
    return tf.where(x > 20.0, x, tf.math.log1p(tf.exp(tf.minimum(x, 20.0))))


def _gelu(x: tf.Tensor) -> tf.Tensor:
    # torch's default (erf) GELU; tf.nn.gelu(approximate=False) is off by 5e-9 in float64
    return 0.5 * x * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))


ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "relu": tf.nn.relu,
    "tanh": tf.tanh,
    "swish": tf.nn.silu,
    "silu": tf.nn.silu,
    "gelu": _gelu,
    "elu": tf.nn.elu,
    "leaky_relu": _leaky_relu,
    "softplus": _softplus,
    "sigmoid": tf.sigmoid,
}

BATCH_NORM_EPS = 1e-5
BATCH_NORM_MOMENTUM = 0.1


def periodic_pad(h: tf.Tensor, lo: int, hi: int) -> tf.Tensor:
    """Pad every lattice axis of a channels-last ``h`` ``[B, *L, C]`` periodically by ``lo``
    before and ``hi`` after: one gather per lattice axis.

    Not slices and concat: XLA on CPU (TensorFlow 2.21, fp64) miscomputes a convolution whose
    input is that padding fused into it (a 2-wide kernel on 4 channels over 8×8 and 16×16 with
    4 chains: NaN, or outputs off by 1e-3 to O(1) against eager execution). The gathered input is
    computed correctly in every case tried (lattices 6–16, 1–8 channels, kernels 2–5, 1 and 4
    chains); its gradient is a scatter-add, slower under XLA on CPU than the slices' was.
    """
    for axis in range(1, h.shape.rank - 1):
        n = int(h.shape[axis])
        h = tf.gather(h, [(j - lo) % n for j in range(n + lo + hi)], axis=axis)
    return h


def max_pool(h: tf.Tensor, size: int) -> tf.Tensor:
    """Max pooling, window = stride = ``size`` over every lattice axis (floor mode), ``[B, *L, C]``."""
    n = h.shape.rank - 2
    return tf.nn.max_pool(h, ksize=[size] * n, strides=[size] * n, padding="VALID")


def group_colors(group: Any) -> int:
    """N of the gauge group (1 for U(1)), from its ``n_generators``."""
    if group.name.upper() == "U1":
        return 1
    return round(math.sqrt(group.n_generators + 1))


def _uniform(shape: Sequence[int], bound: float, dtype: tf.DType, rng: np.random.Generator) -> Any:
    return rng.uniform(-bound, bound, size=tuple(shape)).astype(dtype.as_numpy_dtype)


def _assign(params: Mapping[str, tf.Variable], state: Mapping[str, Any]) -> None:
    """Assign every variable of ``params`` from ``state`` (same keys, same shapes)."""
    missing = set(params) - set(state)
    unexpected = set(state) - set(params)
    if missing or unexpected:
        raise KeyError(
            f"state dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
    for key, var in params.items():
        value = np.asarray(state[key])
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(f"{key}: shape {tuple(value.shape)} does not match {tuple(var.shape)}")
        var.assign(value.astype(var.dtype.as_numpy_dtype))


class LeapfrogNet(tf.Module):  # type: ignore[misc]  # tensorflow ships no type information
    """``(s, t, q)`` from (links, momenta or force); see the module docstring.

    ``heads`` names the outputs to build (``"stq"`` or ``"tq"``); a missing head, or one whose
    scale is 0, returns ``None``.  Initialisation follows torch's defaults (uniform with bound
    ``1/√fan_in``; heads times ``head_init``), drawn from numpy with ``seed``.
    """

    def __init__(
        self,
        group: Any,
        lattice_shape: Sequence[int],
        config: NetworkConfig,
        *,
        heads: str = "stq",
        dtype: tf.DType | str = tf.float64,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.config = config
        self.dtype = tf.as_dtype(dtype)
        self.lattice_shape = tuple(int(n) for n in lattice_shape)
        self.n_dim = len(self.lattice_shape)
        self.n_colors = group_colors(group)
        abelian = self.n_colors == 1
        allowed = ("auto", "cos_sin", "raw") if abelian else ("auto", "real_imag")
        if config.embedding not in allowed:
            raise ValueError(
                f"network.embedding: {config.embedding!r} does not apply to {group.name}; "
                f"use one of {allowed}"
            )
        self.raw = config.embedding == "raw"
        self.n_generators = 1 if abelian else int(group.n_generators)
        volume = math.prod(self.lattice_shape)
        self.n_links = self.n_dim * volume
        self.n_out = self.n_links * self.n_generators
        self.out_shape = (self.n_dim, *self.lattice_shape) + (
            () if abelian else (self.n_generators,)
        )
        self.channels = (1 if self.raw else 2) * self.n_dim * (1 if abelian else self.n_colors**2)
        self.act = ACTIVATIONS[config.activation]
        self.training = True
        rng = np.random.default_rng(seed)
        values: dict[str, Any] = {}

        def linear(prefix: str, n_in: int, n_out: int) -> None:
            bound = 1.0 / math.sqrt(n_in)
            values[f"{prefix}.weight"] = _uniform((n_out, n_in), bound, self.dtype, rng)
            values[f"{prefix}.bias"] = _uniform((n_out,), bound, self.dtype, rng)

        self.pads: list[tuple[int, int]] = []
        self.n_conv = len(config.conv_filters)
        if config.conv_filters:
            if self.n_dim not in (1, 2, 3):
                raise ValueError(
                    f"network.conv_filters: a conv stack needs a lattice of dimension 1 to 3, "
                    f"got {self.n_dim} (use dense layers only)"
                )
            c_in = self.channels
            extent = list(self.lattice_shape)
            for i, (c_out, k, pool) in enumerate(
                zip(config.conv_filters, config.conv_kernels, config.conv_pool, strict=True)
            ):
                fan_in = c_in * k**self.n_dim
                bound = 1.0 / math.sqrt(fan_in)
                values[f"convs.{i}.weight"] = _uniform(
                    (c_out, c_in) + (k,) * self.n_dim, bound, self.dtype, rng
                )
                values[f"convs.{i}.bias"] = _uniform((c_out,), bound, self.dtype, rng)
                same = ((k - 1) // 2, k - 1 - (k - 1) // 2)
                pad = same if config.conv_padding == "same" else (k - 1, k - 1)
                self.pads.append(pad)
                extent = [(n + pad[0] + pad[1] - k + 1) // pool for n in extent]
                c_in = c_out
            n_flat = c_in * math.prod(extent)
            linear("conv_dense", n_flat, self.n_links)
            x_features = self.n_links
        else:
            x_features = self.channels * volume
        width = config.hidden[0]
        linear("x_layer", x_features, width)
        linear("v_layer", self.n_out, width)
        for i, (a, b) in enumerate(zip(config.hidden[:-1], config.hidden[1:], strict=True)):
            linear(f"hidden_layers.{i}", a, b)
        if config.batch_norm:
            n = config.hidden[-1]
            np_dt = self.dtype.as_numpy_dtype
            values["batch_norm.weight"] = np.ones(n, np_dt)
            values["batch_norm.bias"] = np.zeros(n, np_dt)
            values["batch_norm.running_mean"] = np.zeros(n, np_dt)
            values["batch_norm.running_var"] = np.ones(n, np_dt)
            values["batch_norm.num_batches_tracked"] = np.zeros((), np.int64)
        scales = {"s": config.scale_s, "q": config.scale_q, "t": 1.0}
        self.heads = tuple(h for h in "stq" if h in heads and scales[h] > 0)
        # the heads read the last hidden layer (pt/networks.py sizes them by hidden[0], which
        # breaks for unequal widths); kaiming_uniform(a=√5) has bound
        # 1/√fan_in, as the other layers
        last = config.hidden[-1]
        blocks = [
            _uniform((self.n_out, last), 1.0 / math.sqrt(last), self.dtype, rng) * config.head_init
            for _ in self.heads
        ]
        values["head_weight"] = (
            np.concatenate(blocks, axis=0)
            if blocks
            else np.zeros((0, last), self.dtype.as_numpy_dtype)
        )
        if "t" in self.heads:
            values["t_bias"] = np.zeros(self.n_out, self.dtype.as_numpy_dtype)
        # shape (1,) as in the PyTorch runtime (DeepSpeed refuses 0-dim parameters there)
        if "s" in self.heads:
            values["s_log_scale"] = np.zeros(1, self.dtype.as_numpy_dtype)
        if "q" in self.heads:
            values["q_log_scale"] = np.zeros(1, self.dtype.as_numpy_dtype)
        buffers = ("running_mean", "running_var", "num_batches_tracked")
        #: the parameters and buffers, keyed by the PyTorch ``state_dict`` names
        self.params = {
            key: tf.Variable(
                value,
                trainable=not key.endswith(buffers),
                name=key.replace(".", "_"),
            )
            for key, value in values.items()
        }

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers as numpy arrays under the PyTorch ``state_dict`` keys."""
        return {k: v.numpy() for k, v in self.params.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Assign from numpy arrays (or torch tensors' ``.numpy()``) under the same keys."""
        _assign(self.params, state)

    def train(self, mode: bool = True) -> LeapfrogNet:
        self.training = mode
        return self

    def eval(self) -> LeapfrogNet:
        return self.train(False)

    # -- forward --------------------------------------------------------------------------
    def _linear(self, p: Mapping[str, Any], prefix: str, h: tf.Tensor) -> tf.Tensor:
        w, b = p[f"{prefix}.weight"], p[f"{prefix}.bias"]
        return tf.linalg.matmul(h, w, transpose_b=True) + b

    def _conv_features(self, p: Mapping[str, Any], h: tf.Tensor) -> tf.Tensor:
        """Conv stack on channels-last ``[B, *L, C]``; flattened channels-first."""
        n = self.n_dim
        perm = [*range(2, n + 2), 1, 0]  # [out, in, *k] → [*k, in, out]
        for i, ((lo, hi), pool) in enumerate(zip(self.pads, self.config.conv_pool, strict=True)):
            kernel = tf.transpose(p[f"convs.{i}.weight"], perm)
            h = tf.nn.convolution(periodic_pad(h, lo, hi), kernel, padding="VALID")
            h = self.act(h + p[f"convs.{i}.bias"])
            if pool > 1:
                h = max_pool(h, pool)
        if n != 2:  # the PyTorch runtime flattens 2D maps channels-last, others channels-first
            h = tf.transpose(h, [0, n + 1, *range(1, n + 1)])
        return tf.reshape(h, [tf.shape(h)[0], -1])

    def embed(self, links: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
        """Network input from the links, zero where not ``mask``: channels-first ``[B, C, *L]``
        (flattened by the dense path) without a conv stack, channels-last ``[B, *L, C]`` with
        one (same channel order as the PyTorch runtime's ``[B, C, *L]``)."""
        n = self.n_dim
        if self.raw:
            h = wrap(links)
            if mask is not None:
                h = h * mask
            return h if not self.n_conv else tf.transpose(h, [0, *range(2, n + 2), 1])
        if self.n_colors == 1:
            cos, sin = tf.cos(links), tf.sin(links)
            if mask is not None:
                cos, sin = cos * mask, sin * mask
            h = tf.concat([cos, sin], axis=1)  # [B, 2D, *L]
            if not self.n_conv:
                return h
            return tf.transpose(h, [0, *range(2, n + 2), 1])
        # the lattice axes flattened to one (same element order): TF kernels take at most 8
        # dimensions, and [B, D, *L, N, N, 2] has 9 in 4D
        nc, volume = self.n_colors, math.prod(self.lattice_shape)
        flat = tf.reshape(links, [-1, n, volume, nc, nc])
        re_im = tf.stack([tf.math.real(flat), tf.math.imag(flat)], axis=-1)  # [B,D,V,N,N,2]
        if mask is not None:
            re_im = re_im * tf.reshape(mask, [n, volume, 1, 1, 1])
        if not self.n_conv:
            return re_im
        h = tf.transpose(re_im, [0, 2, 1, 3, 4, 5])  # [B, V, D, N, N, 2]
        return tf.reshape(h, [tf.shape(links)[0], *self.lattice_shape, self.channels])

    def _batch_norm(self, p: Mapping[str, Any], z: tf.Tensor, training: bool) -> tf.Tensor:
        if training:
            mean = tf.reduce_mean(z, axis=0)
            var = tf.reduce_mean(tf.square(z - mean), axis=0)
            n = tf.cast(tf.shape(z)[0], z.dtype)
            m = BATCH_NORM_MOMENTUM
            p["batch_norm.running_mean"].assign(
                (1.0 - m) * p["batch_norm.running_mean"] + m * tf.stop_gradient(mean)
            )
            p["batch_norm.running_var"].assign(
                (1.0 - m) * p["batch_norm.running_var"] + m * tf.stop_gradient(var) * n / (n - 1.0)
            )
            p["batch_norm.num_batches_tracked"].assign_add(1)
        else:
            mean, var = p["batch_norm.running_mean"], p["batch_norm.running_var"]
        z = (z - mean) / tf.sqrt(var + BATCH_NORM_EPS)
        return z * p["batch_norm.weight"] + p["batch_norm.bias"]

    def __call__(
        self,
        links: tf.Tensor,
        other: tf.Tensor,
        mask: tf.Tensor | None = None,
        *,
        training: bool | None = None,
        generator: tf.random.Generator | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[tf.Tensor | None, tf.Tensor | None, tf.Tensor | None]:
        """``(s, t, q)`` for ``links`` (masked by ``mask`` ``[D, *L]``, real 0/1) and ``other``
        (the momentum for x-networks, the force for v-networks; shape of ``v``).  ``params``
        (default ``self.params``) are the variables to use: another network's of the same
        architecture, so that one traced function serves every layer."""
        training = self.training if training is None else training
        p = self.params if params is None else params
        batch = tf.shape(links)[0]
        h = self.embed(links, mask)
        if self.n_conv:
            h = self.act(self._linear(p, "conv_dense", self._conv_features(p, h)))
        else:
            h = tf.reshape(h, [batch, -1])
        z = self.act(
            self._linear(p, "x_layer", h)
            + self._linear(p, "v_layer", tf.reshape(other, [batch, -1]))
        )
        for i in range(len(self.config.hidden) - 1):
            z = self.act(self._linear(p, f"hidden_layers.{i}", z))
        if self.config.dropout > 0 and training:
            gen = generator if generator is not None else tf.random.get_global_generator()
            keep = gen.uniform(tf.shape(z), dtype=z.dtype) >= self.config.dropout
            z = tf.where(keep, z / (1.0 - self.config.dropout), tf.zeros_like(z))
        if self.config.batch_norm:
            z = self._batch_norm(p, z, training)
        out = tf.linalg.matmul(z, p["head_weight"], transpose_b=True)
        parts = (
            dict(zip(self.heads, tf.split(out, len(self.heads), axis=1), strict=True))
            if self.heads
            else {}
        )
        shape = tf.concat([[batch], tf.constant(self.out_shape, tf.int32)], axis=0)
        s = t = q = None
        if "s" in self.heads:
            lam = self.config.scale_s * tf.exp(p["s_log_scale"])
            s = tf.reshape(lam * tf.tanh(parts["s"]), shape)
        if "t" in self.heads:
            t = tf.reshape(parts["t"] + p["t_bias"], shape)
        if "q" in self.heads:
            lam = self.config.scale_q * tf.exp(p["q_log_scale"])
            q = tf.reshape(lam * tf.tanh(parts["q"]), shape)
        return s, t, q


def XNet(
    group: Any, lattice_shape: Sequence[int], config: NetworkConfig, **kwargs: Any
) -> LeapfrogNet:
    """The network of one x update: U1 heads s, t, q; SU(N) heads t, q."""
    heads = "stq" if group_colors(group) == 1 else "tq"
    return LeapfrogNet(group, lattice_shape, config, heads=heads, **kwargs)


def VNet(
    group: Any, lattice_shape: Sequence[int], config: NetworkConfig, **kwargs: Any
) -> LeapfrogNet:
    """The network of one v half step: heads s, t, q; dense only."""
    return LeapfrogNet(
        group, lattice_shape, replace(config, conv_filters=()), heads="stq", **kwargs
    )


def lattice_laplacian(shape: Sequence[int]) -> np.ndarray:
    """``λ(k) = Σ_d 4 sin²(k_d/2)``, ``k_d = 2π n_d / L_d``, on the half spectrum of an
    ``rfft`` over the lattice dimensions (the last one ``L // 2 + 1`` long); float64."""
    n_dim = len(shape)
    lap = np.zeros([*shape[:-1], shape[-1] // 2 + 1])
    for d, n in enumerate(shape):
        count = n // 2 + 1 if d == n_dim - 1 else n
        k = 2 * math.pi * np.arange(count) / n
        lap = lap + (4 * np.sin(k / 2) ** 2).reshape([-1 if j == d else 1 for j in range(n_dim)])
    return lap


class LocalNet(tf.Module):  # type: ignore[misc]  # tensorflow ships no type information
    """The v-network of ``network local`` (U1; mirror of ``pt/networks.py``'s ``LocalNet``):
    ``(s, t, q)`` per link from the plaquettes around it, the same function at every site.

    With plaquette angles ``θ_p(n)`` of the planes ``p = (μ, ν)``, ``μ < ν`` (``lattice.planes``):

        c(n) = [cos θ_p(n), sin θ_p(n)]_p                       (2P channels per site)
        h = act(conv_i(periodic_pad(h)))  for each conv layer    (h = c without a conv stack)
        f_μ(n) = [h(n), h(n − ν̂)]  for ν ≠ μ ascending          (the two plaquettes of plane
                                                                  {μ, ν} that hold the link)
        z = act(W_i z + b_i)  over ``hidden``,  o = W_h z + b_h
        s = λ_s tanh(o_s),  t = o_t,  q = λ_q tanh(o_q)          (shape ``[B, D, *L]``)

    Gauge invariant (``θ_p`` is) and translation equivariant; there are no x-networks with
    this kind (the x updates are the drift ``x + ε v``). Variables under the PyTorch names and
    layouts: ``convs.<i>.weight`` ``[out, in, *k]``/``.bias``, ``dense.<i>.weight``
    ``[out, in]``/``.bias``, ``head.weight`` ``[n_heads, hidden[-1]]`` and ``head.bias`` (rows:
    the heads present, in the order s, t, q), ``s_log_scale``/``q_log_scale`` ``[1]``.
    Initialisation as torch's layers (uniform, bound ``1/√fan_in``), drawn from numpy with
    ``seed``; the head weights times ``head_init`` and the head bias 0 (``head_init = 0``: the
    ε-only sampler until trained). Internally channels-last ``[B, *L, C]``.
    """

    def __init__(
        self,
        group: Any,
        lattice_shape: Sequence[int],
        config: NetworkConfig,
        *,
        dtype: tf.DType | str = tf.float64,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if group_colors(group) != 1:
            raise ValueError(f"network local: implemented for U1 only, not {group.name}")
        self.config = config
        self.dtype = tf.as_dtype(dtype)
        self.lattice_shape = tuple(int(n) for n in lattice_shape)
        self.n_dim = len(self.lattice_shape)
        if self.n_dim < 2:
            raise ValueError("network local: a lattice of dimension >= 2 (it reads plaquettes)")
        if any(p != 1 for p in config.conv_pool) or config.conv_padding != "same":
            raise ValueError("network local: conv pool must be 1 and padding 'same'")
        self.act = ACTIVATIONS[config.activation]
        self.planes = planes(self.n_dim)
        self.training = True
        rng = np.random.default_rng(seed)
        values: dict[str, Any] = {}

        def uniform(key: str, shape: Sequence[int], fan_in: int) -> None:
            values[key] = _uniform(shape, 1.0 / math.sqrt(fan_in), self.dtype, rng)

        c_in = 2 * len(self.planes)
        self.pads: list[tuple[int, int]] = []
        kernels = config.conv_kernels if config.conv_filters else ()
        for i, (c_out, k) in enumerate(zip(config.conv_filters, kernels, strict=True)):
            if self.n_dim not in (2, 3):
                raise ValueError(
                    f"network local: a conv stack needs a lattice of dimension 2 or 3, "
                    f"got {self.n_dim}"
                )
            fan_in = c_in * k**self.n_dim
            uniform(f"convs.{i}.weight", (c_out, c_in) + (k,) * self.n_dim, fan_in)
            uniform(f"convs.{i}.bias", (c_out,), fan_in)
            self.pads.append(((k - 1) // 2, k - 1 - (k - 1) // 2))
            c_in = c_out
        widths = (2 * (self.n_dim - 1) * c_in, *config.hidden)
        for i, (a, b) in enumerate(itertools.pairwise(widths)):
            uniform(f"dense.{i}.weight", (b, a), a)
            uniform(f"dense.{i}.bias", (b,), a)
        scales = {"s": config.scale_s, "t": 1.0, "q": config.scale_q}
        self.heads = tuple(h for h in "stq" if scales[h] > 0)
        last = config.hidden[-1]
        uniform("head.weight", (len(self.heads), last), last)
        values["head.weight"] = values["head.weight"] * config.head_init
        values["head.bias"] = np.zeros(len(self.heads), self.dtype.as_numpy_dtype)
        for h in "sq":
            if h in self.heads:
                values[f"{h}_log_scale"] = np.zeros(1, self.dtype.as_numpy_dtype)
        #: the parameters, keyed by the PyTorch ``state_dict`` names
        self.params = {
            key: tf.Variable(value, name=key.replace(".", "_")) for key, value in values.items()
        }

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters as numpy arrays under the PyTorch ``state_dict`` keys."""
        return {k: v.numpy() for k, v in self.params.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Assign from numpy arrays under the same keys."""
        _assign(self.params, state)

    def train(self, mode: bool = True) -> LocalNet:
        self.training = mode
        return self

    def eval(self) -> LocalNet:
        return self.train(False)

    # -- forward --------------------------------------------------------------------------
    def link_features(self, links: tf.Tensor, params: Mapping[str, Any] | None = None) -> tf.Tensor:
        """``f`` ``[B, D, *L, 2(D−1)C]``: the features of the two plaquette sites of every plane
        through each link (see the class docstring)."""
        p = self.params if params is None else params
        n = self.n_dim
        theta = [plaquette_field(links, mu, nu) for mu, nu in self.planes]
        h = tf.stack([tf.cos(t) for t in theta] + [tf.sin(t) for t in theta], axis=-1)
        perm = [*range(2, n + 2), 1, 0]  # [out, in, *k] → [*k, in, out]
        for i, (lo, hi) in enumerate(self.pads):
            kernel = tf.transpose(p[f"convs.{i}.weight"], perm)
            h = tf.nn.convolution(periodic_pad(h, lo, hi), kernel, padding="VALID")
            h = self.act(h + p[f"convs.{i}.bias"])
        per_mu = []
        for mu in range(n):
            parts = []
            for nu in range(n):
                if nu != mu:
                    parts += [h, tf.roll(h, shift=1, axis=1 + nu)]  # h(n), h(n − ν̂)
            per_mu.append(tf.concat(parts, axis=-1))
        return tf.stack(per_mu, axis=1)

    def __call__(
        self,
        links: tf.Tensor,
        other: tf.Tensor | None = None,
        mask: tf.Tensor | None = None,
        *,
        training: bool | None = None,
        generator: tf.random.Generator | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[tf.Tensor | None, tf.Tensor | None, tf.Tensor | None]:
        """``(s, t, q)`` ``[B, D, *L]`` from the links (``other``, ``mask``, ``training`` and
        ``generator``: unused, the signature of ``LeapfrogNet``). ``params`` (default
        ``self.params``): another local network's variables of the same architecture."""
        p = self.params if params is None else params
        f = self.link_features(links, p)
        z = tf.reshape(f, [-1, f.shape[-1]])  # every link a row: one matmul per layer
        for i in range(len(self.config.hidden)):
            w, b = p[f"dense.{i}.weight"], p[f"dense.{i}.bias"]
            z = self.act(tf.linalg.matmul(z, w, transpose_b=True) + b)
        o = tf.linalg.matmul(z, p["head.weight"], transpose_b=True) + p["head.bias"]
        shape = tf.shape(f)[:-1]
        out = {h: tf.reshape(o[:, j], shape) for j, h in enumerate(self.heads)}
        s = q = None
        if "s" in self.heads:
            s = (self.config.scale_s * tf.exp(p["s_log_scale"])) * tf.tanh(out["s"])
        if "q" in self.heads:
            q = (self.config.scale_q * tf.exp(p["q_log_scale"])) * tf.tanh(out["q"])
        return s, out["t"], q
