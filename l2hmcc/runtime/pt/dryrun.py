"""``train.py --dry-run``: the job on a fake accelerator, without one, in seconds.

A job that dies in its first minute on a GPU node, after hours in the queue, with a device
mismatch or an out-of-memory error, can mostly be caught on a laptop. PyTorch's fake tensors
(``torch._subclasses.fake_tensor.FakeTensorMode``) carry a device, a shape and a dtype but no
data: a tensor made with ``device="cuda"`` is on ``cuda:0`` even on a CPU-only build, and an
operation that mixes it with a CPU tensor raises, as CUDA would. ``dry_run`` builds the job's
lattice, networks, optimizer and trainer on such a device (``cuda:0`` or ``xpu:0``) with the
spec's precision (links fp32/fp64, complex64/complex128 for SU(N); networks under CUDA/XPU autocast
for ``bf16``/``fp16``), then runs

* one train step (proposal, loss, backward, optimizer step, Metropolis test),
* one L2HMC trajectory of the trained sampler (evaluation: ``evaluate.chains`` chains),
* one HMC trajectory (``hmc.chains`` chains, the spec's ε, or 0.1 where ε is tuned: tuning
  reads acceptances on the host by design), cut to ``HMC_STEPS`` leapfrog steps,

eagerly, or through ``torch.compile`` where the spec compiles (with the ``aot_eager`` backend:
dynamo and AOTAutograd trace the fake tensors; no kernels are generated for the absent device).

What the watch (``DeviceWatch``, a dispatch mode above the fake mode) reports as a
``DeviceMistake``, naming the runtime's source line: tensors on two devices in one operation;
a host sync in these phases (``.item()``, ``float()``, ``bool()`` of a device tensor, which
stalls the GPU every step); a copy to the host (``.cpu()``, ``.numpy()``); a random generator
on another device than the tensor it fills. What it measures: the bytes of live fake tensors on
the device, at the peak of each phase, and the parameters, gradients and optimizer state, with
ZeRO's partitioning for DeepSpeed (``ds_config.json``: stage, world size).

The backend is the single-rank path of every target (``SingleProcessBackend``: at one rank the
collectives are identities); what a distributed wrapper adds per rank is accounted for, not run:
DDP's gradient buckets (one more copy of the gradients), ZeRO's partitions (optimizer state,
stage ≥ 2 gradients, and its fp32 copy of the parameters, divided by the world size).

Bookkeeping that leaves the device on purpose (histories, checkpoints) is exercised afterwards
on the CPU, with host tensors of the shapes and dtypes the phases produced.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import tempfile
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map_only
from torch.utils.weak import WeakIdKeyDictionary

from ..common.history import History
from ..common.run import Evaluate, Experiment, Hmc, Lattice
from .backends import SingleProcessBackend
from .dynamics import AUTOCAST_DEVICES

__all__ = ["DeviceMistake", "DeviceWatch", "DryRunReport", "dry_run", "for_target", "run_dry"]

aten = torch.ops.aten

#: In-place random fills whose fake-tensor decomposition needs the real device's generator;
#: on fake tensors they only need to keep shape and dtype, so the watch returns the input.
_RANDOM_FILLS = {
    aten.uniform_,
    aten.exponential_,
    aten.random_,
    aten.cauchy_,
    aten.log_normal_,
    aten.geometric_,
    aten.bernoulli_,
}

#: Leapfrog steps of the dry run's HMC trajectory: every step repeats the same operations on
#: the same shapes, so two show the steady state (and anything that grows from step to step).
HMC_STEPS = 2

#: Where the watch names a place: the innermost frame of the job's own code.
_OWN = ("l2hmcc_runtime", "l2hmcc/runtime", "train.py")


class DeviceMistake(RuntimeError):
    """Something the fake device caught that would fail, or stall, on the real one."""

    def __init__(self, what: str, place: str) -> None:
        super().__init__(f"{what}\n  at {place}")
        self.what = what
        self.place = place


def _place(tb_frames: list[traceback.FrameSummary]) -> str:
    """``file:line in function: source`` of the innermost job frame (not this module)."""
    for frame in reversed(tb_frames):
        name = frame.filename.replace(os.sep, "/")
        if any(part in name for part in _OWN) and not name.endswith("/dryrun.py"):
            short = "/".join(name.split("/")[-2:])
            return f"{short}:{frame.lineno} in {frame.name}: {(frame.line or '').strip()}"
    last = tb_frames[-1] if tb_frames else None
    return "unknown place" if last is None else f"{last.filename}:{last.lineno} in {last.name}"


def _here() -> str:
    return _place(traceback.extract_stack())


def _device_of(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.device | None:
    dev = kwargs.get("device")
    if dev is not None:
        return torch.device(dev)
    for a in args:
        if isinstance(a, Tensor):
            return a.device
    return None


class DeviceWatch(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """A dispatch mode above ``FakeTensorMode``: device mistakes and live bytes on ``device``.

    ``current``/``peak``: bytes of the distinct storages of live tensors on ``device`` (a
    storage counts from the operation that made it until it is freed); ``phase_peak`` resets
    ``peak`` to ``current`` for a new phase. ``strict`` makes host syncs and copies to the host
    mistakes (the hot phases); construction and bookkeeping run with it off.
    """

    def __init__(self, device: torch.device) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.device = device
        self.current = 0
        self.peak = 0
        self.strict = False
        self._live: WeakIdKeyDictionary = WeakIdKeyDictionary()

    @classmethod
    def ignore_compile_internals(cls) -> bool:
        # torch.compile traces with the watch on (it skips frames under other dispatch modes);
        # the compiled graph's operations still pass through it when they run
        return True

    def _free(self, nbytes: int) -> None:
        self.current -= nbytes

    def track(self, t: Tensor) -> None:
        if t.device != self.device:
            return
        st = t.untyped_storage()
        if st in self._live:
            return
        nbytes = int(st.nbytes())
        self._live[st] = nbytes
        weakref.finalize(st, self._free, nbytes)
        self.current += nbytes
        self.peak = max(self.peak, self.current)

    def reset_peak(self) -> None:
        self.peak = self.current

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        dev = _device_of(func, args, kwargs)
        on_device = dev is not None and dev.type == self.device.type
        if self.strict and on_device and func is aten._local_scalar_dense.default:
            raise DeviceMistake(
                "a host sync in the hot path: .item(), float(), int() or bool() of a tensor on "
                f"{self.device} waits for the device every step",
                _here(),
            )
        if self.strict and on_device and func is aten._to_copy.default:
            target = kwargs.get("device")
            if target is not None and torch.device(target).type == "cpu":
                raise DeviceMistake(
                    f"a copy to the host in the hot path (.cpu(), .to('cpu'), .numpy() of a "
                    f"tensor on {self.device})",
                    _here(),
                )
        if kwargs.get("generator") is not None:
            kwargs["generator"] = None  # fake tensors draw nothing (GeneratorWatch checked it)
        if on_device and func.overloadpacket in _RANDOM_FILLS:
            return args[0]
        if self.strict and func is aten.copy_.default:
            dst, src = args[0], args[1]
            if dst.device.type == "cpu" and dst.dim() > 0 and src.device == self.device:
                raise DeviceMistake(
                    f"a copy to the host in the hot path (a tensor on {self.device} copied into a"
                    " CPU tensor)",
                    _here(),
                )
        if self.strict and on_device and func is aten.nonzero.default:
            raise DeviceMistake(
                "a host sync in the hot path: nonzero (boolean-mask indexing, torch.where with one "
                "argument) waits for the device to know the output's size",
                _here(),
            )
        out = func(*args, **kwargs)
        tree_map_only(Tensor, self.track, out)
        return out


class GeneratorWatch(TorchFunctionMode):
    """Random generators on the device of the tensors they fill (seen at the Python call, where
    a ``_FakeGenerator`` still says which fake device it stands for)."""

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        gen = kwargs.get("generator")
        if gen is not None:
            dev = kwargs.get("device")
            if dev is None:
                tensors = [a for a in args if isinstance(a, Tensor)]
                dev = tensors[0].device if tensors else torch.get_default_device()
            dev = torch.device(dev)
            if gen.device.type != dev.type:
                raise DeviceMistake(
                    f"a random generator on {gen.device} fills a tensor on {dev} (on the device "
                    "that fails: a generator must be made with torch.Generator(device))",
                    _here(),
                )
        return func(*args, **kwargs)


class _FakeGenerator(torch.Generator):
    """``torch.Generator(device)`` on a fake device: a CPU generator reporting that device (a
    CPU-only build has no CUDA or XPU generator). Its state is a CPU state, for checkpoints."""

    _fake_device: torch.device

    def __new__(cls, device: Any = "cpu") -> _FakeGenerator:
        self = super().__new__(cls, "cpu")  # type: ignore[call-arg]
        self._fake_device = torch.device(device)
        return self

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return self._fake_device


# ----------------------------------------------------------------------------------------------
# A fake device on a build without it

#: A build of torch without CUDA (or XPU) has no device guard and no accelerator hooks for it:
#: fake tensors on that device fail in the operations that take a device guard (``copy_``,
#: indexing assignment) and in autograd (which asks the accelerator for streams). These few
#: lines register c10's ``FakeGuardImpl`` and hooks that say the backend is built; they must be
#: loaded before ``import torch`` (the hooks are looked up once), so ``train.py --dry-run``
#: re-executes itself with the library loaded first (``_reexec``).
_SHIM_SOURCE = r"""
#include <c10/core/impl/FakeGuardImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <ATen/detail/XPUHooksInterface.h>
#ifdef FAKE_CUDA
C10_REGISTER_GUARD_IMPL(CUDA, c10::impl::FakeGuardImpl<c10::DeviceType::CUDA>);
namespace {
struct FakeCUDAHooks : at::CUDAHooksInterface {
  FakeCUDAHooks(at::CUDAHooksArgs) {}
  bool isBuilt() const override { return true; }
  bool hasPrimaryContext(c10::DeviceIndex) const override { return false; }
};
}
namespace at { C10_REGISTER_CLASS(CUDAHooksRegistry, CUDAHooks, FakeCUDAHooks); }
#endif
#ifdef FAKE_XPU
C10_REGISTER_GUARD_IMPL(XPU, c10::impl::FakeGuardImpl<c10::DeviceType::XPU>);
namespace {
struct FakeXPUHooks : at::XPUHooksInterface {
  bool isBuilt() const override { return true; }
  bool hasPrimaryContext(c10::DeviceIndex) const override { return false; }
};
}
namespace at { C10_REGISTER_CLASS(XPUHooksRegistry, XPUHooks, FakeXPUHooks); }
#endif
"""

#: Set in the re-executed process: the fake device library it loaded before torch.
SHIM_ENV = "L2HMCC_FAKE_DEVICE_SHIM"

_BOOT = """\
import ctypes, os, runpy, sys
ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
os.environ[{env!r}] = sys.argv[2]
sys.argv = sys.argv[3:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as `python train.py` sets it
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def device_built(kind: str) -> bool:
    """Whether this torch has ``kind``'s device guard (compiled in, or the shim loaded)."""
    if kind == "cpu" or os.environ.get(SHIM_ENV) == kind:
        return True
    if kind == "cuda":
        return bool(torch.backends.cuda.is_built())  # type: ignore[no-untyped-call]
    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu._is_compiled())


