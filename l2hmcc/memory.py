"""Peak device memory per rank of a generated job, estimated from the IR (no torch).

A job that runs out of device memory dies in its first minute, after its wait in the queue;
``check`` and ``compile`` estimate the peak with this model and warn (W360) when it exceeds the
memory of one device of the job's system (``systems.NodeShape.device_memory_bytes``).

The model follows what the PyTorch runtime keeps on the device (``runtime/pt``), per rank:

* **resident**: the parameters of every x- and v-network (counted layer by layer as
  ``runtime/pt/networks.py`` builds them; ``network local``: v-networks only, whose dense
  layers are shared by all links), their gradients, the optimizer state (Adam/AdamW:
  two moments; SGD: one momentum buffer), all in the links' real precision; the chains.
  Gradients and optimizer state stay alive between steps (the gradients are dropped only
  just before the next backward), so every phase holds them;
* **training activations**: what autograd keeps from the forward pass for the backward, over
  all leapfrog layers: per network call the embedding, the conv stack's outputs (with their
  periodic padding), the dense layers, the heads and their elementwise functions; per layer
  the lattice work (plaquettes, staples, force) and the updates of links and momenta, in
  multiples of one link field ``[B, D, *L]`` (U1 angles; SU(N) complex matrices);
* **distributed wrappers**: DDP's gradient buckets (one more copy of the gradients);
  DeepSpeed ZeRO divides the optimizer state (stage ≥ 1) and the gradients (stage ≥ 2) by the
  world size and adds its fp32 partition of the parameters.

The activation coefficients (``LINK_FIELDS_PER_LAYER`` …) were measured with
``train.py --dry-run`` (``runtime/pt/dryrun.py``, fake tensors) on the shipped specs and on
grids of chain counts and lattice sizes; ``tests/runtime/pt/test_dryrun.py`` keeps the
estimate within a factor 2 of the dry run's measurement. The estimate leaves out the CUDA/XPU
context and the allocator's fragmentation (a few hundred MiB), which is why the warning is
given against the whole device.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from l2hmcc import ir

__all__ = ["MemoryEstimate", "estimate", "format_bytes", "network_parameters"]

#: Link-field-sized tensors ([B, D, *L] in the link dtype) kept per leapfrog layer in training:
#: the force and action of each v half step, the x updates of both halves, the momenta.
LINK_FIELDS_PER_LAYER = {"U1": 45.0, "SU2": 80.0, "SU3": 80.0}
#: Momentum-sized tensors ([B, D, *L, N²−1], real) kept per network call (heads, tanh, exp,
#: the elementwise update that uses them).
MOMENTUM_FIELDS_PER_CALL = 6.0
#: Copies of every conv output kept per conv layer (the padded input, the output, the
#: activation).
CONV_COPIES = 3.0
#: Copies of the embedding and of each dense layer's output kept per network call.
DENSE_COPIES = 2.0
#: Live link fields during one trajectory without gradients (evaluation, HMC).
LINK_FIELDS_NO_GRAD = 12.0


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per rank on the device (see the module docstring)."""

    parameters: int
    gradients: int
    optimizer: int
    chains: int
    activations: int  #: training, forward pass kept for the backward
    sampling: int  #: one trajectory without gradients (evaluation, HMC)
    wrapper: int  #: DDP buckets, ZeRO's fp32 partition, minus what ZeRO partitions away

    @property
    def resident(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.chains + self.wrapper

    @property
    def peak(self) -> int:
        return self.resident + max(self.activations, self.sampling)

    def describe(self) -> str:
        """``peak ≈ X: parameters …, gradients …`` for messages."""
        parts = [
            f"parameters {format_bytes(self.parameters)}",
            f"gradients {format_bytes(self.gradients)}",
            f"optimizer state {format_bytes(self.optimizer)}",
            f"activations {format_bytes(max(self.activations, self.sampling))}",
            f"chains {format_bytes(self.chains)}",
        ]
        if self.wrapper:
            parts.append(
                f"distributed {'+' if self.wrapper > 0 else '−'}{format_bytes(abs(self.wrapper))}"
            )
        return ", ".join(parts)


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _colors(group: str) -> int:
    return {"U1": 1, "SU2": 2, "SU3": 3}[group]


def _real_bytes(precision: str) -> int:
    return 8 if precision == "fp64" else 4


def _net_shape(spec: ir.Spec) -> tuple[int, int, int, int]:
    """``(D, |L|, n_out, embedding channels)`` of one network."""
    shape = spec.lattice.shape
    d, volume, n = len(shape), math.prod(shape), _colors(spec.lattice.group)
    generators = 1 if n == 1 else n * n - 1
    raw = spec.network is not None and spec.network.embedding == "raw"
    channels = (1 if raw else 2) * d * (n * n if n > 1 else 1)
    return d, volume, d * volume * generators, channels


def _conv_extents(spec: ir.Spec) -> list[tuple[int, int]]:
    """``(filters, output sites)`` of every conv layer of an x-network, pools applied."""
    net = spec.network
    if net is None or net.conv is None:
        return []
    extent = list(spec.lattice.shape)
    out = []
    pools = net.conv.pool or (1,) * len(net.conv.filters)
    for f, k, pool in zip(net.conv.filters, net.conv.kernel, pools, strict=False):
        if net.conv.padding == "full":
            extent = [e + k - 1 for e in extent]
        out.append((f, math.prod(extent)))
        if pool > 1:
            extent = [e // pool for e in extent]
    if out:
        out[-1] = (out[-1][0], math.prod(extent))
    return out


def _scaled_heads(spec: ir.Spec, xnet: bool) -> int:
    """The heads with a learnable scale (``s``, ``q``) of an x- or v-network."""
    net = spec.network
    assert net is not None
    abelian = spec.lattice.group == "U1"
    heads = 0
    if net.scale_s > 0 and (abelian or not xnet):  # SU(N) x updates have no s
        heads += 1
    if net.scale_q > 0:
        heads += 1
    return heads


def _heads(spec: ir.Spec, xnet: bool) -> int:
    """Heads of an x- or v-network: ``t`` and the scaled ones."""
    return 1 + _scaled_heads(spec, xnet)


def _one_network(spec: ir.Spec, *, xnet: bool) -> int:
    """Parameters of one x- or v-network (``runtime/pt/networks.py``)."""
    net = spec.network
    assert net is not None
    d, volume, n_out, channels = _net_shape(spec)
    n_links = d * volume
    p = 0
    convs = _conv_extents(spec) if xnet else []
    if convs:
        c_in = channels
        assert net.conv is not None
        for (f, _), k in zip(convs, net.conv.kernel, strict=False):
            p += f * c_in * k**d + f
            c_in = f
        n_flat = convs[-1][0] * convs[-1][1]
        p += n_flat * n_links + n_links
        x_features = n_links
    else:
        x_features = channels * volume
    hidden = list(net.hidden)
    p += x_features * hidden[0] + hidden[0] + n_out * hidden[0] + hidden[0]
    p += sum(a * b + b for a, b in itertools.pairwise(hidden))
    if net.batch_norm:
        p += 2 * hidden[-1]
    heads = _heads(spec, xnet)
    p += heads * n_out * hidden[-1] + n_out + _scaled_heads(spec, xnet)  # + t bias, log scales
    return p


def _local_widths(spec: ir.Spec) -> tuple[int, int, list[tuple[int, int, int]]]:
    """``(plaquette planes P, link feature width, [(c_in, c_out, k)] conv layers)`` of a
    ``network local`` (``runtime/pt/networks.py``: ``LocalNet``)."""
    net = spec.network
    assert net is not None
    d = len(spec.lattice.shape)
    planes = d * (d - 1) // 2
    c = 2 * planes  # cos θ_P, sin θ_P
    convs = []
    if net.conv is not None:
        for f, k in zip(net.conv.filters, net.conv.kernel, strict=False):
            convs.append((c, f, k))
            c = f
    return planes, 2 * (d - 1) * c, convs


def _local_network(spec: ir.Spec) -> int:
    """Parameters of one local v-network: the conv stack, the dense layers shared by every
    link, one head layer (a row per head) and the log scales of s and q."""
    net = spec.network
    assert net is not None
    d = len(spec.lattice.shape)
    _, width, convs = _local_widths(spec)
    p = sum(f * c * int(k**d) + f for c, f, k in convs)
    widths = [width, *net.hidden]
    p += sum(a * b + b for a, b in itertools.pairwise(widths))
    heads = _heads(spec, xnet=False)
    return p + heads * net.hidden[-1] + heads + _scaled_heads(spec, xnet=False)


def _local_call_activations(spec: ir.Spec) -> float:
    """Elements per chain kept by one call of a local v-network in training: the plaquette
    features, each conv layer's copies, the link features and every dense layer per link,
    the heads and their elementwise functions."""
    net = spec.network
    assert net is not None
    volume = math.prod(spec.lattice.shape)
    n_links = len(spec.lattice.shape) * volume
    planes, width, convs = _local_widths(spec)
    elems = DENSE_COPIES * 2 * planes * volume  # cos, sin of the plaquettes
    elems += sum(CONV_COPIES * f * volume for _, f, _ in convs)
    elems += DENSE_COPIES * width * n_links  # the two sites' features of every link
    elems += DENSE_COPIES * sum(net.hidden) * n_links
    elems += _heads(spec, xnet=False) * n_links * 2
    elems += MOMENTUM_FIELDS_PER_CALL * n_links
    return elems


def _local(spec: ir.Spec) -> bool:
    return spec.network is not None and spec.network.kind == "local"


def _network_groups(spec: ir.Spec) -> tuple[int, int]:
    """(network groups, x-networks per group): ``separate`` has one group per layer."""
    groups = spec.dynamics.leapfrog if spec.dynamics.networks == "separate" else 1
    return groups, 2 if spec.dynamics.split_x else 1


def network_parameters(spec: ir.Spec) -> int:
    """Trainable parameters of the sampler (networks, step sizes and, with
    `dynamics.fourier`, the Fourier filter's log mass² per layer)."""
    step_sizes = spec.dynamics.leapfrog * (2 if spec.dynamics.fourier > 0 else 1)
    if spec.network is None:
        return step_sizes
    groups, n_x = _network_groups(spec)
    if _local(spec):  # v-networks only
        return groups * _local_network(spec) + step_sizes
    per_group = _one_network(spec, xnet=False) + n_x * _one_network(spec, xnet=True)
    return groups * per_group + step_sizes


def _call_activations(spec: ir.Spec, *, xnet: bool) -> float:
    """Elements per chain kept by one network call in training."""
    net = spec.network
    assert net is not None
    d, volume, n_out, channels = _net_shape(spec)
    elems = DENSE_COPIES * channels * volume  # embedding
    convs = _conv_extents(spec) if xnet else []
    for f, sites in convs:
        elems += CONV_COPIES * f * sites
    if convs:
        elems += DENSE_COPIES * d * volume  # conv_dense output
    elems += n_out  # the other input (momentum / force), flattened
    elems += DENSE_COPIES * sum(net.hidden)
    elems += _heads(spec, xnet) * n_out * 2  # head output and its split/tanh
    elems += MOMENTUM_FIELDS_PER_CALL * n_out
    return elems


def estimate(spec: ir.Spec, *, world_size: int = 1, target: str | None = None) -> MemoryEstimate:
    """Peak device bytes per rank of ``spec`` run by ``target`` on ``world_size`` ranks."""
    group = spec.lattice.group
    n = _colors(group)
    shape = spec.lattice.shape
    d, volume = len(shape), math.prod(shape)
    real = _real_bytes(spec.train.precision)
    net_bytes = 2 if spec.train.network_precision in ("bf16", "fp16") else real
    link_reals = d * volume * (1 if n == 1 else 2 * n * n)

    params = network_parameters(spec)
    p_bytes = params * real
    opt_factor = {"adam": 2, "adamw": 2, "sgd": 1}[spec.train.optimizer]
    b_train = spec.train.chains * (2 if spec.loss.aux_weight > 0 else 1)
    chains = spec.train.chains * link_reals * real

    layers = spec.dynamics.leapfrog
    act = LINK_FIELDS_PER_LAYER[group] * link_reals * real * layers
    if _local(spec):  # the two v half steps of a layer
        act += 2 * _local_call_activations(spec) * layers * net_bytes
    elif spec.network is not None:
        per_layer = 2 * _call_activations(spec, xnet=False) + 2 * _call_activations(spec, xnet=True)
        act += per_layer * layers * net_bytes
    activations = int(act * b_train)
    if spec.network is not None and net_bytes != real:
        activations += params * net_bytes  # autocast's low-precision weight copies, for backward

    b_sample = max(spec.evaluate.chains, spec.hmc.chains)
    sampling = LINK_FIELDS_NO_GRAD * link_reals * real * b_sample
    if _local(spec):
        sampling += _local_call_activations(spec) * net_bytes * spec.evaluate.chains
    elif spec.network is not None:
        sampling += _call_activations(spec, xnet=True) * net_bytes * spec.evaluate.chains
    sampling_bytes = int(sampling) + b_sample * link_reals * real  # the sampled chains

    grads = p_bytes
    optimizer = opt_factor * p_bytes
    wrapper = 0
    backend = spec.distributed.backend
    if target == "pytorch-ddp" or (target is None and backend == "ddp"):
        wrapper = grads
    elif target == "pytorch-deepspeed" or (target is None and backend == "deepspeed"):
        stage = getattr(spec.distributed, "zero_stage", 0)
        if stage >= 1 and world_size > 1:
            share = 1 - 1 / world_size
            wrapper -= int(optimizer * share)
            if stage >= 2:
                wrapper -= int(grads * share)
            wrapper += params * 4 // world_size
    return MemoryEstimate(
        parameters=p_bytes,
        gradients=grads,
        optimizer=optimizer,
        chains=chains,
        activations=activations,
        sampling=sampling_bytes,
        wrapper=wrapper,
    )
