"""The networks of the generalized leapfrog: ``(s, t, q)`` for one x or v update.

One ``LeapfrogNet`` computes, for a batch of configurations,

    z = act(W_x · embed(links) + W_v · flatten(other))      (+ hidden layers, dropout, batch norm)
    s = λ_s tanh(W_s z),   t = W_t z + b_t,   q = λ_q tanh(W_q z)

with learnable ``λ_s = scale_s · exp(a_s)``, ``λ_q = scale_q · exp(a_q)`` (``a`` starts at 0).
The outputs have the momentum shape: U1 ``[B, D, *L]``, SU(N) ``[B, D, *L, N²−1]``.

* x-networks (``XNet``) see the links held fixed in the update (``mask`` true) and the momenta
  ``v``; the links being updated are zeroed in the embedding, so the Jacobian of the update
  stays triangular. For SU(N) they have no ``s`` head (the group update has no scaling).
* v-networks (``VNet``) see all links and the force ``∂S/∂ω`` (same shape as ``v``); they are
  dense (the conv stack, as in the seed, belongs to the x-networks).

Embeddings: U1 ``cos_sin`` (default): ``cos x, sin x`` as ``2D`` channels (smooth and periodic);
U1 ``raw``: the angles ``wrap(x) ∈ [−π, π)`` as ``D`` channels (a function of the point on the
circle, discontinuous at ±π; wrapping keeps the forward and inverse maps seeing the same
input, so the sampler stays exact); SU(N) ``real_imag``: the real and imaginary parts of the link
matrices, ``2·D·N²`` channels.

The optional convolution stack runs over the lattice axes with circular (periodic) padding and
ends, as in the seed's network, with a dense layer to the lattice size (``D·|L|``) before the
``W_x`` projection. ``conv_padding = "same"`` keeps the lattice extent (total padding k−1);
``"full"`` pads k−1 on *each* side, which grows the extent by k−1 per layer: this is what the
seed (l2hmc 0.13) does, kept only so that benchmarks can run its architecture unchanged.
Such an output is periodic with the period of its input, so only its distinct values are
computed (``LeapfrogNet._conv_stack``, ``_conv_dense_out``): the same function, with about 0.7
of the seed network's convolution work and 0.64 of its dense layer's.

Parameters (``state_dict`` keys of one network, in the order the forward pass uses them):

* ``convs.<i>.weight`` ``[C_out, C_in, k, …]`` and ``.bias`` (2D: stored channels-last);
  input channels: U1 ``cos x_μ`` for μ = 0…D−1 then ``sin x_μ`` (``raw``: ``x_μ``); SU(N)
  ``(μ, row, column, re/im)`` flattened in that order;
* ``conv_dense.weight`` ``[D·|L|, n_flat]``, ``.bias``: the conv output is flattened in memory
  order, i.e. channels last ``(*L, C)`` for 2D lattices, channels first ``(C, *L)`` otherwise;
* ``x_layer`` ``[hidden[0], n_x]``: without convs ``n_x`` is the embedding flattened as U1
  ``(channel, *L)``, SU(N) ``(μ, *L, row, column, re/im)``; ``v_layer`` ``[hidden[0], n_out]``
  (momentum/force flattened as ``[D, *L(, N²−1)]``); ``hidden_layers.<i>``; ``batch_norm.*``;
* ``head_weight`` ``[n_heads · n_out, hidden[-1]]``: the blocks of the heads present, in the
  order s, t, q; ``t_bias`` ``[n_out]``; ``s_log_scale``, ``q_log_scale`` ``[1]``: ``log`` of
  ``λ/scale`` (``λ = scale · exp(a)``).

All ``Linear`` weights are ``[out, in]``.

At initialisation the head weights are the default (Kaiming-uniform) ones times ``head_init``
(default 0.01), so an untrained layer is close to, but not exactly, a plain leapfrog step;
``head_init = 0`` gives exact zeros (plain leapfrog bit-for-bit, used by the tests).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypedDict, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..common.config import ACTIVATION_NAMES, EMBEDDINGS, NetworkConfig, seed_u1_network
from .groups import wrap
from .lattice import planes, plaquette_field
from .su_pairs import links_view

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "EMBEDDINGS",
    "LeapfrogNet",
    "LocalNet",
    "NetworkConfig",
    "VNet",
    "XNet",
    "group_colors",
    "lattice_laplacian",
    "max_pool",
    "new_pass",
    "periodic_pad",
    "seed_u1_network",
    "tanh",
]

#: The activations (``common.config.ACTIVATION_NAMES``: the configs validate against those).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
}

_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class _Factory(TypedDict):
    """The ``dtype`` and ``device`` keywords of every layer and tensor a network creates."""

    dtype: torch.dtype
    device: torch.device | str | None


def periodic_pad(h: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Pad every lattice axis (axes 2…) of ``h`` periodically by ``lo`` before and ``hi`` after.

    Concatenation keeps the channels-last layout that the 2D convolutions run fastest in
    (``F.pad(mode="circular")`` returns a contiguous tensor).
    """
    for axis in range(2, h.dim()):
        n = h.shape[axis]
        parts = [h.narrow(axis, n - lo, lo)] if lo else []
        parts.append(h)
        if hi:
            parts.append(h.narrow(axis, 0, hi))
        h = torch.cat(parts, dim=axis)
    return h