class ShimError(RuntimeError):
    """The fake device library could not be built (no C++ compiler, no torch headers)."""


def shim_library(kind: str) -> Path:
    """The fake ``kind`` device library for this torch, compiled once (a few seconds) into
    ``$XDG_CACHE_HOME/l2hmcc`` (``~/.cache/l2hmcc``)."""
    import hashlib
    import subprocess

    root = Path(torch.__file__).parent
    key = hashlib.sha256(f"{torch.__version__} {root} {kind} {_SHIM_SOURCE}".encode()).hexdigest()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "l2hmcc"
    lib = cache / f"fake-{kind}-{key[:16]}.so"
    if lib.is_file():
        return lib
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        src = Path(tmp) / "shim.cpp"
        src.write_text(_SHIM_SOURCE, encoding="utf-8")
        out = Path(tmp) / lib.name
        cmd = [
            os.environ.get("CXX", "c++"),
            "-O1",
            "-std=c++17",
            "-shared",
            "-fPIC",
            f"-DFAKE_{kind.upper()}",
            f"-I{root / 'include'}",
            str(src),
            "-o",
            str(out),
            f"-L{root / 'lib'}",
            "-lc10",
            "-ltorch_cpu",
            f"-Wl,-rpath,{root / 'lib'}",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ShimError(f"{cmd[0]}: {exc}") from exc
        if proc.returncode != 0:
            raise ShimError(proc.stderr.strip()[-2000:] or f"{cmd[0]} exit {proc.returncode}")
        os.replace(out, lib)
    return lib


def _reexec(kind: str, train_py: Path, argv: list[str]) -> int:
    """Run ``train.py argv`` again with the fake ``kind`` library loaded before torch; its exit
    status."""
    import subprocess

    lib = shim_library(kind)
    boot = _BOOT.format(env=SHIM_ENV)
    cmd = [sys.executable, "-c", boot, str(lib), kind, str(train_py), *argv]
    return subprocess.call(cmd)


# ----------------------------------------------------------------------------------------------
# Report


@dataclass
class PhaseResult:
    name: str
    peak_bytes: int
    compiled: str  #: "eager", "traced" (torch.compile, aot_eager) or "eager fallback: why"


@dataclass
class DryRunReport:
    """What ``dry_run`` found: the device, the phases' peaks, the resident state per rank."""

    device: str
    target: str
    precision: str
    network_precision: str
    autocast: str | None
    phases: list[PhaseResult] = field(default_factory=list)
    params_bytes: int = 0
    grads_bytes: int = 0
    optimizer_bytes: int = 0
    buffers_bytes: int = 0
    chains_bytes: int = 0
    wrapper_bytes: int = 0  #: DDP buckets / ZeRO fp32 partition, per rank
    wrapper_note: str = ""
    zero_stage: int | None = None
    world_size: int = 1
    notes: list[str] = field(default_factory=list)
    bookkeeping: str = ""

    @property
    def peak_bytes(self) -> int:
        """The largest phase peak plus what the distributed wrapper adds per rank."""
        measured = max((p.peak_bytes for p in self.phases), default=0)
        return measured + self.wrapper_bytes - self.zero_savings

    @property
    def zero_savings(self) -> int:
        """Bytes per rank that ZeRO's partitioning removes from the measured single rank."""
        if not self.zero_stage or self.world_size <= 1:
            return 0
        share = 1 - 1 / self.world_size
        saved = self.optimizer_bytes * share
        if self.zero_stage >= 2:
            saved += self.grads_bytes * share
        return int(saved)

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "target": self.target,
            "precision": self.precision,
            "network_precision": self.network_precision,
            "autocast": self.autocast,
            "phases": [p.__dict__ for p in self.phases],
            "params_bytes": self.params_bytes,
            "grads_bytes": self.grads_bytes,
            "optimizer_bytes": self.optimizer_bytes,
            "buffers_bytes": self.buffers_bytes,
            "chains_bytes": self.chains_bytes,
            "wrapper_bytes": self.wrapper_bytes,
            "zero_stage": self.zero_stage,
            "world_size": self.world_size,
            "peak_bytes_per_rank": self.peak_bytes,
            "notes": self.notes,
        }

    def format(self) -> str:
        lines = [
            f"dry run on fake {self.device} ({self.target}): links {self.precision}, networks "
            f"{self.network_precision}" + (f" (autocast {self.autocast})" if self.autocast else ""),
        ]
        for p in self.phases:
            lines.append(f"  {p.name:<18} peak {_mib(p.peak_bytes):>10}  {p.compiled}")
        lines.append(
            f"  resident: parameters {_mib(self.params_bytes)}, gradients {_mib(self.grads_bytes)},"
            f" optimizer state {_mib(self.optimizer_bytes)}, buffers {_mib(self.buffers_bytes)},"
            f" chains {_mib(self.chains_bytes)}"
        )
        if self.wrapper_note:
            lines.append(f"  {self.wrapper_note}")
        lines.append(f"  peak memory per rank: {_mib(self.peak_bytes)}")
        if self.bookkeeping:
            lines.append(f"  {self.bookkeeping}")
        lines.extend(f"  note: {n}" for n in self.notes)
        lines.append("dry run passed")
        return "\n".join(lines)


