"""Framework-neutral configuration of the L2HMC sampler (stdlib only).

The PyTorch and TensorFlow runtimes build the same sampler from the same frozen dataclasses, so
a generated ``train.py`` constructs them with the same keyword arguments whatever the framework
(field names follow the blocks of a spec): ``NetworkConfig`` (``network``), ``DynamicsConfig``
(``dynamics``), ``LossConfig`` (``loss``).  No framework types appear in them: precisions are
strings, activations are names.

Both ``pt/`` and ``tf/`` import these classes from here (``pt.networks.NetworkConfig`` is
this ``NetworkConfig``, and so on); ``TrainConfig.dtype_name`` names the precision, which each
runtime maps to its own dtype.

The defaults are the compiler's (the IR's, ``l2hmcc/ir.py``): a generated ``train.py`` passes
every value it needs, and code that builds a config by hand (benchmarks, tests) gets the
sampler a spec without that key describes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

__all__ = [
    "ACTIVATION_NAMES",
    "EMBEDDINGS",
    "LOSS_TERMS",
    "NETWORK_KINDS",
    "BetaSchedule",
    "DynamicsConfig",
    "LossConfig",
    "NetworkConfig",
    "TrainConfig",
    "lr_factor",
    "seed_u1_network",
]

#: Activation names both runtimes implement (``pt.networks.ACTIVATIONS``, ``tf.networks``).
ACTIVATION_NAMES = (
    "relu",
    "tanh",
    "swish",
    "silu",
    "gelu",
    "elu",
    "leaky_relu",
    "softplus",
    "sigmoid",
)

EMBEDDINGS = ("auto", "cos_sin", "raw", "real_imag")
#: ``network.kind``: the seed's networks over the whole lattice, or the local U1 v-networks
NETWORK_KINDS = ("l2hmc", "local")

LOSS_TERMS = ("plaquette", "charge", "rmse")


def _ints(value: Any) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of every x- and v-network (field names follow the ``network`` block).

    ``hidden[0]`` is the width of the layer where the link and momentum/force paths are summed;
    ``hidden[1:]`` are further dense layers. ``conv_kernels`` and ``conv_pool`` give one value per
    conv layer, or a single value for all (pool 1 = no pooling). ``scale_s = 0`` (``scale_q = 0``)
    removes the ``s`` (``q``) head. ``kind``: ``"l2hmc"`` (x- and v-networks over the whole
    lattice, as in the seed) or ``"local"`` (U1: gauge-invariant v-networks on the plaquettes
    around each link, the same at every site; no x-networks; see ``pt.networks.LocalNet``).
    """

    kind: str = "l2hmc"
    embedding: str = "auto"
    conv_filters: tuple[int, ...] = ()
    conv_kernels: tuple[int, ...] = (3,)
    conv_pool: tuple[int, ...] = (1,)
    conv_padding: Literal["same", "full"] = "same"
    hidden: tuple[int, ...] = (16, 16, 16)
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False
    scale_s: float = 1.0
    scale_q: float = 1.0
    head_init: float = 0.01

    def __post_init__(self) -> None:
        for name in ("conv_filters", "conv_kernels", "conv_pool", "hidden"):
            object.__setattr__(self, name, _ints(getattr(self, name)))
        n_conv = len(self.conv_filters)
        for name in ("conv_kernels", "conv_pool"):
            value = getattr(self, name)
            if n_conv and len(value) == 1:
                object.__setattr__(self, name, value * n_conv)
            elif n_conv and len(value) != n_conv:
                raise ValueError(
                    f"network.{name}: expected 1 or {n_conv} values (one per conv filter), "
                    f"got {len(value)}"
                )
        if self.kind not in NETWORK_KINDS:
            raise ValueError(f"network.kind: expected one of {NETWORK_KINDS}, got {self.kind!r}")
        if self.embedding not in EMBEDDINGS:
            raise ValueError(
                f"network.embedding: expected one of {EMBEDDINGS}, got {self.embedding!r}"
            )
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(
                f"network.activation: expected one of {sorted(ACTIVATION_NAMES)}, "
                f"got {self.activation!r}"
            )
        if self.conv_padding not in ("same", "full"):
            raise ValueError(
                f"network.conv_padding: expected 'same' or 'full', got {self.conv_padding!r}"
            )
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(
                f"network.hidden: expected at least one positive width, got {self.hidden}"
            )
        if any(v < 1 for v in (*self.conv_filters, *self.conv_kernels, *self.conv_pool)):
            raise ValueError("network: conv filters, kernels and pool sizes must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"network.dropout: expected 0 <= dropout < 1, got {self.dropout}")
        if self.scale_s < 0 or self.scale_q < 0 or self.head_init < 0:
            raise ValueError("network: scale_s, scale_q and head_init must be >= 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NetworkConfig:
        """Build from a plain mapping (e.g. a checkpoint), ignoring nothing: unknown keys raise."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"network: unknown fields {sorted(unknown)}")
        return cls(**values)


def seed_u1_network() -> NetworkConfig:
    """The default U(1) network of the seed (PyPI ``l2hmc`` 0.13.0), for side-by-side benchmarks.

    Conv 4→4→8→16 (max-pool 2)→32, kernel 4, periodic padding of 3 on each side, ReLU, flatten →
    dense to the lattice size; then x and v projections to 16, three dense 16→16, batch norm.
    On 16×16 with 8 layers and split x-networks this has ~60.2 M parameters, as the seed.
    """
    return NetworkConfig(
        conv_filters=(4, 8, 16, 32),
        conv_kernels=(4,),
        conv_pool=(1, 1, 2, 1),
        conv_padding="full",
        hidden=(16, 16, 16, 16),
        activation="relu",
        batch_norm=True,
    )


@dataclass(frozen=True)
class DynamicsConfig:
    """Generalized-leapfrog settings (field names follow the ``dynamics`` block of a spec).

    ``fourier > 0`` (U1 on a 2D or 3D lattice): every layer kicks with ``K F`` and drifts by
    ``ε K v`` through the Fourier filter ``K̂(k) = √((4D + m²)/(λ(k) + m²))`` (the dynamics'
    ``kinetic``), one mass² per layer starting at ``fourier``, learned with the step sizes
    (``kinetic_log_m2`` ``[N]``, trainable when ``learnable_step_size`` is); 0 (the default)
    is the plain leapfrog. It belongs to the dynamics, not the networks: ``network none``
    (and the ablation without networks) keeps it.
    """

    leapfrog: int = 8
    step_size: float = 0.1
    learnable_step_size: bool = True
    directions: Literal["merged", "random"] = "merged"
    mask: Literal["checkerboard", "random"] = "checkerboard"
    x_update: Literal["compact", "affine"] = "compact"
    networks: Literal["separate", "shared"] = "separate"
    split_x: bool = True
    mask_seed: int = 0
    fourier: float = 0.0

    def __post_init__(self) -> None:
        choices = {
            "directions": ("merged", "random"),
            "mask": ("checkerboard", "random"),
            "x_update": ("compact", "affine"),
            "networks": ("separate", "shared"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"dynamics.{name}: expected one of {allowed}, got {getattr(self, name)!r}"
                )
        if self.leapfrog < 1:
            raise ValueError(f"dynamics.leapfrog: expected >= 1 layers, got {self.leapfrog}")
        if not self.step_size > 0:
            raise ValueError(f"dynamics.step_size: expected > 0, got {self.step_size}")
        if not (math.isfinite(self.fourier) and self.fourier >= 0):
            raise ValueError(f"dynamics.fourier: expected a number >= 0, got {self.fourier}")

    @property
    def forces_per_trajectory(self) -> int:
        """Force evaluations ``∂S/∂ω`` one proposal needs: one at each of the states its x
        updates pass through.  ``merged``: ``B^N ∘ flip ∘ F^N`` runs ``2N`` layers, ``2N + 1``
        states; ``random``: ``N`` layers, ``N + 1`` (HMC with ``n`` leapfrog steps: ``n + 1``)."""
        layers = 2 * self.leapfrog if self.directions == "merged" else self.leapfrog
        return layers + 1

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DynamicsConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"dynamics: unknown fields {sorted(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class LossConfig:
    """Loss settings (field names follow the ``loss`` block): term weights, form, scale, aux."""

    plaquette: float = 0.1
    charge: float = 0.0
    rmse: float = 0.0
    form: Literal["mixed", "plain"] = "mixed"
    scale: float = 1.0
    aux_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.form not in ("mixed", "plain"):
            raise ValueError(f"loss.form: expected 'mixed' or 'plain', got {self.form!r}")
        if any(getattr(self, t) < 0 for t in LOSS_TERMS) or self.aux_weight < 0:
            raise ValueError("loss: weights must be >= 0")
        if not any(getattr(self, t) > 0 for t in LOSS_TERMS):
            raise ValueError("loss: at least one of plaquette, charge, rmse must be > 0")
        if not self.scale > 0:
            raise ValueError(f"loss.scale: expected > 0, got {self.scale}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LossConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"loss: unknown fields {sorted(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (field names follow the ``train`` block of a spec).

    ``steps``, or ``eras × steps_per_era`` when ``eras > 0``. ``lr_schedule`` decays from ``lr``
    to ``lr · lr_final_factor`` (cosine, linear, exponential) after ``warmup`` linear-warmup
    steps.
    ``step_size_lr_factor`` multiplies the learning rate of the step sizes ``log ε_k`` (the
    networks keep ``lr``). ``clip_norm = 0`` disables clipping. ``precision`` is the physics (and network) precision;
    ``network_precision`` ``bf16``/``fp16`` runs the networks under autocast on CUDA only (a
    warning and full precision elsewhere). ``checkpoint_every = 0``: only at the end.
    """

    steps: int = 2000
    eras: int = 0
    steps_per_era: int = 0
    chains: int = 16
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    step_size_lr_factor: float = 1.0
    lr_schedule: Literal["constant", "cosine", "linear", "exponential"] = "constant"
    lr_final_factor: float = 0.01
    warmup: int = 0
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    precision: Literal["fp32", "fp64"] = "fp32"
    network_precision: Literal["fp32", "fp64", "bf16", "fp16"] | None = None
    compile: bool = True
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 10
    seed: int = 1234

    def __post_init__(self) -> None:
        choices = {
            "optimizer": ("adam", "adamw", "sgd"),
            "lr_schedule": ("constant", "cosine", "linear", "exponential"),
            "precision": ("fp32", "fp64"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"train.{name}: expected one of {allowed}, got {getattr(self, name)!r}"
                )
        if self.network_precision not in (None, "fp32", "fp64", "bf16", "fp16"):
            raise ValueError(f"train.network_precision: got {self.network_precision!r}")
        if self.eras < 0 or (self.eras > 0 and self.steps_per_era < 1):
            raise ValueError("train.eras > 0 needs train.steps_per_era >= 1")
        if self.total_steps < 0 or self.chains < 1:
            raise ValueError("train: steps must be >= 0 and chains >= 1")
        if not self.lr > 0 or not 0 < self.lr_final_factor <= 1:
            raise ValueError("train: lr must be > 0 and 0 < lr_final_factor <= 1")
        if not self.step_size_lr_factor > 0:
            raise ValueError(
                f"train.step_size_lr_factor: expected > 0, got {self.step_size_lr_factor}"
            )

    @property
    def total_steps(self) -> int:
        return self.eras * self.steps_per_era if self.eras > 0 else self.steps

    @property
    def dtype_name(self) -> str:
        """``"float64"`` or ``"float32"`` (each runtime maps it to its own dtype)."""
        return "float64" if self.precision == "fp64" else "float32"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"train: unknown fields {sorted(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class BetaSchedule:
    """β as a function of the training step ``s`` of ``T`` (``t = s/(T−1)``).

    ``constant`` ``start``; ``linear`` ``start + (end − start) t``; ``geometric``
    ``start (end/start)^t``; ``stepped``: one value per era, the ``T`` steps split into
    ``len(values)`` equal eras (``values``, or ``eras`` values evenly spaced from start to end).
    """

    kind: Literal["constant", "linear", "geometric", "stepped"] = "constant"
    start: float = 1.0
    end: float | None = None
    values: tuple[float, ...] = ()
    eras: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        if self.kind not in ("constant", "linear", "geometric", "stepped"):
            raise ValueError(f"beta schedule: unknown kind {self.kind!r}")
        if self.kind in ("linear", "geometric") and self.end is None:
            raise ValueError(f"beta schedule {self.kind!r} needs an end value")
        if self.kind == "geometric" and (self.start <= 0 or (self.end or 0) <= 0):
            raise ValueError("geometric beta schedule needs positive start and end")
        if self.kind == "stepped" and not self.values and (self.eras < 1 or self.end is None):
            raise ValueError("stepped beta schedule needs values, or eras >= 1 with start and end")

    def era_values(self) -> tuple[float, ...]:
        if self.values:
            return self.values
        assert self.end is not None
        if self.eras == 1:
            return (self.start,)
        return tuple(
            self.start + (self.end - self.start) * e / (self.eras - 1) for e in range(self.eras)
        )

    def at(self, step: int, total: int) -> float:
        """β at ``step`` (0-based) of ``total`` steps; the last value after the end."""
        if self.kind == "constant":
            return self.start
        if self.kind == "stepped":
            vals = self.era_values()
            era = min(len(vals) - 1, step * len(vals) // max(total, 1))
            return vals[era]
        assert self.end is not None
        t = min(1.0, step / max(total - 1, 1))
        if self.kind == "linear":
            return self.start + (self.end - self.start) * t
        # float ** float is typed Any (a negative base gives a complex); both are > 0 here
        return float(self.start * (self.end / self.start) ** t)

    def final(self, total: int) -> float:
        return self.at(max(total - 1, 0), total)


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """Learning-rate multiplier per optimizer step (``LambdaLR``): warmup, then the decay."""
    total, warm, final = max(config.total_steps, 1), config.warmup, config.lr_final_factor

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(total - warm - 1, 1))
        if config.lr_schedule == "cosine":
            return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t))
        if config.lr_schedule == "linear":
            return 1.0 + (final - 1.0) * t
        if config.lr_schedule == "exponential":
            return float(final**t)
        return 1.0

    return factor
