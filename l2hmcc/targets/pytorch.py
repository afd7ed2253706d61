"""``--target pytorch``, and the context builder every PyTorch target shares.

A PyTorch job directory holds ``train.py`` (``templates/pytorch/train.py.j2``), the files of
`l2hmcc.targets.job` (carried runtime, ``run-local.sh``, ``job.pbs``) and whatever the target's
backend adds (DeepSpeed: ``ds_config.json``). `PyTorchTarget` is one target: its backend, how
``run-local.sh`` starts it, the backend set-up partial included into ``train.py``
(``templates/pytorch/backend_<name>.py.j2``, the function ``setup_backend``), the names that
partial imports, and extra files. Every decision about ``train.py`` is made in
`train_context`: the template loops over the keyword arguments computed here and substitutes
them through ``pyrepr``.

The mapping from the IR to the runtime's configs is `l2hmcc.targets.sampler` (shared with the
TensorFlow targets); its field names follow the spec's blocks, so the generated constants read
like the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from l2hmcc import ir, render
from l2hmcc.bundle import Bundle
from l2hmcc.checks.honour import compiles_layers
from l2hmcc.targets import job, pycode, sampler
from l2hmcc.targets.base import Framework, RenderContext
from l2hmcc.targets.pycode import from_import, import_sort_key

RUNTIME = job.CARRIED_RUNTIME


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


def precision_comment(spec: ir.Spec) -> str:
    t = spec.train
    group = spec.lattice.group
    if group == "U1":
        links = "float64" if t.precision == "fp64" else "float32"
    else:
        links = "complex128" if t.precision == "fp64" else "complex64"
    nets = t.network_precision
    autocast = " (autocast on CUDA)" if nets in ("bf16", "fp16") else ""
    if spec.network is None:
        return f"Links, actions and the accept/reject test in {t.precision} ({links}); no networks."
    return (
        f"Links, actions and the accept/reject test in {t.precision} ({links});"
        f" networks in {nets}{autocast}."
    )


def compile_comment(spec: ir.Spec) -> str:
    evaluation = sampler.evaluate_compile(spec)
    if (spec.train.compile or evaluation) and not compiles_layers("pytorch", spec.lattice.group):
        return (
            f"torch.compile: the HMC leapfrog only; {spec.lattice.group} leapfrog layers run"
            " eagerly (W007)."
        )
    if spec.train.compile:
        if evaluation is False:
            return "torch.compile: every leapfrog layer and the HMC leapfrog, not evaluation."
        return "torch.compile: every leapfrog layer and the HMC leapfrog (eager fallback)."
    if evaluation:
        return "torch.compile: the leapfrog layers in evaluation only (eager fallback)."
    return "torch.compile: off (eager)."


def eval_compile_comment(spec: ir.Spec) -> str | None:
    """The comment above the switch of compilation before evaluation, if there is one."""
    evaluation = sampler.evaluate_compile(spec)
    if evaluation is None:
        return None
    if evaluation:
        return "evaluate.compile: evaluation runs compiled leapfrog layers, training did not."
    return "evaluate.compile = false: evaluation runs the leapfrog layers eagerly."


# ----------------------------------------------------------------------------------------------
# train.py


def _imports(target: PyTorchTarget, spec: ir.Spec) -> tuple[list[str], list[str]]:
    """(third-party block, runtime block) of import statements, each sorted like ruff."""
    runtime: dict[str, set[str]] = {
        "common.launch": {"LaunchEnv", "detect"},
        "common.run": {"Evaluate", "Experiment", "Hmc", "Lattice", "Thermalize", "parse_args"},
        "pt.backends": {"select_device"},
        "pt.dryrun": {"run_dry"},
        "pt.dynamics": {"DynamicsConfig"},
        "pt.loss": {"LossConfig"},
        "pt.run": {"Run"},
        "pt.trainer": {"BetaSchedule", "TrainConfig", "Trainer"},
    }
    if spec.network is not None:
        runtime["pt.networks"] = {"NetworkConfig"}
    for module, names in target.runtime_imports.items():
        runtime.setdefault(module, set()).update(names)
    third = sorted(["import torch", *target.imports], key=import_sort_key)
    ours = [from_import(f"{RUNTIME}.{m}", names) for m, names in sorted(runtime.items())]
    return third, ours


def train_context(target: PyTorchTarget, spec: ir.Spec, ctx: RenderContext) -> dict[str, Any]:
    """Everything ``templates/pytorch/train.py.j2`` substitutes."""
    third, ours = _imports(target, spec)
    return {
        "header": render.generated_header(ctx.spec_name, ctx.spec_sha256),
        "title": sampler.title(spec, target.description),
        "about": sampler.about(spec, width=pycode.LINE_LENGTH),
        "backend_description": target.description,
        "third_party_imports": third,
        "runtime_imports": ours,
        **sampler.config_context(spec, ctx, target.name),
        "precision_comment": precision_comment(spec),
        "compile_comment": compile_comment(spec),
        "eval_compile_comment": eval_compile_comment(spec),
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
