"""What every target is: the `Target` protocol, the `RenderContext` it renders with, and the
placeholder for targets whose generator is not written yet."""

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
