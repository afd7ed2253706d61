"""The target registry: one entry per ``--target``.

A target turns a checked `ir.Spec` into a `Bundle` of generated files. It declares its
framework and distributed backend, which the checks use (e.g. DeepSpeed needs PyTorch).
Each target is one small module in this package (added by the target issues); until a
target's module exists, its entry renders no files, so ``compile`` writes only the spec
copy and ``manifest.json``.

To add a target: write ``l2hmcc/targets/<name>.py`` with a class that satisfies `Target`
and register an instance in `TARGETS` (replacing the pending entry of the same name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from l2hmcc import ir
from l2hmcc.bundle import Bundle

Framework = Literal["pytorch", "tensorflow"]


@dataclass(frozen=True)
class RenderContext:
    """What a target knows besides the spec: where it came from and how it was compiled."""

    spec_name: str
    """The spec's file name as given on the command line."""
    spec_text: str
    spec_sha256: str
    version: str
    overrides: tuple[str, ...] = ()


class Target(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def framework(self) -> Framework: ...

    @property
    def backend(self) -> ir.BackendName: ...

    @property
    def description(self) -> str: ...

    def render(self, spec: ir.Spec, ctx: RenderContext) -> Bundle:
        """The generated files of the job directory (without spec copy and manifest)."""
        ...


@dataclass(frozen=True)
class PendingTarget:
    """A registered target whose generator is not written yet: renders no files."""

    name: str
    framework: Framework
    backend: ir.BackendName
    description: str

    @property
    def implemented(self) -> bool:
        return False

    def render(self, spec: ir.Spec, ctx: RenderContext) -> Bundle:
        return Bundle()


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        PendingTarget("pytorch", "pytorch", "none", "PyTorch, one process"),
        PendingTarget("pytorch-ddp", "pytorch", "ddp", "PyTorch DistributedDataParallel"),
        PendingTarget("pytorch-horovod", "pytorch", "horovod", "PyTorch with Horovod"),
        PendingTarget("pytorch-deepspeed", "pytorch", "deepspeed", "PyTorch with DeepSpeed"),
        PendingTarget("tensorflow", "tensorflow", "none", "TensorFlow (XLA), one process"),
        PendingTarget("tensorflow-horovod", "tensorflow", "horovod", "TensorFlow with Horovod"),
    )
}


def get(name: str) -> Target | None:
    return TARGETS.get(name)


def is_implemented(target: Target) -> bool:
    return bool(getattr(target, "implemented", True))