def max_pool(h: torch.Tensor, size: int) -> torch.Tensor:
    """Max pooling with window = stride = ``size`` over every lattice axis (floor mode).

    The native kernels (fast on channels-last input, with a cheap index-based backward)."""
    pool = {3: F.max_pool1d, 4: F.max_pool2d, 5: F.max_pool3d}[h.dim()]
    return pool(h, size)


#: the current pass (``new_pass``): a folded dense weight is reused within one pass only
_PASS = [0]


def new_pass() -> None:
    """Start a new pass of the networks (``Dynamics.propose`` calls it once per proposal, in
    which the weights do not change): folded dense weights (``LeapfrogNet._folded_weight``)
    are not reused across passes, whatever writes the weights in between (an optimizer or a
    collective that writes ``.data`` does not change the version counter they are keyed on)."""
    _PASS[0] += 1


#: activations that commute with a max-pool (non-decreasing and exactly so in floating point)
_POOL_COMMUTES = frozenset({"relu", "leaky_relu"})

_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class _CircularConv(torch.autograd.Function):
    """``conv(periodic_pad(h, lo, hi), weight, bias)`` (stride 1, no other padding, ``lo + hi =
    k − 1``): a circular convolution, whose output has the lattice extent of ``h``.

    Its backward-data is the circular correlation of the output gradient with the flipped,
    transposed kernel (padding ``hi`` before and ``lo`` after), which computes the gradient at
    the ``n`` positions of ``h`` directly; autograd's would compute it at the ``n + k − 1``
    positions of the padded input and then fold the padding back (``conv_transpose`` of the
    padded extent). The weight and bias gradients are oneDNN's (``convolution_backward``)."""

    @staticmethod
    def forward(
        ctx: Any, h: Tensor, weight: Tensor, bias: Tensor | None, lo: int, hi: int
    ) -> Tensor:
        padded = periodic_pad(h, lo, hi)
        ctx.save_for_backward(padded, weight)
        ctx.pads = (lo, hi)
        ctx.has_bias = bias is not None
        return _CONV_FN[h.dim() - 2](padded, weight, bias)

    @staticmethod
    def backward(
        ctx: Any, grad: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, None, None]:
        padded, weight = ctx.saved_tensors
        lo, hi = ctx.pads
        n_dim = weight.dim() - 2
        grad_h = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            flipped = weight.flip(tuple(range(2, weight.dim()))).transpose(0, 1)
            if n_dim == 2:
                flipped = flipped.contiguous(memory_format=torch.channels_last)
                grad = grad.contiguous(memory_format=torch.channels_last)
            grad_h = _CONV_FN[n_dim](periodic_pad(grad, hi, lo), flipped)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            mask = [False, ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad,
                padded,
                weight,
                [weight.shape[0]] if ctx.has_bias else None,
                [1] * n_dim,
                [0] * n_dim,
                [1] * n_dim,
                False,
                [0] * n_dim,
                1,
                mask,
            )
        return grad_h, grad_w, grad_b, None, None


def _fold_periodic(w: Tensor, axes: Sequence[int], extend: int) -> Tensor:
    """``w`` (extent ``n + extend`` along each of ``axes``) summed onto its first ``n`` entries
    along each axis, entry ``n + j`` onto ``j``: the adjoint of ``_extend_periodic``."""
    core = w
    for axis in axes:
        core = core.narrow(axis, 0, w.shape[axis] - extend)
    out = core.clone(memory_format=torch.preserve_format)  # channels last stays so
    for tails in itertools.product((False, True), repeat=len(axes)):
        if not any(tails):
            continue
        src, dst = w, out
        for axis, tail in zip(axes, tails, strict=True):
            n = w.shape[axis] - extend
            src = src.narrow(axis, n, extend) if tail else src.narrow(axis, 0, n)
            if tail:
                dst = dst.narrow(axis, 0, extend)
        dst += src
    return out


def _extend_periodic(t: Tensor, axes: Sequence[int], extend: int) -> Tensor:
    """``t`` extended periodically by its first ``extend`` entries after the end of each axis."""
    shape = list(t.shape)
    for axis in axes:
        shape[axis] += extend
    channels_last = (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    )
    layout = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty(shape, dtype=t.dtype, device=t.device, memory_format=layout)
    core = out
    for axis in axes:
        core = core.narrow(axis, 0, t.shape[axis])
    core.copy_(t)
    for i, axis in enumerate(axes):
        region = out
        for other in axes[i + 1 :]:
            region = region.narrow(other, 0, t.shape[other])
        n = t.shape[axis]
        region.narrow(axis, n, extend).copy_(region.narrow(axis, 0, extend))
    return out


