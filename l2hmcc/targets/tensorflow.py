"""``--target tensorflow``, and the context builder every TensorFlow target shares.

A TensorFlow job directory has the layout of a PyTorch one: ``train.py``
(``templates/tensorflow/train.py.j2``) and the files of `l2hmcc.targets.job` (the carried
runtime with ``common/`` + ``tf/``, ``run-local.sh``, ``job.pbs``). `TensorFlowTarget` is one
target: its backend, how ``run-local.sh`` starts it, the backend set-up partial included into
``train.py`` (``templates/tensorflow/backend_<name>.py.j2``, the function ``setup_backend``),
the names that partial imports and its context. The configs' keyword arguments come from
`l2hmcc.targets.sampler`, as for PyTorch, so the constants of both frameworks' ``train.py``
read alike; what differs is said here: the precision (the TensorFlow runtime runs the networks
in the links' real precision) and compilation (XLA, ``tf.function(jit_compile=True)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from l2hmcc import ir, render
from l2hmcc.bundle import Bundle
from l2hmcc.checks.honour import compiles_layers
from l2hmcc.targets import job, pycode, sampler
from l2hmcc.targets.base import Framework, RenderContext
from l2hmcc.targets.pycode import from_import

RUNTIME = job.CARRIED_RUNTIME

BackendContext = Callable[[ir.Spec], dict[str, Any]]


def _no_context(spec: ir.Spec) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class TensorFlowTarget:
    """One TensorFlow target (see the module docstring)."""

    name: str
    backend: ir.BackendName
    description: str
    local: job.LocalKind
    """How ``run-local.sh`` starts the processes (`job.LocalLaunch.kind`)."""
    backend_class: str
    """The ``tf/backends.py`` class ``setup_backend`` returns."""
    backend_context: BackendContext = _no_context
    framework: Framework = field(default="tensorflow", init=False)

    @property
    def backend_template(self) -> str:
        return f"tensorflow/backend_{self.backend}.py.j2"

    def local_launch(self, spec: ir.Spec) -> job.LocalLaunch:
        nproc = 1 if self.local == "python" else job.local_nproc(spec)
        return job.LocalLaunch(self.local, default_nproc=nproc, framework=self.framework)

    def render(self, spec: ir.Spec, ctx: RenderContext) -> Bundle:
        bundle = Bundle()
        bundle.add(job.TRAIN_SCRIPT, render_train_py(self, spec, ctx))
        bundle.update(
            job.job_files(
                spec, ctx, target=self.name, framework_dir="tf", launch=self.local_launch(spec)
            )
        )
        return bundle


def precision_comment(spec: ir.Spec) -> str:
    """The TensorFlow runtime computes everything in ``train.precision``; half-precision
    networks are not implemented there (warning W350 at compile time)."""
    t = spec.train
    real = "float64" if t.precision == "fp64" else "float32"
    links = real if spec.lattice.group == "U1" else {"float64": "complex128"}.get(real, "complex64")
    nets = "no networks" if spec.network is None else f"networks in {real}"
    if t.network_precision in ("bf16", "fp16"):
        nets += f" (network_precision = {t.network_precision} is not implemented in TensorFlow)"
    return f"Links, actions and the accept/reject test in {t.precision} ({links}); {nets}."


def compile_comment(spec: ir.Spec) -> list[str]:
    """Comment lines on compilation (``train.compile``, ``evaluate.compile``)."""
    evaluation = sampler.evaluate_compile(spec)
    if (spec.train.compile or evaluation) and not compiles_layers("tensorflow", spec.lattice.group):
        group = spec.lattice.group
        return [f"XLA: the HMC trajectory only; {group} leapfrog layers run eagerly (W007)."]
    if spec.train.compile:
        lines = [
            "XLA, tf.function(jit_compile=True): every leapfrog layer (forward and backward), the",
            "optimizer update, the accept/reject step and the HMC trajectory; a plain",
            "tf.function, with a warning, where XLA cannot compile. --no-compile: eager.",
        ]
        if evaluation is False:
            lines.append("Evaluation runs the leapfrog layers without XLA (evaluate.compile).")
        return lines
    if evaluation:
        return ["XLA for the leapfrog layers in evaluation only (evaluate.compile); else eager."]
    return ["XLA off: eager (--compile: tf.function(jit_compile=True))."]


def eval_compile_comment(spec: ir.Spec) -> str | None:
    """The comment above the switch of compilation before evaluation, if there is one."""
    evaluation = sampler.evaluate_compile(spec)
    if evaluation is None:
        return None
    if evaluation:
        return "evaluate.compile: evaluation runs the leapfrog layers under XLA, training did not."
    return "evaluate.compile = false: evaluation runs the leapfrog layers without XLA."


# ----------------------------------------------------------------------------------------------
# train.py


def _imports(target: TensorFlowTarget, spec: ir.Spec) -> list[str]:
    """The runtime import block, sorted like ruff."""
    runtime: dict[str, set[str]] = {
        "common.launch": {"LaunchEnv", "detect"},
        "common.run": {"Evaluate", "Experiment", "Hmc", "Lattice", "Thermalize", "parse_args"},
        "tf.backends": {"select_device", target.backend_class},
        "tf.dynamics": {"DynamicsConfig"},
        "tf.loss": {"LossConfig"},
        "tf.run": {"Run"},
        "tf.trainer": {"BetaSchedule", "TrainConfig", "Trainer"},
    }
    if spec.network is not None:
        runtime["tf.networks"] = {"NetworkConfig"}
    return [from_import(f"{RUNTIME}.{m}", names) for m, names in sorted(runtime.items())]


def train_context(target: TensorFlowTarget, spec: ir.Spec, ctx: RenderContext) -> dict[str, Any]:
    """Everything ``templates/tensorflow/train.py.j2`` substitutes."""
    return {
        "header": render.generated_header(ctx.spec_name, ctx.spec_sha256),
        "title": sampler.title(spec, target.description),
        "about": sampler.about(spec, width=pycode.LINE_LENGTH),
        "backend_description": target.description,
        "runtime_imports": _imports(target, spec),
        **sampler.config_context(spec, ctx, target.name),
        "precision_comment": precision_comment(spec),
        "compile_comment": compile_comment(spec),
        "eval_compile_comment": eval_compile_comment(spec),
        "backend_template": target.backend_template,
        "backend_class": target.backend_class,
        "backend": target.backend_context(spec),
    }


def render_train_py(target: TensorFlowTarget, spec: ir.Spec, ctx: RenderContext) -> str:
    return render.render("tensorflow/train.py.j2", **train_context(target, spec, ctx))


TARGET = TensorFlowTarget(
    name="tensorflow",
    backend="none",
    description="TensorFlow + XLA, one process",
    local="python",
    backend_class="SingleProcessBackend",
)