def _mib(n: float) -> str:
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB"
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def _storage_bytes(tensors: Iterator[Tensor] | list[Tensor]) -> int:
    seen: set[int] = set()
    total = 0
    for t in tensors:
        st = t.untyped_storage()
        if id(st) in seen:
            continue
        seen.add(id(st))
        total += int(st.nbytes())
    return total


# ----------------------------------------------------------------------------------------------
# The run


@contextmanager
def fake_device(kind: str) -> Iterator[tuple[torch.device, DeviceWatch]]:
    """A fake ``kind:0`` device with its watch; CUDA autocast enabled on a build without CUDA."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    device = torch.device(kind, 0)
    watch = DeviceWatch(device)
    with ExitStack() as stack:
        stack.enter_context(mock.patch("torch.Generator", _FakeGenerator))
        stack.enter_context(mock.patch("torch.utils.swap_tensors", _swap_tensors))
        if kind == "cuda":
            # autocast("cuda") switches itself off where no CUDA device is present
            stack.enter_context(
                mock.patch("torch.cuda.amp.common.amp_definitely_not_available", lambda: False)
            )
            stack.enter_context(mock.patch("torch.cuda.is_bf16_supported", lambda *a, **k: True))
        stack.enter_context(_aot_eager_compile())
        stack.enter_context(FakeTensorMode(allow_non_fake_inputs=True))
        stack.enter_context(watch)
        stack.enter_context(GeneratorWatch())
        yield device, watch


_swap = torch.utils.swap_tensors


def _swap_tensors(t1: Tensor, t2: Tensor) -> None:
    """``Module.to`` swaps each fake parameter for its converted copy, which fake tensors refuse
    (references the fake mode keeps); the new data under the same parameter does the same."""
    try:
        _swap(t1, t2)  # type: ignore[no-untyped-call]
    except RuntimeError:
        t1.data = t2.data


@contextmanager
def _aot_eager_compile() -> Iterator[None]:
    """``torch.compile`` traces with dynamo and AOTAutograd but generates no device code."""
    original = torch.compile

    @functools.wraps(original)
    def compile_(fn: Any = None, **kwargs: Any) -> Any:
        kwargs.pop("mode", None)
        kwargs.pop("options", None)
        kwargs["backend"] = "aot_eager"
        return original(fn, **kwargs) if fn is not None else original(**kwargs)

    with mock.patch("torch.compile", compile_):
        try:
            yield
        finally:
            torch._dynamo.reset()


@contextmanager
def _phase(report: DryRunReport, watch: DeviceWatch, name: str, compiled: bool) -> Iterator[None]:
    from torch._dynamo.utils import counters

    watch.reset_peak()
    watch.strict = True
    graphs = counters["stats"]["unique_graphs"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            watch.strict = False
    traced = counters["stats"]["unique_graphs"] - graphs
    how = "eager" if not compiled else f"torch.compile: {traced} new graph(s) traced"
    for w in caught:
        text = str(w.message)
        if "torch.compile" in text and "failed" in text:
            how = "compile failed, eager fallback: " + text.split("failed", 1)[1].strip()[:160]
        elif text not in report.notes:
            report.notes.append(text)
    report.phases.append(PhaseResult(name, watch.peak, how))


def _zero_config(job_dir: Path) -> tuple[int | None, int]:
    path = job_dir / "ds_config.json"
    if not path.is_file():
        return None, 1
    config = json.loads(path.read_text(encoding="utf-8"))
    stage = int(config.get("zero_optimization", {}).get("stage", 0))
    world = int(config.get("_l2hmcc", {}).get("world_size", 1))
    return stage, world


def dry_run(
    *,
    kind: str,
    experiment: Experiment,
    lattice: Lattice,
    beta: Any,
    dynamics: Any,
    network: Any,
    loss: Any,
    train: Any,
    evaluate: Evaluate,
    hmc: Hmc,
    job_dir: Path,
    world_size: int | None = None,
) -> DryRunReport:
    """The three phases on a fake ``kind`` device (see the module docstring); raises
    ``DeviceMistake`` naming the place of the first mistake."""
    from . import hmc as hmc_module
    from .trainer import Trainer

    autocast = None
    if train.network_precision in ("bf16", "fp16"):
        autocast = train.network_precision if kind in AUTOCAST_DEVICES else None
    report = DryRunReport(
        device=f"{kind}:0",
        target=experiment.target,
        precision=train.precision,
        network_precision=train.network_precision,
        autocast=autocast,
    )
    with fake_device(kind) as (device, watch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                trainer = Trainer(
                    lattice.group,
                    lattice.shape,
                    beta,
                    dynamics,
                    network,
                    loss,
                    train,
                    backend=SingleProcessBackend(),
                    device=device,
                    log=None,
                )
            except DeviceMistake:
                raise
            except Exception as exc:
                raise _mistake(exc) from exc
        report.notes.extend(str(w.message) for w in caught)
        if lattice.start == "cold":
            trainer.x = trainer.group.cold(
                train.chains, lattice.shape, dtype=trainer.dtype, device=device
            )
        compiled = bool(train.compile)
        beta0 = trainer.beta.at(0, train.total_steps)
        try:
            _steady_state(trainer)
            with _phase(report, watch, "train step", compiled):
                metrics = trainer.train_step(beta0)
            _measure_state(report, trainer)
            bt = trainer._beta_tensor(trainer.beta.final(train.total_steps))
            with _phase(report, watch, "L2HMC trajectory", compiled):
                x = _chains(trainer.x, evaluate.chains)
                trainer.model.eval()
                v, d, u = trainer.model.draw(x, trainer.generator)
                with torch.no_grad():
                    prop = trainer.model.propose(x, v, bt, d)
                x_new, accepted = trainer.model.accept(x, prop, u)
                eval_metrics = trainer.model.metrics(x, x_new, prop, accepted)
                del x, v, d, u, prop, x_new, accepted
            eps = hmc.step_size if isinstance(hmc.step_size, float) else 0.1  # "tuned"
            n_steps = hmc_module.steps_for_length(eps, hmc.trajectory_length)
            run_steps = min(n_steps, HMC_STEPS)
            name = "HMC trajectory" + (f" ({run_steps}/{n_steps})" if run_steps < n_steps else "")
            with _phase(report, watch, name, compiled):
                x = _chains(trainer.x, hmc.chains)
                x, hmc_metrics = hmc_module.hmc_step(
                    x,
                    bt,
                    hmc.trajectory_length / n_steps,
                    run_steps,
                    trainer.generator,
                    integrator=trainer._hmc_integrator(),
                )
                del x
        except DeviceMistake:
            raise
        except Exception as exc:
            raise _mistake(exc) from exc
        shapes = {
            phase: {k: (tuple(v.shape), v.dtype) for k, v in m.items()}
            for phase, m in (("train", metrics), ("eval", eval_metrics), ("hmc", hmc_metrics))
        }
        state = trainer.state_dict()
    report.bookkeeping = _bookkeeping(shapes, state, trainer)
    return for_target(report, experiment.target, job_dir, world_size)


def for_target(
    report: DryRunReport, target: str, job_dir: Path, world_size: int | None = None
) -> DryRunReport:
    """``report`` accounted for ``target``'s wrapper: the phases run the single-rank path,
    the same for every target; DDP's buckets and ZeRO's partitions (``ds_config.json`` in
    ``job_dir``: stage, world size, or ``world_size``) are added per rank."""
    stage, ds_world = _zero_config(job_dir) if target == "pytorch-deepspeed" else (None, 1)
    out = dataclasses.replace(
        report,
        target=target,
        zero_stage=stage,
        world_size=(world_size or ds_world) if stage is not None else 1,
        wrapper_bytes=0,
        wrapper_note="",
        phases=list(report.phases),
        notes=list(report.notes),
    )
    _wrapper_memory(out)
    return out


def _steady_state(trainer: Any) -> None:
    """The optimizer state as after a first step (from the second step on it is alive in every
    phase), and no gradients: the backends release them after each step, so they exist only
    from the backward pass to the optimizer step, where the train step's peak holds them."""
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)


