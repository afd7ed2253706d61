"""The schema table: which blocks and keys a spec may hold, with each key's converter and
the IR field it sets (`BLOCKS`). `l2hmcc.lower` walks a spec against it; ``docs/language.md``
documents every row (a test keeps the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from l2hmcc import ir
from l2hmcc.convert import (
    Context,
    Converter,
    beta,
    boolean,
    choice,
    env_value,
    hmc_step_size,
    integer,
    list_of,
    minutes,
    name_or_string,
    number,
    string,
)
from l2hmcc.syntax import (
    Ident,
    Value,
)


@dataclass(frozen=True)
class Key:
    """One attribute of a block: its converter and the IR field it sets (same name unless
    ``ir``)."""

    convert: Converter
    ir: str | None = None


@dataclass(frozen=True)
class BlockSchema:
    keys: dict[str, Key]
    #: The label: (IR field it sets, converter), or None if the block takes no label.
    label: tuple[str, Converter] | None = None
    label_required: bool = False
    label_doc: str = ""
    #: The label selects a variant: under another label a block replaces the base's whole in
    #: an `extends` chain (`l2hmcc.compose.VARIANT_BLOCKS`, with the label an unlabelled
    #: block stands for in `l2hmcc.compose.UNLABELLED`, which equals ``label_default``).
    variant: bool = False
    label_default: str | None = None
    nested: dict[str, BlockSchema] = field(default_factory=dict)
    #: Free-form blocks (``env``) take any key; ``convert`` applies to every value.
    free: Converter | None = None
    required: tuple[str, ...] = ()


def _label_name(v: Value, path: str, ctx: Context) -> str:
    assert isinstance(v, Ident)
    return v.name


BLOCKS: dict[str, BlockSchema] = {
    "experiment": BlockSchema(
        label=("name", _label_name),
        label_doc="the experiment's name (default: the spec's file name)",
        keys={"description": Key(string), "seed": Key(integer)},
    ),
    "lattice": BlockSchema(
        keys={
            "group": Key(choice(ir.GroupName)),
            "shape": Key(list_of(integer)),
            "action": Key(choice(ir.ActionName)),
            "beta": Key(beta),
            "start": Key(choice(ir.StartName)),
        },
        required=("group", "shape", "beta"),
    ),
    "dynamics": BlockSchema(
        keys={
            "leapfrog": Key(integer),
            "step_size": Key(number),
            "learnable_step_size": Key(boolean),
            "directions": Key(choice(ir.Directions)),
            "mask": Key(choice(ir.MaskKind)),
            "mask_seed": Key(integer),
            "x_update": Key(choice(ir.XUpdate)),
            "networks": Key(choice(ir.NetworkSharing)),
            "split_x": Key(boolean),
            "fourier": Key(number),
        }
    ),
    "network": BlockSchema(
        label=("kind", choice(ir.NetworkKind)),
        label_doc="the kind: l2hmc (the default), local (U1) or none (no networks)",
        variant=True,
        label_default="l2hmc",
        keys={
            "embedding": Key(choice(ir.Embedding)),
            "hidden": Key(list_of(integer, scalar_ok=True)),
            "activation": Key(choice(ir.Activation)),
            "dropout": Key(number),
            "batch_norm": Key(boolean),
            "scale_s": Key(number),
            "scale_q": Key(number),
            "head_init": Key(number),
            "fourier": Key(number),
        },
        nested={
            "conv": BlockSchema(
                keys={
                    "filters": Key(list_of(integer, scalar_ok=True)),
                    "kernel": Key(list_of(integer, scalar_ok=True)),
                    "pool": Key(list_of(integer, scalar_ok=True)),
                    "padding": Key(choice(ir.ConvPadding)),
                },
                required=("filters",),
            )
        },
    ),
    "loss": BlockSchema(
        keys={
            "plaquette": Key(number),
            "charge": Key(number),
            "rmse": Key(number),
            "form": Key(choice(ir.LossForm)),
            "scale": Key(number),
            "aux_weight": Key(number),
        }
    ),
    "train": BlockSchema(
        keys={
            "steps": Key(integer),
            "eras": Key(integer),
            "steps_per_era": Key(integer),
            "chains": Key(integer),
            "optimizer": Key(choice(ir.Optimizer)),
            "lr": Key(number),
            "step_size_lr_factor": Key(number),
            "lr_schedule": Key(choice(ir.LrSchedule)),
            "lr_final": Key(number),
            "warmup_steps": Key(integer),
            "weight_decay": Key(number),
            "clip_norm": Key(number),
            "precision": Key(choice(ir.Precision)),
            "network_precision": Key(choice(ir.Precision)),
            "compile": Key(boolean),
            "checkpoint_every": Key(integer),
            "keep_checkpoints": Key(integer),
            "log_every": Key(integer),
        }
    ),
    "evaluate": BlockSchema(
        keys={
            "steps": Key(integer),
            "chains": Key(integer),
            "compile": Key(boolean),
            "ablation": Key(boolean),
        }
    ),
    "hmc": BlockSchema(
        keys={
            "steps": Key(integer),
            "chains": Key(integer),
            "step_size": Key(hmc_step_size),
            "trajectory_length": Key(number),
            "fourier": Key(number),
        }
    ),
    "thermalize": BlockSchema(
        keys={"max_trajectories": Key(integer), "window": Key(integer)},
    ),
    "distributed": BlockSchema(
        label=("backend", choice(ir.BackendName)),
        label_required=True,
        label_doc="the backend: none, ddp, horovod or deepspeed",
        variant=True,
        keys={
            "launcher": Key(name_or_string),
            "zero_stage": Key(integer),
            "find_unused_parameters": Key(boolean),
            "fp16_allreduce": Key(boolean),
        },
    ),
    "job": BlockSchema(
        label=("system", choice(ir.SystemName)),
        label_required=True,
        label_doc="the system: local, polaris, aurora or sunspot",
        variant=True,
        keys={
            "name": Key(name_or_string),
            "account": Key(string),
            "queue": Key(name_or_string),
            "nodes": Key(integer),
            "ranks_per_node": Key(integer),
            "walltime": Key(minutes, ir="walltime_min"),
            "filesystems": Key(list_of(name_or_string, scalar_ok=True)),
            "modules": Key(list_of(name_or_string, scalar_ok=True)),
            "preemptable": Key(boolean),
            "continue": Key(integer, ir="continue_jobs"),
        },
        nested={"env": BlockSchema(keys={}, free=env_value)},
    ),
}
