"""``--target pytorch``, and the context builder every PyTorch target shares.

A PyTorch job directory holds ``train.py`` (``templates/pytorch/train.py.j2``), the files of
`l2hmcc.targets.job` (carried runtime, ``run-local.sh``, ``job.pbs``) and whatever the target's
backend adds (DeepSpeed: ``ds_config.json``). `PyTorchTarget` is one target: its backend, how
``run-local.sh`` starts it, the backend set-up partial included into ``train.py``
(``templates/pytorch/backend_<name>.py.j2``, the function ``setup_backend``), the names that
partial imports, and extra files. Every decision about ``train.py`` is made in
`train_context`: the template loops over the keyword arguments computed here and substitutes
them through ``pyrepr``.

The mapping from the IR to the runtime's configs (``l2hmcc_runtime.pt``) is the table of this
module; its field names follow the spec's blocks, so the generated constants read like the spec.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from l2hmcc import ir, render
from l2hmcc.bundle import Bundle
from l2hmcc.targets import job, pycode
from l2hmcc.targets.base import Framework, RenderContext
from l2hmcc.targets.pycode import from_import, import_sort_key

RUNTIME = job.CARRIED_RUNTIME

Kwargs = list[tuple[str, Any]]

GROUP_LABELS = {"U1": "U(1)", "SU2": "SU(2)", "SU3": "SU(3)"}
ACTION_LABELS = {"wilson": "Wilson"}

BackendContext = Callable[[ir.Spec], dict[str, Any]]
ExtraFiles = Callable[[ir.Spec, RenderContext], list[tuple[str, str]]]


def _no_context(spec: ir.Spec) -> dict[str, Any]:
    return {}


def _no_files(spec: ir.Spec, ctx: RenderContext) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class PyTorchTarget:
    """One PyTorch target (see the module docstring)."""

    name: str
    backend: ir.BackendName
    description: str
    local: job.LocalKind
    """How ``run-local.sh`` starts the processes (`job.LocalLaunch.kind`)."""
    runtime_imports: Mapping[str, tuple[str, ...]]
    """Names ``setup_backend`` uses, by module (relative to the carried runtime)."""
    imports: tuple[str, ...] = ()
    """Third-party import statements of the backend (``import deepspeed``)."""
    backend_context: BackendContext = _no_context
    extra_files: ExtraFiles = _no_files
    framework: Framework = field(default="pytorch", init=False)

    @property
    def backend_template(self) -> str:
        return f"pytorch/backend_{self.backend}.py.j2"

    def local_launch(self, spec: ir.Spec) -> job.LocalLaunch:
        kind = self.local
        if kind == "deepspeed" and getattr(spec.distributed, "launcher", "auto") == "deepspeed":
            kind = "deepspeed_runner"
        return job.LocalLaunch(kind, default_nproc=1 if kind == "python" else job.local_nproc(spec))

    def render(self, spec: ir.Spec, ctx: RenderContext) -> Bundle:
        bundle = Bundle()
        bundle.add(job.TRAIN_SCRIPT, render_train_py(self, spec, ctx))
        for path, text in self.extra_files(spec, ctx):
            bundle.add(path, text)
        bundle.update(
            job.job_files(
                spec, ctx, target=self.name, framework_dir="pt", launch=self.local_launch(spec)
            )
        )
        return bundle


# ----------------------------------------------------------------------------------------------
# IR → runtime configs


def _shape_label(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def beta_kwargs(beta: ir.Constant | ir.Linear | ir.Geometric | ir.Eras) -> Kwargs:
    """``BetaSchedule`` arguments (``pt/trainer.py``)."""
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
    """``DynamicsConfig`` arguments (``pt/dynamics.py``). The x update is a U(1) choice; SU(N)
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
        kw.append(("mask_seed", spec.experiment.seed))
    return kw


def network_kwargs(spec: ir.Spec) -> Kwargs:
    """``NetworkConfig`` arguments (``pt/networks.py``). ``trig`` is the runtime's explicit
    embedding for the group: cos/sin of U(1) angles, real/imaginary parts of SU(N) links."""
    n = spec.network
    embedding = {"trig": "cos_sin" if spec.lattice.group == "U1" else "real_imag"}.get(
        n.embedding, n.embedding
    )
    kw: Kwargs = [("embedding", embedding)]
    if n.conv is not None:
        kw += [
            ("conv_filters", tuple(n.conv.filters)),
            ("conv_kernels", tuple(n.conv.kernel)),
            ("conv_pool", tuple(n.conv.pool)),
        ]
    kw += [
        ("hidden", tuple(n.hidden)),
        ("activation", n.activation),
        ("dropout", n.dropout),
        ("batch_norm", n.batch_norm),
        ("scale_s", n.scale_s),
        ("scale_q", n.scale_q),
    ]
    return kw


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
    """``TrainConfig`` arguments (``pt/trainer.py``): ``steps``, or ``eras × steps_per_era``."""
    t = spec.train
    steps: Kwargs = (
        [("steps", t.steps_per_era)]
        if t.eras == 1
        else [("eras", t.eras), ("steps_per_era", t.steps_per_era)]
    )
    return [
        *steps,
        ("chains", t.chains),
        ("optimizer", t.optimizer),
        ("lr", t.lr),
        ("lr_schedule", t.lr_schedule),
        ("warmup", t.warmup_steps),
        ("clip_norm", t.clip_norm),
        ("precision", t.precision),
        ("network_precision", t.network_precision),
        ("compile", t.compile),
        ("checkpoint_every", t.checkpoint_every),
        ("log_every", t.log_every),
        ("seed", spec.experiment.seed),
    ]