def _chains(x: Tensor, chains: int) -> Tensor:
    """``Run.chains_like``: ``chains`` chains from ``x``, repeated and cut."""
    if chains == x.shape[0]:
        return x.clone()
    reps = math.ceil(chains / x.shape[0])
    return x.repeat((reps,) + (1,) * (x.dim() - 1))[:chains].clone()


def _mistake(exc: Exception) -> DeviceMistake:
    """A fake-tensor error as a ``DeviceMistake`` at the job's frame where it happened."""
    frames = traceback.extract_tb(exc.__traceback__)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if type(exc).__name__ == "DataDependentOutputException":
        text = "a host sync (a value of a device tensor read on the host: .item(), float(), bool())"
    elif ".numpy()" in text:
        text = "a numpy round trip (.numpy() of a device tensor)"
    return DeviceMistake(f"{type(exc).__name__}: {text}", _place(frames))


def _measure_state(report: DryRunReport, trainer: Any) -> None:
    model = trainer.model
    params = [p for p in model.parameters()]
    report.params_bytes = _storage_bytes(params)
    # the gradients of the trainable parameters (same shapes and dtypes), alive from the backward
    # to the optimizer step; released after it, so read from the parameters, not ``p.grad``
    report.grads_bytes = _storage_bytes([p for p in params if p.requires_grad])
    report.buffers_bytes = _storage_bytes(list(model.buffers()))
    opt_tensors = [
        v for s in trainer.optimizer.state.values() for v in s.values() if isinstance(v, Tensor)
    ]
    report.optimizer_bytes = _storage_bytes(opt_tensors)
    report.chains_bytes = _storage_bytes([trainer.x])