class _Extend(torch.autograd.Function):
    """``_extend_periodic(t, axes, extend)``, whose backward is the fold of the gradient."""

    @staticmethod
    def forward(ctx: Any, t: Tensor, axes: tuple[int, ...], extend: int) -> Tensor:
        ctx.axes, ctx.extend = axes, extend
        return _extend_periodic(t, axes, extend)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        return _fold_periodic(g, ctx.axes, ctx.extend), None, None


class _Fold(torch.autograd.Function):
    """``_fold_periodic(w, axes, extend)``, whose backward is the extension of the gradient
    (one copy; autograd's of the slices and sums would allocate and add every slice)."""

    @staticmethod
    def forward(ctx: Any, w: Tensor, axes: tuple[int, ...], extend: int) -> Tensor:
        ctx.axes, ctx.extend = axes, extend
        return _fold_periodic(w, axes, extend)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        return _extend_periodic(g, ctx.axes, ctx.extend), None, None


def _fold(w: Tensor, axes: tuple[int, ...], extend: int) -> Tensor:
    """``_fold_periodic(w, axes, extend)``: in eager mode as ``_Fold``; inside a compiled graph
    as sums and concatenations, which inductor fuses into one kernel (the in-place sums of
    ``_fold_periodic`` and the copies of its backward become a copy of the whole tensor each
    there)."""
    if not torch.compiler.is_compiling():
        out: Tensor = _Fold.apply(w, axes, extend)  # type: ignore[no-untyped-call]
        return out
    for axis in axes:
        n = w.shape[axis] - extend
        head = w.narrow(axis, 0, extend) + w.narrow(axis, n, extend)
        w = torch.cat([head, w.narrow(axis, extend, n - extend)], dim=axis)
    return w


def _extend(h: Tensor, extend: int) -> Tensor:
    """``periodic_pad(h, 0, extend)``: in eager mode as ``_Extend`` (a copy into one new tensor
    of ``h``'s layout, and a fold back as its backward, where the concatenations' backward
    allocates, copies and sums a tensor per slice; 0.93x the time of a seed x-network's forward
    and backward); inside a compiled graph as the concatenations, which inductor fuses."""
    if torch.compiler.is_compiling():
        return periodic_pad(h, 0, extend)
    out: Tensor = _Extend.apply(h, tuple(range(2, h.dim())), extend)  # type: ignore[no-untyped-call]
    return out


def circular_conv(h: Tensor, conv: nn.Module, lo: int, hi: int) -> Tensor:
    """``conv(periodic_pad(h, lo, hi))`` for a ``Conv1d``/``2d``/``3d`` module without padding
    (``lo + hi = k − 1``), with the direct backward of ``_CircularConv``."""
    out: Tensor = _CircularConv.apply(h, conv.weight, conv.bias, lo, hi)  # type: ignore[no-untyped-call]
    return out


def tanh(a: Tensor) -> Tensor:
    """``tanh a`` as ``e / (e + 2)`` with ``e = expm1(2a)`` (``|a|`` clamped at 20, where tanh is
    ±1 to double precision, so that ``expm1`` cannot overflow).

    The same function to rounding, with the accuracy of ``expm1`` near 0; one ``expm1`` and one
    division vectorise about three times faster than ``tanh`` on CPU (fp32 and fp64, compiled
    and eager). Half precisions keep ``torch.tanh`` (``expm1(40)`` overflows them).
    """
    if a.dtype not in (torch.float32, torch.float64):
        return torch.tanh(a)
    e = torch.expm1(2.0 * a.clamp(-20.0, 20.0))
    return e / (e + 2.0)


def _conv_taps(
    conv: nn.Conv1d | nn.Conv2d | nn.Conv3d, padded: Tensor, extent: Sequence[int]
) -> Tensor:
    """``conv(padded)`` (no padding, stride 1) as a sum of shifted products, ``b_o + Σ_{c,k}
    w_{o,c,k} padded_c(n + k)``: inside a compiled graph pointwise code that inductor fuses with
    the activation after it and with the periodic padding, where a convolution with a few
    channels (``network local``'s: 2 in, 8 out) is an extern oneDNN call at a fraction of the
    core's peak (slower still in fp64, where aten has no fast convolution). ``extent``: the lattice
    shape of the output. Used without gradients only: the train step's backward of the taps
    measured slower than oneDNN's (fp64 0.89×, fp32 1.01× with the taps in both passes)."""
    weight, bias = conv.weight, conv.bias
    n_dim = len(extent)
    per_channel = (1, -1) + (1,) * n_dim  # a weight column broadcast over [B, C_out, *L]
    assert bias is not None  # the convolutions of LocalNet have one
    out = bias.reshape(per_channel)
    for tap in itertools.product(*(range(k) for k in weight.shape[2:])):
        window = padded
        for axis, offset in enumerate(tap):
            window = window.narrow(2 + axis, offset, extent[axis])
        for c in range(weight.shape[1]):
            column = weight.select(1, c)
            for offset in tap:
                column = column.select(1, offset)
            out = out + column.reshape(per_channel) * window[:, c : c + 1]
    return out


