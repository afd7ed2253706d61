"""Distributed backends for the trainer: DDP, DeepSpeed and Horovod (``distributed.Backend``).

Each class implements the ``Backend`` protocol of ``distributed.py`` (rank, world size, ``wrap``,
``unwrap``, ``backward_and_step``, ``all_reduce_mean``, ``barrier``, ``broadcast_parameters``)
plus three things the job driver (``job.py``) uses:

* ``all_gather_chains(array)``: per-chain metric arrays ``[T, B, ...]`` of every rank joined
  along the chain axis on every rank (``[T, world·B, ...]``), so rank 0 summarises all chains;
* ``gather_objects(obj)``: a small picklable object from every rank (host names for run.json);
* ``after_resume()``: called once after a checkpoint was loaded into the plain module and the
  client optimizer (DeepSpeed's ZeRO keeps its own fp32 copy of the parameters to refresh);
* ``comm``: the communication library for run.json (``gloo``, ``nccl``, ``horovod`` …, or
  ``None``); ``close()``: tear the process group down at the end.

Every rank runs its own chains; gradients are averaged over ranks (DDP's hooks,
``engine.backward``, Horovod's ``DistributedOptimizer``), so the parameters stay identical.
The framework modules (``torch.distributed`` set up, ``deepspeed``, ``horovod.torch``) are
imported by the class that needs them, so the plain target never imports DeepSpeed or Horovod.

Device and communication library: ``select_device`` picks ``cuda``/``xpu``/``mps``/``cpu`` (the
local rank's device when a node has several), and ``dist_backend`` the matching
``torch.distributed`` backend (``nccl``/``xccl``/``gloo``; ``L2HMCC_DIST_BACKEND`` overrides, as
the generated PBS scripts set it per system and module version).
"""

from __future__ import annotations

import json
import os
from typing import Any, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from ..common.launch import LaunchEnv, SingleRankExtras
from .distributed import SingleProcess, clip_and_step

__all__ = [
    "DDPBackend",
    "DeepSpeedBackend",
    "HorovodBackend",
    "SingleProcessBackend",
    "deepspeed_config",
    "dist_backend",
    "select_device",
    "skip_cpu_shm_build",
]

T = TypeVar("T", Tensor, dict[str, Tensor])

DEVICE_KINDS = ("auto", "cpu", "cuda", "xpu", "mps")


def _xpu_available() -> bool:
    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu.is_available())