def _wrapper_memory(report: DryRunReport) -> None:
    """What the target's wrapper adds (or removes) per rank beyond the single-rank run."""
    if report.target == "pytorch-ddp":
        report.wrapper_bytes = report.grads_bytes
        report.wrapper_note = (
            f"DDP gradient buckets: + {_mib(report.grads_bytes)} (one more copy of the gradients)"
        )
    elif report.zero_stage is not None:
        w, stage = report.world_size, report.zero_stage
        fp32 = report.params_bytes * 4 // trainer_elem_size(report)
        report.wrapper_bytes = fp32 // max(w, 1) if stage >= 1 else 0
        report.wrapper_note = (
            f"ZeRO stage {stage} over {w} rank(s): optimizer state"
            + (" and gradients" if stage >= 2 else "")
            + f" / {w} (- {_mib(report.zero_savings)}), fp32 parameter partition"
            f" + {_mib(report.wrapper_bytes)}"
        )


def trainer_elem_size(report: DryRunReport) -> int:
    """Bytes per network parameter (the links' real precision)."""
    return 8 if report.precision == "fp64" else 4


def _bookkeeping(shapes: dict[str, dict[str, Any]], state: dict[str, Any], trainer: Any) -> str:
    """Histories and a checkpoint written on the CPU from host tensors of the phases' shapes."""

    def host(t: Tensor) -> Tensor:
        return torch.zeros(t.shape, dtype=t.dtype, device="meta")

    with tempfile.TemporaryDirectory(prefix="l2hmcc-dry-run-") as tmp:
        for phase, keys in shapes.items():
            h = History()
            h.append({k: torch.zeros(s, dtype=dt) for k, (s, dt) in keys.items()})
            h.save(Path(tmp) / f"{phase}.npz", rank=0)
        meta_state = tree_map_only(Tensor, host, state)
        nbytes = sum(int(t.numel() * t.element_size()) for t in _flatten_tensors(meta_state))
        path = Path(tmp) / "checkpoint.pt"
        torch.save(meta_state, path)
        loaded = torch.load(path, map_location="meta", weights_only=False)
        if set(loaded) != set(state):
            raise DeviceMistake("a checkpoint does not round-trip", "trainer.state_dict")
    return f"histories and a checkpoint ({_mib(nbytes)} per rank) written on the CPU: ok"