def group_colors(group: Any) -> int:
    """N of the gauge group (1 for U(1)), from its ``n_generators`` (N² − 1, or 1 for U(1))."""
    if group.name.upper() == "U1":
        return 1
    return round(math.sqrt(group.n_generators + 1))


def _blocks(index: Tensor, size: int) -> Tensor:
    """The entries ``i·size … i·size + size − 1`` for every ``i`` of ``index``, in order (the
    features or head rows of the links ``index`` when each link has ``size`` of them)."""
    if size == 1:
        return index
    return (index[:, None] * size + torch.arange(size, device=index.device)).flatten()


class LeapfrogNet(nn.Module):
    """``(s, t, q)`` from (links, momenta or force); see the module docstring.

    ``heads`` names the outputs to build (``"stq"`` or ``"tq"``); a missing head, or one whose
    scale is 0, returns ``None``. With a ``mask``, the links where it is 0 are zeroed in the
    embedding (x-networks: the links being updated).
    """

    def __init__(
        self,
        group: Any,
        lattice_shape: Sequence[int],
        config: NetworkConfig,
        *,
        heads: str = "stq",
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
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
        channels = (1 if self.raw else 2) * self.n_dim * (1 if abelian else self.n_colors**2)
        factory: _Factory = {"dtype": dtype, "device": device}
        self.act = ACTIVATIONS[config.activation]()

        self.convs = nn.ModuleList()
        self.pads: list[tuple[int, int]] = []
        if config.conv_filters:
            if self.n_dim not in _CONV:
                raise ValueError(
                    f"network.conv_filters: a conv stack needs a lattice of dimension 1 to 3, "
                    f"got {self.n_dim} (use dense layers only)"
                )
            c_in = channels
            for c_out, k in zip(config.conv_filters, config.conv_kernels, strict=True):
                conv = _CONV[self.n_dim](c_in, c_out, k, **factory)
                if self.n_dim == 2:
                    # Module.to's stubs omit memory_format, which it accepts like Tensor.to
                    conv = conv.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
                self.convs.append(conv)
                same = ((k - 1) // 2, k - 1 - (k - 1) // 2)
                self.pads.append(same if config.conv_padding == "same" else (k - 1, k - 1))
                c_in = c_out
            with torch.no_grad():
                probe = torch.zeros(1, channels, *self.lattice_shape, **factory)
                n_flat = self._conv_features(probe).shape[1]
            self.conv_dense: nn.Linear | None = nn.Linear(n_flat, self.n_links, **factory)
            x_features = self.n_links
        else:
            self.conv_dense = None
            x_features = channels * volume
        self.x_layer = nn.Linear(x_features, config.hidden[0], **factory)
        self.v_layer = nn.Linear(self.n_out, config.hidden[0], **factory)
        self.hidden_layers = nn.ModuleList(
            nn.Linear(a, b, **factory)
            for a, b in zip(config.hidden[:-1], config.hidden[1:], strict=True)
        )
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else None
        self.batch_norm = (
            nn.BatchNorm1d(config.hidden[-1], **factory) if config.batch_norm else None
        )

        scales = {"s": config.scale_s, "q": config.scale_q, "t": 1.0}
        self.heads = tuple(h for h in "stq" if h in heads and scales[h] > 0)
        # One fused weight for all heads (a single matmul); only t has a bias, as in the seed.
        width = config.hidden[-1]
        self.head_weight = nn.Parameter(torch.empty(len(self.heads) * self.n_out, width, **factory))
        for i in range(len(self.heads)):
            block = torch.empty(self.n_out, width, **factory)
            nn.init.kaiming_uniform_(block, a=math.sqrt(5))
            with torch.no_grad():
                self.head_weight[i * self.n_out : (i + 1) * self.n_out] = block * config.head_init
        self.t_bias = (
            nn.Parameter(torch.zeros(self.n_out, **factory)) if "t" in self.heads else None
        )
        # shape (1,), not (): DeepSpeed broadcasts parameters as bytes, which 0-dim tensors refuse
        self.s_log_scale = nn.Parameter(torch.zeros(1, **factory)) if "s" in self.heads else None
        self.q_log_scale = nn.Parameter(torch.zeros(1, **factory)) if "q" in self.heads else None
        #: the last folded dense weight (``_folded_weight``) and the state it was folded from
        self._fold_cache: tuple[tuple[int, int, int, bool], Tensor] | None = None

    def _folded_weight(self, w: Tensor, axes: tuple[int, ...], extend: int) -> Tensor:
        """``_fold(w, axes, extend)``, reused in eager mode within one pass (``new_pass``) while
        the weight is unchanged (same storage and version) and the grad mode is the same: a
        proposal calls each x-network twice (forward and backward transport), and with gradients
        both calls' weight gradients then meet at the one fold, whose backward extends their sum
        once."""
        if torch.compiler.is_compiling():
            return _fold(w, axes, extend)
        key = (_PASS[0], w.data_ptr(), w._version, torch.is_grad_enabled())
        if self._fold_cache is None or self._fold_cache[0] != key:
            self._fold_cache = (key, _fold(w, axes, extend))
        return self._fold_cache[1]

    def _conv_stack(self, h: Tensor) -> tuple[Tensor, int]:
        """The conv stack's output ``[B, C, *L']`` (channels last in 2D) and how far it still has
        to be extended periodically along every lattice axis (``_extend_periodic``) to be the
        stack's output as defined (0 unless ``conv_padding = "full"`` and no pool at the end).

        Every convolution is circular (``circular_conv``): with ``"full"`` padding (``k − 1`` on
        each side of an input of extent ``n``) the output, of extent ``n + k − 1``, is periodic
        with period ``n``, so its ``n`` distinct values are computed (padding ``k − 1`` before
        only) and then extended by ``k − 1``, which the activation commutes with; the last
        layer's extension is left to the dense layer (``_conv_dense_out``). A pool of the
        extension is the extension of the pool when it divides the extent (``_pool``)."""
        if self.n_dim == 2:
            h = h.contiguous(memory_format=torch.channels_last)
        full = self.config.conv_padding == "full"
        last = len(self.convs) - 1
        layers = zip(self.convs, self.pads, self.config.conv_pool, strict=True)
        for i, (conv, (lo, hi), pool) in enumerate(layers):
            extend = hi if full else 0
            h = circular_conv(h, conv, lo, hi - extend)
            if pool > 1:
                h, extend = self._pool(h, extend, pool)
            else:
                h = self.act(h)
            if i == last:
                return h, extend
            if extend:
                h = _extend(h, extend)
        raise AssertionError("no conv stack")

    def _pool(self, h: Tensor, extend: int, pool: int) -> tuple[Tensor, int]:
        """``max_pool(_extend(act(h), extend), pool)`` as ``(pooled, extension still owed)``.

        Where ``pool`` divides every extent ``n`` of ``h``, the pooled windows past ``n`` are
        those of the first rows again, so ``h`` is pooled and the extension
        ``(n + extend) // pool − n // pool`` is owed instead of copying the larger tensor first
        (seed network: 22 → 11, extension 1, where 25 → 12 was pooled). A non-decreasing
        activation (``_POOL_COMMUTES``) is applied after the pool, to the smaller tensor: the
        same values, and the same gradient (the same window maxima)."""
        after = self.config.activation in _POOL_COMMUTES
        if not after:
            h = self.act(h)
        sizes = h.shape[2:]
        owed = {(n + extend) // pool - n // pool for n in sizes}
        divides = all(n % pool == 0 for n in sizes) and len(owed) == 1
        if extend and divides and max(owed) <= min(sizes) // pool:
            extend = owed.pop()
        else:
            if extend:
                h = _extend(h, extend)
            extend = 0
        h = max_pool(h, pool)
        return (self.act(h) if after else h), extend

    def _conv_features(self, h: Tensor) -> Tensor:
        """The conv stack's output flattened in memory order: channels last ``(*L, C)`` in 2D
        (a view, where flatten(1) of a channels-last tensor would copy), else ``(C, *L)``."""
        h, extend = self._conv_stack(h)
        if extend:
            h = periodic_pad(h, 0, extend)
        return self._flat(h)

    def _flat(self, h: Tensor) -> Tensor:
        """``h`` ``[B, C, *L]`` flattened in memory order: ``(*L, C)`` in 2D (channels last, a
        view where flatten(1) would copy), else ``(C, *L)``."""
        return (h.permute(0, 2, 3, 1) if self.n_dim == 2 else h).flatten(1)

    def _conv_dense_out(self, h: Tensor) -> Tensor:
        """``act(conv_dense(_conv_features(h)))`` from the embedding ``h``. Where the stack's
        output is a periodic extension (``_conv_stack``), the dense layer reads its distinct
        values with the weight columns of the repeated ones summed onto theirs (``_Fold``): the
        same sum over fewer features (seed network: 4 608 instead of 7 200)."""
        assert self.conv_dense is not None
        h, extend = self._conv_stack(h)
        if not extend:
            dense: Tensor = self.act(self.conv_dense(self._flat(h)))
            return dense
        weight = self.conv_dense.weight
        lattice = [n + extend for n in h.shape[2:]]
        if self.n_dim == 2:  # features (*L, C), the channels-last memory order
            w = weight.view(weight.shape[0], *lattice, h.shape[1])
            axes = tuple(range(1, 1 + self.n_dim))
        else:
            w = weight.view(weight.shape[0], h.shape[1], *lattice)
            axes = tuple(range(2, 2 + self.n_dim))
        folded = self._folded_weight(w, axes, extend)
        out: Tensor = self.act(F.linear(self._flat(h), folded.flatten(1), self.conv_dense.bias))
        return out

    def embed(self, links: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Network input from the links: ``[B, C, *L]`` (channels first), zero where not ``mask``."""
        if self.raw:
            angles = wrap(links)
            return angles if mask is None else angles * mask
        if self.n_colors == 1:
            cos, sin = torch.cos(links), torch.sin(links)
            if mask is not None:
                cos, sin = cos * mask, sin * mask
            return torch.cat([cos, sin], dim=1)
        # complex links, or planar (re, im) pairs [N, N, 2, B, D, *L] in compiled layers
        re_im = torch.view_as_real(links) if links.is_complex() else links_view(links)
        # re_im: [B, D, *L, N, N, 2]
        if mask is not None:
            re_im = re_im * mask[..., None, None, None]
        if self.conv_dense is None:
            return re_im  # flattened as is: the order of features does not matter to a dense layer
        n = self.n_dim
        perm = (0, 1, n + 2, n + 3, n + 4, *range(2, n + 2))
        return re_im.permute(perm).reshape(re_im.shape[0], -1, *self.lattice_shape)

    def forward(
        self, links: torch.Tensor, other: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """``(s, t, q)`` for ``links`` (masked by ``mask`` ``[D, *L]``, real 0/1) and ``other``.

        ``other`` is the momentum (x-networks) or the force (v-networks), shape of ``v``.
        """
        h = self.embed(links, mask)
        h = self._conv_dense_out(h) if self.conv_dense is not None else h.flatten(1)
        z = self._hidden(self.x_layer(h), other)
        out = F.linear(z, self.head_weight)
        return self._outputs(out, self.t_bias, (other.shape[0], *self.out_shape))

    def forward_moved(
        self, links: Tensor, other: Tensor, mask: Tensor, fixed: Tensor, moved: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """``forward(links, other, mask)`` at the links an x update moves only: ``[B, M]`` each
        (U1), ``[B, M, N²−1]`` (SU(N)); the same values, at about half the work of an x-network.

        ``fixed`` and ``moved`` are the indices of the links (flattened as ``[D, *L]``) where
        ``mask`` is 1 and 0. The head rows of the moved links alone are multiplied, and without a
        conv stack the ``x_layer`` reads only the columns of the fixed links' features (the
        others are the zeros of the masked embedding, so the sum is the same). SU(N) ``links``
        complex or planar pairs (``su_pairs``), as ``embed`` takes them.
        """
        if self.conv_dense is not None:
            h = self._conv_dense_out(self.embed(links, mask))
            pre = self.x_layer(h)
        elif self.n_colors > 1:
            if links.is_complex():  # [B, D, *L, N, N] -> [B, M, N, N, 2]
                held = torch.view_as_real(links).flatten(1, self.n_dim + 1)[:, fixed]
            else:  # planar pairs [N, N, 2, B, D, *L] -> [N, N, 2, B, M] -> [B, M, N, N, 2]
                held = links.flatten(4)[..., fixed].permute(3, 4, 0, 1, 2)
            pre = F.linear(
                held.flatten(1),
                self.x_layer.weight[:, _blocks(fixed, 2 * self.n_colors**2)],
                self.x_layer.bias,
            )
        else:
            held = links.flatten(1)[:, fixed]
            if self.raw:
                h, cols = wrap(held), fixed
            else:
                h = torch.cat([torch.cos(held), torch.sin(held)], dim=1)
                cols = torch.cat([fixed, fixed + self.n_links])
            pre = F.linear(h, self.x_layer.weight[:, cols], self.x_layer.bias)
        z = self._hidden(pre, other)
        per_link = _blocks(moved, self.n_generators)  # the rows of the moved links in a head
        rows = torch.cat([per_link + i * self.n_out for i in range(len(self.heads))])
        out = F.linear(z, self.head_weight[rows])
        bias = None if self.t_bias is None else self.t_bias[per_link]
        shape = (other.shape[0], moved.shape[0]) + (
            () if self.n_generators == 1 else (self.n_generators,)
        )
        return self._outputs(out, bias, shape)

    def _hidden(self, x_pre: Tensor, other: Tensor) -> Tensor:
        """``z`` from the ``x_layer`` output: the v path added, the hidden layers, dropout, norm."""
        z: Tensor = self.act(x_pre + self.v_layer(other.flatten(1)))
        for layer in self.hidden_layers:
            z = self.act(layer(z))
        if self.dropout is not None:
            z = self.dropout(z)
        if self.batch_norm is not None:
            z = self.batch_norm(z)
        return z

    def _outputs(
        self, out: Tensor, t_bias: Tensor | None, shape: tuple[int, ...]
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """``(s, t, q)`` of ``shape`` from the fused head output ``out`` (blocks s, t, q)."""
        n = out.shape[1] // len(self.heads)
        parts = dict(zip(self.heads, torch.split(out, n, dim=1), strict=True))
        s = t = q = None
        if self.s_log_scale is not None:
            s = (self.config.scale_s * torch.exp(self.s_log_scale)) * tanh(parts["s"])
            s = s.reshape(shape)
        if t_bias is not None:
            t = (parts["t"] + t_bias).reshape(shape)
        if self.q_log_scale is not None:
            q = (self.config.scale_q * torch.exp(self.q_log_scale)) * tanh(parts["q"])
            q = q.reshape(shape)
        return s, t, q


def XNet(
    group: Any, lattice_shape: Sequence[int], config: NetworkConfig, **kwargs: Any
) -> LeapfrogNet:
    """The network of one x update: U1 heads s, t, q; SU(N) heads t, q (no scaling of links)."""
    heads = "stq" if group_colors(group) == 1 else "tq"
    return LeapfrogNet(group, lattice_shape, config, heads=heads, **kwargs)


def VNet(
    group: Any, lattice_shape: Sequence[int], config: NetworkConfig, **kwargs: Any
) -> LeapfrogNet:
    """The network of one v half step: heads s, t, q; dense only (as in the seed, the conv stack
    belongs to the x-networks)."""
    return LeapfrogNet(
        group, lattice_shape, replace(config, conv_filters=()), heads="stq", **kwargs
    )


def lattice_laplacian(
    shape: Sequence[int], *, dtype: torch.dtype, device: torch.device | str | None = None
) -> Tensor:
    """``λ(k) = Σ_d 4 sin²(k_d/2)``, ``k_d = 2π n_d / L_d``, on the half spectrum of
    ``rfftn`` over the lattice dimensions (the last one ``L // 2 + 1`` long)."""
    n_dim = len(shape)
    lap = torch.zeros([*shape[:-1], shape[-1] // 2 + 1], dtype=dtype, device=device)
    for d, n in enumerate(shape):
        count = n // 2 + 1 if d == n_dim - 1 else n
        k = 2 * math.pi * torch.arange(count, dtype=dtype, device=device) / n
        lap = lap + (4 * torch.sin(k / 2) ** 2).reshape([-1 if j == d else 1 for j in range(n_dim)])
    return lap


class LocalNet(nn.Module):
    """The v-network of ``network local`` (U1): ``(s, t, q)`` per link from the plaquettes
    around it, the same function at every site (gauge invariant, translation equivariant).

    With plaquette angles ``θ_p(n)`` of the planes ``p = (μ, ν)``, ``μ < ν`` (``lattice.planes``):

        c(n) = [cos θ_p(n), sin θ_p(n)]_p                       (2P channels per site)
        h = act(conv_i(periodic_pad(h)))  for each conv layer    (h = c without a conv stack)
        f_μ(n) = [h(n), h(n − ν̂)]  for ν ≠ μ ascending          (the sites of the two plaquettes
                                                                  of plane {μ, ν} that hold the link)
        z = act(W_i z + b_i)  over ``hidden``,  o = W_h z + b_h
        s = λ_s tanh(o_s),  t = o_t,  q = λ_q tanh(o_q)          (shape ``[B, D, *L]``)

    ``θ_p`` does not change under a gauge transformation, and U1 momenta and forces do not
    either, so the v update ``v e^{εs/2} − (ε/2)(F e^{εq} + t)`` commutes with gauge
    transformations. There are no x-networks with this kind: every plaquette around a link
    contains it, so an x-network cannot read gauge-invariant inputs without reading the links it
    moves (the x updates are the plain drift ``x + ε v``).

    Parameters: ``convs.<i>.weight/.bias``, ``dense.<i>.weight/.bias``, ``head.weight``
    ``[n_heads, hidden[-1]]`` and ``head.bias`` (rows: the heads present, in the order s, t, q),
    ``s_log_scale``/``q_log_scale`` ``[1]`` (``λ = scale · e^a``). The head weights start as
    Kaiming-uniform times ``head_init`` and the head bias at 0, so ``head_init = 0`` is the
    ε-only sampler bit for bit until trained.
    """

    def __init__(
        self,
        group: Any,
        lattice_shape: Sequence[int],
        config: NetworkConfig,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if group_colors(group) != 1:
            raise ValueError(f"network local: implemented for U1 only, not {group.name}")
        self.config = config
        self.lattice_shape = tuple(int(n) for n in lattice_shape)
        self.n_dim = len(self.lattice_shape)
        if self.n_dim < 2:
            raise ValueError("network local: a lattice of dimension >= 2 (it reads plaquettes)")
        if any(p != 1 for p in config.conv_pool) or config.conv_padding != "same":
            raise ValueError("network local: conv pool must be 1 and padding 'same'")
        factory: _Factory = {"dtype": dtype, "device": device}
        self.act = ACTIVATIONS[config.activation]()
        # tanh as ``networks.tanh`` (the same function, about three times faster on CPU)
        self.fast_tanh = config.activation == "tanh"
        self.planes = planes(self.n_dim)
        c_in = 2 * len(self.planes)
        self.convs = nn.ModuleList()
        self.pads: list[tuple[int, int]] = []
        kernels = config.conv_kernels if config.conv_filters else ()
        for c_out, k in zip(config.conv_filters, kernels, strict=True):
            if self.n_dim not in _CONV:
                raise ValueError(
                    f"network local: a conv stack needs a lattice of dimension 2 or 3, "
                    f"got {self.n_dim}"
                )
            self.convs.append(_CONV[self.n_dim](c_in, c_out, k, **factory))
            self.pads.append(((k - 1) // 2, k - 1 - (k - 1) // 2))
            c_in = c_out
        widths = (2 * (self.n_dim - 1) * c_in, *config.hidden)
        self.dense = nn.ModuleList(
            nn.Linear(a, b, **factory) for a, b in itertools.pairwise(widths)
        )
        scales = {"s": config.scale_s, "t": 1.0, "q": config.scale_q}
        self.heads = tuple(h for h in "stq" if scales[h] > 0)
        self.head = nn.Linear(config.hidden[-1], len(self.heads), **factory)
        with torch.no_grad():
            self.head.weight.mul_(config.head_init)
            self.head.bias.zero_()
        self.s_log_scale = nn.Parameter(torch.zeros(1, **factory)) if "s" in self.heads else None
        self.q_log_scale = nn.Parameter(torch.zeros(1, **factory)) if "q" in self.heads else None

    def _activate(self, h: Tensor) -> Tensor:
        return tanh(h) if self.fast_tanh else self.act(h)

    def site_features(self, links: Tensor) -> Tensor:
        """``h`` ``[B, C, *L]``: the conv stack on the plaquettes' cos and sin at every site."""
        theta = [plaquette_field(links, mu, nu) for mu, nu in self.planes]
        h = torch.stack([torch.cos(t) for t in theta] + [torch.sin(t) for t in theta], 1)
        for conv, (lo, hi) in zip(self.convs, self.pads, strict=True):
            padded = periodic_pad(h, lo, hi)
            if torch.compiler.is_compiling() and not torch.is_grad_enabled():
                h = self._activate(_conv_taps(cast(nn.Conv2d, conv), padded, h.shape[2:]))
            else:
                h = self._activate(conv(padded))
        return h

    def _pairs(self, mu: int) -> list[tuple[int, int]]:
        """``(block, ν)`` of link direction ``μ``: its features are ``[h(n), h(n − ν̂)]`` for
        ``ν ≠ μ`` ascending, blocks ``2i`` and ``2i + 1`` of ``f`` for the ``i``-th such ν."""
        return [(2 * i, nu) for i, nu in enumerate(n for n in range(self.n_dim) if n != mu)]

    def link_features(self, links: Tensor) -> Tensor:
        """``f`` ``[B, D, *L, 2(D−1)C]``: the features of the two plaquette sites of every plane
        through each link (see the class docstring; ``forward`` never builds it)."""
        h = self.site_features(links)
        per_mu = []
        for mu in range(self.n_dim):
            parts = []
            for _, nu in self._pairs(mu):
                parts += [h, torch.roll(h, shifts=1, dims=2 + nu)]  # h(n), h(n − ν̂)
            per_mu.append(torch.cat(parts, 1))
        return torch.stack(per_mu, 1).movedim(2, -1)

    def forward(
        self, links: Tensor, other: Tensor | None = None, mask: Tensor | None = None
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """``(s, t, q)`` ``[B, D, *L]`` from the links (``other`` and ``mask``: unused, the
        signature of ``LeapfrogNet``).

        The first dense layer is applied per site, not per link: ``W_0 f_μ(n) = Σ_i W_{2i} h(n)
        + (W_{2i+1} h)(n − ν̂_i)`` with ``W_j`` the blocks of ``W_0`` (``D`` times fewer products
        than on the concatenated link features, and no concatenation); the layers run channels
        first, ``[B, D, width, *L]``.
        """
        h = self.site_features(links)
        first, *rest = cast(list[nn.Linear], list(self.dense))
        c = h.shape[1]
        blocks = torch.split(first.weight, c, dim=1)
        per_site = [torch.einsum("oc,bc...->bo...", w, h) for w in blocks]
        bias = first.bias.reshape(-1, *([1] * self.n_dim))
        z_mu = []
        for mu in range(self.n_dim):
            z = bias
            for j, nu in self._pairs(mu):
                z = z + per_site[j] + torch.roll(per_site[j + 1], shifts=1, dims=2 + nu)
            z_mu.append(z)
        z = self._activate(torch.stack(z_mu, 1))  # [B, D, hidden[0], *L]
        for layer in rest:
            bias = layer.bias.reshape(-1, *([1] * self.n_dim))
            z = self._activate(torch.einsum("oc,bdc...->bdo...", layer.weight, z) + bias)
        o = torch.einsum("oc,bdc...->bdo...", self.head.weight, z)
        o = o + self.head.bias.reshape(-1, *([1] * self.n_dim))
        out = dict(zip(self.heads, o.unbind(2), strict=True))
        s = q = None
        if self.s_log_scale is not None:
            s = (self.config.scale_s * torch.exp(self.s_log_scale)) * tanh(out["s"])
        if self.q_log_scale is not None:
            q = (self.config.scale_q * torch.exp(self.q_log_scale)) * tanh(out["q"])
        return s, out["t"], q
