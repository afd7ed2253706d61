"""The IR → the runtime's sampler configs, shared by every framework's targets.

The PyTorch and TensorFlow runtimes build the sampler from the same frozen dataclasses
(``l2hmcc_runtime.common.config``: ``BetaSchedule``, ``DynamicsConfig``, ``NetworkConfig``,
``LossConfig``, ``TrainConfig``; ``common.run``: ``Experiment``, ``Lattice``, ``Evaluate``,
``Hmc``), so a generated ``train.py`` of either framework constructs them with the keyword
arguments computed here. Their field names follow the spec's blocks; each function is the
table from one IR block to one config, with the few renamings and resolutions spelled out.
"""

from __future__ import annotations

import textwrap
from typing import Any

from l2hmcc import ir
from l2hmcc.targets.base import RenderContext

Kwargs = list[tuple[str, Any]]

GROUP_LABELS = {"U1": "U(1)", "SU2": "SU(2)", "SU3": "SU(3)"}
ACTION_LABELS = {"wilson": "Wilson"}


def shape_label(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def experiment_kwargs(spec: ir.Spec, ctx: RenderContext, target: str) -> Kwargs:
    """``Experiment`` arguments: where the job came from."""
    return [
        ("name", spec.experiment.name),
        ("description", spec.experiment.description),
        ("seed", spec.experiment.seed),
        ("spec", ctx.spec_name),
        ("spec_sha256", ctx.spec_sha256),
        ("target", target),
        ("l2hmcc_version", ctx.version),
    ]


def lattice_kwargs(spec: ir.Spec) -> Kwargs:
    lat = spec.lattice
    return [("group", lat.group), ("shape", tuple(lat.shape)), ("start", lat.start)]


def lattice_comment(spec: ir.Spec) -> str:
    lat = spec.lattice
    return (
        f"{GROUP_LABELS[lat.group]} links on a {shape_label(lat.shape)} periodic lattice,"
        f" {ACTION_LABELS[lat.action]} action, {lat.start} start."
    )


def evaluate_kwargs(spec: ir.Spec) -> Kwargs:
    """``Evaluate`` arguments (``common/run.py``); ``ablation`` only when the spec asks for it."""
    kw: Kwargs = [("steps", spec.evaluate.steps), ("chains", spec.evaluate.chains)]
    if spec.evaluate.ablation:
        kw.append(("ablation", True))
    return kw


def evaluate_compile(spec: ir.Spec) -> bool | None:
    """Whether evaluation must switch the compilation of the leapfrog layers before it runs:
    ``evaluate.compile`` where it differs from ``train.compile``, else None (evaluation uses
    the layers as training left them, so the job's ``--compile``/``--no-compile`` option
    switches both)."""
    e = spec.evaluate.compile
    return None if e == spec.train.compile else e


def beta_kwargs(beta: ir.Constant | ir.Linear | ir.Geometric | ir.Eras) -> Kwargs:
    """``BetaSchedule`` arguments (``common/config.py``)."""
    if isinstance(beta, ir.Constant):
        return [("kind", "constant"), ("start", beta.value)]
    if isinstance(beta, ir.Linear | ir.Geometric):
        return [("kind", beta.kind), ("start", beta.start), ("end", beta.end)]
    return [("kind", "stepped"), ("values", tuple(beta.values))]


def beta_comment(beta: ir.Constant | ir.Linear | ir.Geometric | ir.Eras) -> str:
    if isinstance(beta, ir.Constant):
        return f"β = {beta.value} throughout"
    if isinstance(beta, ir.Linear):
        return f"β rises linearly from {beta.start} to {beta.end} during training"
    if isinstance(beta, ir.Geometric):
        return f"β goes geometrically from {beta.start} to {beta.end} during training"
    values = ", ".join(str(v) for v in beta.values)
    return f"β in {len(beta.values)} equal shares of the training steps: {values}"


def final_beta(beta: ir.Constant | ir.Linear | ir.Geometric | ir.Eras) -> float:
    if isinstance(beta, ir.Constant):
        return beta.value
    if isinstance(beta, ir.Eras):
        return beta.values[-1]
    return beta.end


def dynamics_kwargs(spec: ir.Spec) -> Kwargs:
    """``DynamicsConfig`` arguments (``common/config.py``). The x update is a U(1) choice; SU(N)
    links always take the group update, so the field is left at its default there."""
    d = spec.dynamics
    kw: Kwargs = [
        ("leapfrog", d.leapfrog),
        ("step_size", d.step_size),
        ("learnable_step_size", d.learnable_step_size),
        ("directions", d.directions),
        ("mask", d.mask),
    ]
    if spec.lattice.group == "U1":
        kw.append(("x_update", d.x_update))
    kw += [("networks", d.networks), ("split_x", d.split_x)]
    if d.mask == "random":
        kw.append(("mask_seed", d.mask_seed))
    if d.fourier:
        kw.append(("fourier", d.fourier))
    return kw


def network_kwargs(spec: ir.Spec) -> Kwargs | None:
    """``NetworkConfig`` arguments (``common/config.py``), or None for ``network none`` (the
    runtime's ``network=None``: no networks, learned step sizes only). ``kind`` first: a local
    network takes only the keys it has (lowering rejects the others). ``trig`` is the
    runtime's explicit embedding for the group: cos/sin of U(1) angles, real/imaginary parts
    of SU(N) links."""
    n = spec.network
    if n is None:
        return None
    if n.kind == "local":  # no embedding, dropout, batch norm, pooling or `full` padding
        kw: Kwargs = [("kind", "local")]
        if n.conv is not None:
            kw += [("conv_filters", tuple(n.conv.filters)), ("conv_kernels", tuple(n.conv.kernel))]
        kw += [
            ("hidden", tuple(n.hidden)),
            ("activation", n.activation),
            ("scale_s", n.scale_s),
            ("scale_q", n.scale_q),
            ("head_init", n.head_init),
        ]
        return kw
    embedding = {"trig": "cos_sin" if spec.lattice.group == "U1" else "real_imag"}.get(
        n.embedding, n.embedding
    )
    kw = [("kind", "l2hmc"), ("embedding", embedding)]
    if n.conv is not None:
        kw += [
            ("conv_filters", tuple(n.conv.filters)),
            ("conv_kernels", tuple(n.conv.kernel)),
            ("conv_pool", tuple(n.conv.pool)),
            ("conv_padding", n.conv.padding),
        ]
    kw += [
        ("hidden", tuple(n.hidden)),
        ("activation", n.activation),
        ("dropout", n.dropout),
        ("batch_norm", n.batch_norm),
        ("scale_s", n.scale_s),
        ("scale_q", n.scale_q),
        ("head_init", n.head_init),
    ]
    return kw


def network_comment(spec: ir.Spec) -> str:
    """The comment above ``NETWORK`` in ``train.py`` (one line)."""
    if spec.network is not None and spec.network.kind == "local":
        return "Local v-networks (U1): s, t, q of each link from its plaquettes; no x-networks."
    return "The x- and v-networks of every leapfrog layer."


def loss_kwargs(spec: ir.Spec) -> Kwargs:
    loss = spec.loss
    return [
        ("plaquette", loss.plaquette),
        ("charge", loss.charge),
        ("rmse", loss.rmse),
        ("form", loss.form),
        ("scale", loss.scale),
        ("aux_weight", loss.aux_weight),
    ]


def train_kwargs(spec: ir.Spec) -> Kwargs:
    """``TrainConfig`` arguments (``common/config.py``): ``steps``, or ``eras × steps_per_era``;
    ``lr_final_factor`` (the IR's ``lr_final``, a factor of ``lr``) only for a decaying
    schedule (``constant`` ignores it)."""
    t = spec.train
    steps: Kwargs = (
        [("steps", t.steps_per_era)]
        if t.eras == 1
        else [("eras", t.eras), ("steps_per_era", t.steps_per_era)]
    )
    lr_final: Kwargs = [] if t.lr_schedule == "constant" else [("lr_final_factor", t.lr_final)]
    eps_lr: Kwargs = (
        [] if t.step_size_lr_factor == 1.0 else [("step_size_lr_factor", t.step_size_lr_factor)]
    )
    return [
        *steps,
        ("chains", t.chains),
        ("optimizer", t.optimizer),
        ("lr", t.lr),
        *eps_lr,
        ("lr_schedule", t.lr_schedule),
        *lr_final,
        ("warmup", t.warmup_steps),
        ("weight_decay", t.weight_decay),
        ("clip_norm", t.clip_norm),
        ("precision", t.precision),
        ("network_precision", t.network_precision),
        ("compile", t.compile),
        ("checkpoint_every", t.checkpoint_every),
        ("keep_checkpoints", t.keep_checkpoints),
        ("log_every", t.log_every),
        ("seed", spec.experiment.seed),
    ]


def hmc_kwargs(spec: ir.Spec) -> Kwargs:
    h = spec.hmc
    kw: Kwargs = [("steps", h.steps), ("chains", h.chains)]
    if isinstance(h.step_size, ir.FixedStepSize):
        kw.append(("step_size", h.step_size.value))
    else:
        kw += [("step_size", "tuned"), ("target_acceptance", h.step_size.target_acceptance)]
    kw.append(("trajectory_length", h.trajectory_length))
    if h.fourier:
        kw.append(("fourier", h.fourier))
    return kw


def thermalize_kwargs(spec: ir.Spec) -> Kwargs:
    """``Thermalize`` arguments: the cap and window, with the HMC baseline's ε and τ."""
    th, h = spec.thermalize, spec.hmc
    kw: Kwargs = [("max_trajectories", th.max_trajectories), ("window", th.window)]
    if isinstance(h.step_size, ir.FixedStepSize):
        kw.append(("step_size", h.step_size.value))
    else:
        kw += [("step_size", "tuned"), ("target_acceptance", h.step_size.target_acceptance)]
    kw.append(("trajectory_length", h.trajectory_length))
    return kw


def thermalize_comment(spec: ir.Spec) -> list[str]:
    """The comment above ``THERMALIZE``, as lines."""
    th = spec.thermalize
    if th.max_trajectories == 0:
        text = "Thermalization: none (max_trajectories = 0); the chains are used as they start."
    else:
        text = (
            "Thermalization: HMC trajectories (the baseline's ε and τ) at the first β before"
            " training and at the final β before measuring, in windows of"
            f" {th.window} until the plaquette stops drifting, at most {th.max_trajectories}"
            " each time."
        )
    return textwrap.wrap(text, width=86)


def title(spec: ir.Spec, description: str) -> str:
    """The first line of a generated script's docstring."""
    lat = spec.lattice
    return (
        f"{spec.experiment.name}: L2HMC for {len(lat.shape)}D {GROUP_LABELS[lat.group]},"
        f" lattice {shape_label(lat.shape)} ({description})."
    )


def about(spec: ir.Spec, *, width: int) -> list[str]:
    """What the generated job does, wrapped to ``width`` columns (docstring lines)."""
    t, h = spec.train, spec.hmc
    eps = (
        f"ε = {h.step_size.value}"
        if isinstance(h.step_size, ir.FixedStepSize)
        else f"ε tuned to acceptance {h.step_size.target_acceptance}"
    )
    return textwrap.wrap(
        f"Trains the sampler for {t.steps} steps ({t.chains} chains per rank), evaluates it for"
        f" {spec.evaluate.steps} trajectories and runs the generic-HMC baseline ({eps}) for"
        f" {h.steps} trajectories at the final β = {final_beta(spec.lattice.beta)}. Rank 0"
        " writes summary.json, run.json, histories and plots to output/. Checkpoints every"
        f" {t.checkpoint_every} steps and on SIGTERM/SIGUSR1; --resume continues from the"
        " latest.",
        width=width,
    )


def config_context(spec: ir.Spec, ctx: RenderContext, target: str) -> dict[str, Any]:
    """The sampler's configs as a ``train.py`` template substitutes them, the same for every
    framework: keyword-argument lists (``Kwargs``) and the comments above them."""
    return {
        "experiment": experiment_kwargs(spec, ctx, target),
        "lattice_comment": lattice_comment(spec),
        "lattice": lattice_kwargs(spec),
        "beta_comment": beta_comment(spec.lattice.beta)
        + "; evaluation and HMC use the final value.",
        "beta": beta_kwargs(spec.lattice.beta),
        "dynamics": dynamics_kwargs(spec),
        "network_comment": network_comment(spec),
        "network": network_kwargs(spec),
        "loss": loss_kwargs(spec),
        "train": train_kwargs(spec),
        "evaluate": evaluate_kwargs(spec),
        "eval_compile": evaluate_compile(spec),
        "hmc": hmc_kwargs(spec),
        "thermalize_comment": thermalize_comment(spec),
        "thermalize": thermalize_kwargs(spec),
    }