def _flatten_tensors(tree: Any) -> list[Tensor]:
    out: list[Tensor] = []
    tree_map_only(Tensor, out.append, tree)
    return out


# ----------------------------------------------------------------------------------------------
# train.py --dry-run


def run_dry(
    args: argparse.Namespace,
    *,
    job_dir: Path,
    experiment: Experiment,
    lattice: Lattice,
    beta: Any,
    dynamics: Any,
    network: Any,
    loss: Any,
    train: Any,
    evaluate: Evaluate,
    hmc: Hmc,
    argv: list[str] | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """``train.py --dry-run``: the report on stdout and 0, or the mistake on stderr and 1."""
    kind = "cuda" if args.device == "auto" else args.device
    if kind not in ("cuda", "xpu", "cpu"):
        print(
            f"train.py --dry-run: --device {kind} has no fake device; use cuda or xpu",
            file=sys.stderr,
        )
        return 2
    if not device_built(kind):
        try:
            return _reexec(kind, job_dir / "train.py", list(sys.argv[1:] if argv is None else argv))
        except ShimError as exc:
            print(
                f"train.py --dry-run: this torch ({torch.__version__}) has no {kind} backend, and "
                f"the fake {kind} device library did not build (it needs a C++ compiler, CXX or "
                f"c++, and torch's headers):\n{exc}",
                file=sys.stderr,
            )
            return 2
    if args.compile is not None:
        train = dataclasses.replace(train, compile=args.compile)
    try:
        report = dry_run(
            kind=kind,
            experiment=experiment,
            lattice=lattice,
            beta=beta,
            dynamics=dynamics,
            network=network,
            loss=loss,
            train=train,
            evaluate=evaluate,
            hmc=hmc,
            job_dir=job_dir,
            world_size=args.ranks,
        )
    except DeviceMistake as exc:
        print(f"dry run failed on fake {kind}:0: {exc}", file=sys.stderr)
        return 1
    out(report.format())
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return 0
