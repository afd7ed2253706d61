"""``--target pytorch-deepspeed``: a DeepSpeed engine (ZeRO stage 0-2) over torch.distributed.

``ds_config.json`` comes from the spec: ZeRO stage, gradient clipping, and batch sizes
consistent with the world size (``train_batch_size = chains × ranks``, one micro-batch of
``chains`` per rank, no gradient accumulation). ``train.py`` recomputes ``train_batch_size`` for
the world size it actually runs with (``./run-local.sh --nproc N``), so one job directory runs
at any size.

Precision: the engine runs in the networks' precision (fp32, or fp64 for SU(N) in fp64; ZeRO
1/2 reduce fp64 gradients, stage 0 cannot: check E350). DeepSpeed's own fp16/bf16 modes would
cast the whole model, step sizes and log-Jacobian terms included, so they stay off: a spec's
``network_precision = bf16/fp16`` is autocast around the networks by the runtime instead.
ZeRO stage 3 is refused at compile time (check E351).

Locally ``run-local.sh`` starts one process with python and several with torchrun (or
DeepSpeed's launcher when the spec says ``launcher = deepspeed``); on ALCF systems ``job.pbs``
uses mpiexec or the deepspeed launcher (issue 5).
"""

from __future__ import annotations

from typing import Any

from l2hmcc import ir, manifest, render
from l2hmcc.targets import job
from l2hmcc.targets.base import RenderContext
from l2hmcc.targets.pytorch import PyTorchTarget

CONFIG_NAME = "ds_config.json"


def deepspeed_config(spec: ir.Spec, ctx: RenderContext) -> dict[str, Any]:
    """The DeepSpeed configuration of the spec (``ds_config.json``)."""
    d = spec.distributed
    stage = d.zero_stage if isinstance(d, ir.DeepSpeed) else 0
    ranks = job.spec_ranks(spec)
    chains = spec.train.chains
    config: dict[str, Any] = {
        "_l2hmcc": {
            "generated_by": manifest.header(ctx.spec_name, ctx.spec_sha256),
            "world_size": ranks,
            "note": "train.py sets train_batch_size = train_micro_batch_size_per_gpu x"
            " gradient_accumulation_steps x the world size it runs with, and drops this key.",
        },
        "train_batch_size": chains * ranks,
        "train_micro_batch_size_per_gpu": chains,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": spec.train.clip_norm,
        "zero_optimization": {"stage": stage},
    }
    if stage >= 1:
        # The trainer's own torch optimizer (Adam, AdamW, SGD) under ZeRO.
        config["zero_allow_untested_optimizer"] = True
    config.update(
        {
            "fp16": {"enabled": False},
            "bf16": {"enabled": False},
            "steps_per_print": max(spec.train.steps, 1),
            "wall_clock_breakdown": False,
        }
    )
    return config


def deepspeed_files(spec: ir.Spec, ctx: RenderContext) -> list[tuple[str, str]]:
    text = render.render("pytorch/ds_config.json.j2", config=deepspeed_config(spec, ctx))
    return [(CONFIG_NAME, text)]


def deepspeed_context(spec: ir.Spec) -> dict[str, Any]:
    d = spec.distributed
    return {
        "zero_stage": d.zero_stage if isinstance(d, ir.DeepSpeed) else 0,
        "config_name": CONFIG_NAME,
    }


TARGET = PyTorchTarget(
    name="pytorch-deepspeed",
    backend="deepspeed",
    description="PyTorch with DeepSpeed",
    local="deepspeed",
    runtime_imports={
        "common.launch": ("export_torch_env",),
        "pt.backends": (
            "DeepSpeedBackend",
            "deepspeed_config",
            "dist_backend",
            "skip_cpu_shm_build",
        ),
    },
    imports=("import deepspeed",),
    backend_context=deepspeed_context,
    extra_files=deepspeed_files,
)
