"""What every job directory holds whatever its framework.

* ``l2hmcc_runtime/``: a copy of the runtime package (``common/`` plus the framework's ``pt/``
  or ``tf/``), read from the installed package through importlib.resources (the compiler never
  imports it), so a compute node needs only the framework, not l2hmcc or its compiler
  dependencies;
* ``run-local.sh``: runs the job on this machine with the tool the target needs (`LocalLaunch`);
* ``job.pbs``: the PBS job script of issue 5 (`l2hmcc.pbs.render_pbs`), or for ``job local``
  a bash script that calls ``run-local.sh``.

A framework's target module adds its own files (``train.py``, backend configuration) and calls
`job_files` for these.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal

from l2hmcc import ir, pbs, render, systems
from l2hmcc.bundle import Bundle
from l2hmcc.targets.base import Framework, RenderContext

RUNTIME_PACKAGE = "l2hmcc.runtime"
CARRIED_RUNTIME = "l2hmcc_runtime"
"""The name the runtime package has inside a job directory (``import l2hmcc_runtime``)."""

TRAIN_SCRIPT = "train.py"

LocalKind = Literal["python", "torchrun", "deepspeed", "deepspeed_runner", "horovodrun"]

_LIBRARY: dict[Framework, str] = {"pytorch": "torch", "tensorflow": "tensorflow"}
_EXTRA: dict[LocalKind, str] = {
    "deepspeed": "deepspeed",
    "deepspeed_runner": "deepspeed",
    "horovodrun": "horovod (scripts/build-horovod.sh)",
}
_DISTRIBUTED_TARGET: dict[Framework, str] = {
    "pytorch": "pytorch-ddp",
    "tensorflow": "tensorflow-horovod",
}


@dataclass(frozen=True)
class LocalLaunch:
    """How ``run-local.sh`` starts the job's processes on this machine.

    ``python``: one process, ``python train.py``; ``torchrun``: ``python -m
    torch.distributed.run --standalone --nproc-per-node N``; ``deepspeed``: one process with
    plain python, several with torchrun; ``deepspeed_runner``: the same with DeepSpeed's own
    launcher for several (the spec's ``launcher = deepspeed``); ``horovodrun``:
    ``horovodrun -np N -H localhost:N --gloo``. ``framework`` names what the interpreter
    needs and, for a one-process target started with several, the target to use instead.
    """

    kind: LocalKind
    default_nproc: int
    framework: Framework = "pytorch"

    @property
    def needs(self) -> str:
        """What the interpreter must have installed."""
        library = _LIBRARY[self.framework]
        extra = _EXTRA.get(self.kind)
        return f"{library}, numpy and {extra}" if extra else f"{library} and numpy"

    @property
    def distributed_target(self) -> str:
        """The framework's target for several processes on one machine."""
        return _DISTRIBUTED_TARGET[self.framework]


def runtime_files(framework_dir: Literal["pt", "tf"]) -> list[tuple[str, bytes]]:
    """``(path in the job, bytes)`` of every ``.py`` file of the carried runtime, sorted."""
    root = resources.files(RUNTIME_PACKAGE)
    out: list[tuple[str, bytes]] = []

    def walk(node: Traversable, rel: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                if child.name != "__pycache__":
                    walk(child, f"{rel}/{child.name}")
            elif child.name.endswith(".py"):
                out.append((f"{rel}/{child.name}", child.read_bytes()))

    for child in sorted(root.iterdir(), key=lambda c: c.name):
        if child.is_file() and child.name.endswith(".py"):
            out.append((f"{CARRIED_RUNTIME}/{child.name}", child.read_bytes()))
    for sub in ("common", framework_dir):
        walk(root.joinpath(sub), f"{CARRIED_RUNTIME}/{sub}")
    return out


def spec_ranks(spec: ir.Spec) -> int:
    """Ranks the spec's job runs: nodes × ranks per node (default: one per device on a
    cluster node, one locally)."""
    system = systems.get(spec.job.system)
    rpn = spec.job.ranks_per_node
    if rpn is None:
        distributed = spec.distributed.backend != "none"
        rpn = system.node.devices_per_node if system and system.is_cluster and distributed else 1
    return spec.job.nodes * rpn


def local_nproc(spec: ir.Spec) -> int:
    """``run-local.sh``'s default process count: the spec's ranks for ``job local``, one for a
    cluster job (a local run of a cluster spec is a test)."""
    system = systems.get(spec.job.system)
    return 1 if system is not None and system.is_cluster else spec_ranks(spec)


def run_local_script(launch: LocalLaunch, *, target: str, ctx: RenderContext) -> str:
    return render.render(
        "job/run-local.sh.j2",
        header=render.generated_header(ctx.spec_name, ctx.spec_sha256),
        launch=launch,
        target=target,
        train_script=TRAIN_SCRIPT,
    )


def job_files(
    spec: ir.Spec,
    ctx: RenderContext,
    *,
    target: str,
    framework_dir: Literal["pt", "tf"],
    launch: LocalLaunch,
) -> Bundle:
    """``run-local.sh``, ``job.pbs`` and the carried runtime, in that order."""
    bundle = Bundle()
    bundle.add(
        pbs.LOCAL_LAUNCHER, run_local_script(launch, target=target, ctx=ctx), executable=True
    )
    bundle.add(
        pbs.JOB_SCRIPT,
        pbs.render_pbs(spec, target=target, spec_name=ctx.spec_name, spec_sha256=ctx.spec_sha256),
        executable=True,
    )
    for path, data in runtime_files(framework_dir):
        bundle.add(path, data)
    return bundle