def select_device(env: LaunchEnv, preference: str = "auto") -> torch.device:
    """The device of this rank: ``preference`` (``auto``: cuda, then xpu, then mps, then cpu).

    With several visible accelerators the local rank picks one (``cuda:LOCAL_RANK`` modulo the
    count); when a launcher made one device visible per rank (Polaris' affinity wrapper) that is
    device 0.
    """
    if preference not in DEVICE_KINDS:
        raise ValueError(f"device: expected one of {DEVICE_KINDS}, got {preference!r}")
    kind = preference
    if kind == "auto":
        if torch.cuda.is_available():
            kind = "cuda"
        elif _xpu_available():
            kind = "xpu"
        elif torch.backends.mps.is_available() and env.world_size == 1:
            kind = "mps"
        else:
            kind = "cpu"
    if kind == "cuda":
        device = torch.device("cuda", env.local_rank % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(device)
        return device
    if kind == "xpu":
        device = torch.device("xpu", env.local_rank % max(torch.xpu.device_count(), 1))
        torch.xpu.set_device(device)
        return device
    return torch.device(kind)


def dist_backend(device: torch.device) -> str:
    """``torch.distributed`` backend for ``device``: nccl (CUDA), xccl (XPU), gloo (CPU, MPS);
    the environment variable ``L2HMCC_DIST_BACKEND`` overrides (e.g. ``ccl`` on older Aurora
    frameworks modules)."""
    override = os.environ.get("L2HMCC_DIST_BACKEND")
    if override:
        return override
    return {"cuda": "nccl", "xpu": "xccl"}.get(device.type, "gloo")


def _stack_scalars(value: dict[str, Tensor]) -> tuple[list[str], Tensor]:
    keys = sorted(value)
    return keys, torch.stack([value[k].detach().to(torch.float64).reshape(()) for k in keys])


def _unstack(keys: list[str], flat: Tensor, like: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: flat[i].to(like[k].dtype) for i, k in enumerate(keys)}


class SingleProcessBackend(SingleRankExtras, SingleProcess):
    """``SingleProcess`` with the job driver's extras (identity gathers, nothing to refresh)."""


class _TorchDistributed:
    """Collectives over an initialised ``torch.distributed`` default group (DDP, DeepSpeed)."""

    device: torch.device

    def __init__(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised; call init_process_group")
        self._dist = dist
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def comm(self) -> str:
        return str(self._dist.get_backend())

    def close(self) -> None:
        if self._dist.is_initialized():
            self._dist.destroy_process_group()

    def _comm_device(self) -> torch.device:
        # gloo reduces CPU tensors only; nccl/xccl need tensors on the rank's device.
        return torch.device("cpu") if self._dist.get_backend() == "gloo" else self.device

    def all_reduce_mean(self, value: T) -> T:
        dist = self._dist
        if isinstance(value, dict):
            if not value:
                return value
            keys, flat = _stack_scalars(value)
            flat = flat.to(self._comm_device())
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat = (flat / self.world_size).to(next(iter(value.values())).device)
            return _unstack(keys, flat, value)
        t = value.detach().to(self._comm_device(), torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return (t / self.world_size).to(value.device, value.dtype)

    def barrier(self) -> None:
        self._dist.barrier()

    def broadcast_parameters(self, model: nn.Module) -> None:
        dist = self._dist
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                buf = tensor.detach().to(self._comm_device())
                dist.broadcast(buf, src=0)
                tensor.copy_(buf.to(tensor.device))

    def all_gather_chains(self, array: NDArray[Any]) -> NDArray[Any]:
        t = torch.from_numpy(np.ascontiguousarray(array)).to(self._comm_device())
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        self._dist.all_gather(parts, t)
        return np.concatenate([p.cpu().numpy() for p in parts], axis=1)

    def gather_objects(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(out, obj)
        return out


class DDPBackend(_TorchDistributed):
    """``torch.nn.parallel.DistributedDataParallel`` over the default process group."""

    def __init__(self, device: torch.device, *, find_unused_parameters: bool = False) -> None:
        super().__init__()
        self.device = device
        self.find_unused_parameters = find_unused_parameters
        self._model: nn.Module | None = None
        self._optimizer: torch.optim.Optimizer | None = None

    def wrap(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type in ("cuda", "xpu") else None
        ddp = DistributedDataParallel(
            model,
            device_ids=ids,
            find_unused_parameters=self.find_unused_parameters,
        )
        self._model, self._optimizer = model, optimizer
        return ddp, optimizer

    def unwrap(self, model: nn.Module) -> nn.Module:
        inner = getattr(model, "module", model)
        assert isinstance(inner, nn.Module)
        return inner

    def backward_and_step(self, loss: Tensor, clip_norm: float | None = None) -> Tensor | None:
        if self._model is None or self._optimizer is None:
            raise RuntimeError("DDPBackend.backward_and_step before wrap(model, optimizer)")
        self._optimizer.zero_grad(set_to_none=True)
        # DDP's hooks average the gradients over ranks
        loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        return clip_and_step(self._model, self._optimizer, clip_norm)

    def after_resume(self) -> None:
        return None


def skip_cpu_shm_build(device: torch.device) -> None:
    """Keep DeepSpeed from JIT-compiling its shared-memory CPU allreduce at start-up.

    On a CPU-only machine DeepSpeed 0.19's torch backend builds the C++ op
    ``deepspeed_shm_comm`` when the process group starts (about 2 minutes on 2 cores, then
    cached in ``TORCH_EXTENSIONS_DIR``); without it DeepSpeed uses torch.distributed's (gloo)
    allreduce, which is all these small gradient buffers need. GPU runs never build it.
    ``L2HMCC_DEEPSPEED_SHM=1`` keeps DeepSpeed's default.
    """
    if device.type != "cpu" or os.environ.get("L2HMCC_DEEPSPEED_SHM") == "1":
        return
    import deepspeed.ops

    # DeepSpeed probes op compatibility once per process and keeps the dict it consults.
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def deepspeed_config(path: str | os.PathLike[str], world_size: int) -> dict[str, Any]:
    """``ds_config.json`` for this run: without l2hmcc's ``_l2hmcc`` notes, and with
    ``train_batch_size = micro batch × gradient accumulation × world_size``."""
    with open(path, encoding="utf-8") as fh:
        config: dict[str, Any] = json.load(fh)
    config.pop("_l2hmcc", None)
    micro = int(config["train_micro_batch_size_per_gpu"])
    accumulation = int(config.get("gradient_accumulation_steps", 1))
    config["train_batch_size"] = micro * accumulation * world_size
    return config


class DeepSpeedBackend(_TorchDistributed):
    """A DeepSpeed engine (``deepspeed.initialize``) built from a ``ds_config.json`` dict.

    The engine gets the trainer's torch optimizer (the config has no ``optimizer`` section), so
    the trainer's learning-rate schedule keeps acting on that optimizer's ``param_groups``;
    gradient clipping is the config's ``gradient_clipping``. ``deepspeed.init_distributed`` must
    have run first. Every parameter needs at least one dimension (the engine broadcasts them
    at start as bytes, ``p.data.view(torch.uint8)``).
    """

    def __init__(self, config: dict[str, Any], device: torch.device) -> None:
        super().__init__()
        self.config = config
        self.device = device
        self.engine: Any = None

    def wrap(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        import deepspeed

        engine, _, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, config=self.config, dist_init_required=False
        )
        self.engine = engine
        # The trainer's LambdaLR and checkpoints use the client optimizer: ZeRO 1/2 step it on
        # their flat fp32 partitions, so its param_groups carry the learning rate.
        return engine, optimizer

    def unwrap(self, model: nn.Module) -> nn.Module:
        inner = getattr(model, "module", model)
        assert isinstance(inner, nn.Module)
        return inner

    def backward_and_step(self, loss: Tensor, clip_norm: float | None = None) -> Tensor | None:
        if self.engine is None:
            raise RuntimeError("DeepSpeedBackend.backward_and_step before wrap(model, optimizer)")
        self.engine.backward(loss)
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        if norm is None:
            return None
        return torch.as_tensor(float(norm))

    def after_resume(self) -> None:
        """Copy the loaded module parameters into ZeRO's fp32 partitions (stage ≥ 1)."""
        opt = getattr(self.engine, "optimizer", None)
        refresh = getattr(opt, "refresh_fp32_params", None)
        if callable(refresh):
            refresh()


class HorovodBackend:
    """Horovod: ``hvd.DistributedOptimizer`` (averaged gradients), broadcasts from rank 0.

    ``hvd.init()`` must have run first. ``fp16_allreduce`` compresses gradients to fp16 for the
    allreduce (``hvd.Compression.fp16``).
    """

    def __init__(self, device: torch.device, *, fp16_allreduce: bool = False) -> None:
        import horovod.torch as hvd

        self._hvd = hvd
        self.device = device
        self.rank: int = hvd.rank()
        self.world_size: int = hvd.size()
        self.fp16_allreduce = fp16_allreduce
        self._model: nn.Module | None = None
        self._optimizer: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def comm(self) -> str:
        return "horovod-gloo" if self._hvd.gloo_enabled() else "horovod-mpi"

    def close(self) -> None:
        self._hvd.shutdown()

    def wrap(
        self, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        hvd = self._hvd
        compression = hvd.Compression.fp16 if self.fp16_allreduce else hvd.Compression.none
        dist_opt = hvd.DistributedOptimizer(
            optimizer,
            named_parameters=[(n, p) for n, p in model.named_parameters() if p.requires_grad],
            compression=compression,
        )
        hvd.broadcast_optimizer_state(dist_opt, root_rank=0)
        self._model, self._optimizer = model, dist_opt
        return model, dist_opt

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model

    def backward_and_step(self, loss: Tensor, clip_norm: float | None = None) -> Tensor | None:
        if self._model is None or self._optimizer is None:
            raise RuntimeError("HorovodBackend.backward_and_step before wrap(model, optimizer)")
        opt = self._optimizer
        opt.zero_grad()  # Horovod's wrapper takes no set_to_none
        loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        opt.synchronize()  # the gradients are averaged here, before clipping
        norm = None
        if clip_norm:
            norm = torch.nn.utils.clip_grad_norm_(self._model.parameters(), clip_norm)
        with opt.skip_synchronize():
            opt.step()
        opt.zero_grad()  # release the gradients between steps (None in torch >= 2)
        return norm

    def all_reduce_mean(self, value: T) -> T:
        hvd = self._hvd
        if isinstance(value, dict):
            if not value:
                return value
            keys, flat = _stack_scalars(value)
            flat = hvd.allreduce(flat.cpu(), op=hvd.Average, name="metrics")
            return _unstack(keys, flat.to(next(iter(value.values())).device), value)
        out = hvd.allreduce(value.detach().cpu().to(torch.float64), op=hvd.Average)
        return out.to(value.device, value.dtype)  # type: ignore[no-any-return]

    def barrier(self) -> None:
        self._hvd.barrier()

    def broadcast_parameters(self, model: nn.Module) -> None:
        # Horovod broadcasts floating and integer tensors only (not the bool masks, which every
        # rank builds identically from the mask seed).
        state = [(k, v) for k, v in model.state_dict().items() if v.dtype != torch.bool]
        self._hvd.broadcast_parameters(state, root_rank=0)

    def all_gather_chains(self, array: NDArray[Any]) -> NDArray[Any]:
        # hvd.allgather concatenates along the first axis: put the chain axis first.
        t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(array, 1, 0)))
        out = self._hvd.allgather(t).numpy()
        return np.moveaxis(out, 0, 1)

    def gather_objects(self, obj: Any) -> list[Any]:
        return list(self._hvd.allgather_object(obj))

    def after_resume(self) -> None:
        return None