def hmc_kwargs(spec: ir.Spec) -> Kwargs:
    h = spec.hmc
    kw: Kwargs = [("steps", h.steps), ("chains", h.chains)]
    if isinstance(h.step_size, ir.FixedStepSize):
        kw.append(("step_size", h.step_size.value))
    else:
        kw += [("step_size", None), ("target_acceptance", h.step_size.target_acceptance)]
    kw.append(("trajectory_length", h.trajectory_length))
    return kw


def precision_comment(spec: ir.Spec) -> str:
    t = spec.train
    group = spec.lattice.group
    if group == "U1":
        links = "float64" if t.precision == "fp64" else "float32"
    else:
        links = "complex128" if t.precision == "fp64" else "complex64"
    nets = t.network_precision
    autocast = " (autocast on CUDA)" if nets in ("bf16", "fp16") else ""
    return (
        f"Links, actions and the accept/reject test in {t.precision} ({links});"
        f" networks in {nets}{autocast}."
    )


def compile_comment(spec: ir.Spec) -> str:
    if spec.train.compile:
        return "torch.compile: every leapfrog layer and the HMC leapfrog (eager fallback)."
    return "torch.compile: off (eager)."


# ----------------------------------------------------------------------------------------------
# train.py


def _imports(target: PyTorchTarget) -> tuple[list[str], list[str]]:
    """(third-party block, runtime block) of import statements, each sorted like ruff."""
    runtime: dict[str, set[str]] = {
        "common.launch": {"LaunchEnv", "detect"},
        "common.run": {"Evaluate", "Experiment", "Hmc", "Lattice", "parse_args"},
        "pt.backends": {"select_device"},
        "pt.dynamics": {"DynamicsConfig"},
        "pt.loss": {"LossConfig"},
        "pt.networks": {"NetworkConfig"},
        "pt.run": {"Run"},
        "pt.trainer": {"BetaSchedule", "TrainConfig", "Trainer"},
    }
    for module, names in target.runtime_imports.items():
        runtime.setdefault(module, set()).update(names)
    third = sorted(["import torch", *target.imports], key=import_sort_key)
    ours = [from_import(f"{RUNTIME}.{m}", names) for m, names in sorted(runtime.items())]
    return third, ours


def train_context(target: PyTorchTarget, spec: ir.Spec, ctx: RenderContext) -> dict[str, Any]:
    """Everything ``templates/pytorch/train.py.j2`` substitutes."""
    lat = spec.lattice
    group = GROUP_LABELS[lat.group]
    dims = len(lat.shape)
    third, ours = _imports(target)
    t = spec.train
    title = (
        f"{spec.experiment.name}: L2HMC for {dims}D {group}, lattice {_shape_label(lat.shape)}"
        f" ({target.description})."
    )
    hmc_eps = (
        f"ε = {spec.hmc.step_size.value}"
        if isinstance(spec.hmc.step_size, ir.FixedStepSize)
        else f"ε tuned to acceptance {spec.hmc.step_size.target_acceptance}"
    )
    about = textwrap.wrap(
        f"Trains the sampler for {t.steps} steps ({t.chains} chains per rank), evaluates it for"
        f" {spec.evaluate.steps} trajectories and runs the generic-HMC baseline ({hmc_eps}) for"
        f" {spec.hmc.steps} trajectories at the final β = {final_beta(lat.beta)}. Rank 0 writes"
        " summary.json, run.json, histories and plots to output/. Checkpoints every"
        f" {t.checkpoint_every} steps and on SIGTERM/SIGUSR1; --resume continues from the"
        " latest.",
        width=pycode.LINE_LENGTH,
    )
    return {
        "header": render.generated_header(ctx.spec_name, ctx.spec_sha256),
        "title": title,
        "about": about,
        "backend_description": target.description,
        "third_party_imports": third,
        "runtime_imports": ours,
        "experiment": [
            ("name", spec.experiment.name),
            ("description", spec.experiment.description),
            ("seed", spec.experiment.seed),
            ("spec", ctx.spec_name),
            ("spec_sha256", ctx.spec_sha256),
            ("target", target.name),
            ("l2hmcc_version", ctx.version),
        ],
        "lattice_comment": (
            f"{group} links on a {_shape_label(lat.shape)} periodic lattice,"
            f" {ACTION_LABELS[lat.action]} action, {lat.start} start."
        ),
        "lattice": [("group", lat.group), ("shape", tuple(lat.shape)), ("start", lat.start)],
        "beta_comment": beta_comment(lat.beta) + "; evaluation and HMC use the final value.",
        "beta": beta_kwargs(lat.beta),
        "dynamics": dynamics_kwargs(spec),
        "network": network_kwargs(spec),
        "loss": loss_kwargs(spec),
        "precision_comment": precision_comment(spec),
        "compile_comment": compile_comment(spec),
        "train": train_kwargs(spec),
        "evaluate": [("steps", spec.evaluate.steps), ("chains", spec.evaluate.chains)],
        "hmc": hmc_kwargs(spec),
        "backend_template": target.backend_template,
        "backend": target.backend_context(spec),
    }


def render_train_py(target: PyTorchTarget, spec: ir.Spec, ctx: RenderContext) -> str:
    return render.render("pytorch/train.py.j2", **train_context(target, spec, ctx))


TARGET = PyTorchTarget(
    name="pytorch",
    backend="none",
    description="PyTorch, one process",
    local="python",
    runtime_imports={"pt.backends": ("SingleProcessBackend",)},
)
