"""Lower the syntax tree to the IR, keeping a map from IR paths back to source spans.

The grammar only knows blocks and attributes; lowering walks the tree against the schema
table (`l2hmcc.blocks.BLOCKS`: which blocks and keys exist), converts each value to its IR type
(`l2hmcc.convert`), fills in the defaults that depend on other fields (x update and precision
per gauge group, evaluation chains), and validates the result with pydantic. Every problem
becomes a diagnostic pointing at the user's text: unknown keys get a "did you mean", wrong
types say what was expected and what was found, and pydantic's range errors are mapped back
through the `SpanMap` (`l2hmcc.spanmap`). ``--set`` overrides (`l2hmcc.overrides`) are applied
to the tree before it is lowered.

`sweep(a, b, ...)` values are typed here: the field gets the first value, the spec records the
scan in `Spec.sweeps`, and every other value is checked by lowering the spec again with that
value in place (so `leapfrog = sweep(4, 0)` reports the 0).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError

from l2hmcc import ir
from l2hmcc.blocks import BLOCKS, BlockSchema
from l2hmcc.convert import Context, Converter, Reject
from l2hmcc.diagnostics import Diagnostic, Label, did_you_mean, error, finalize, quote_list
from l2hmcc.overrides import created_by_override
from l2hmcc.spanmap import SpanMap, length_is_fine, pydantic_diagnostic
from l2hmcc.syntax import (
    Attribute,
    Block,
    Call,
    Ident,
    Item,
    Name,
    SpecFile,
    Value,
)


@dataclass(frozen=True)
class SweepSite:
    """A ``key = sweep(a, b, ...)`` attribute: its key path (``lattice.beta``), the attribute
    and the call, whose arguments are the values of the scan (`l2hmcc.sweep` expands them)."""

    path: str
    attribute: Attribute
    call: Call


@dataclass(frozen=True)
class LowerResult:
    spec: ir.Spec | None
    spans: SpanMap
    diagnostics: list[Diagnostic]
    sweeps: tuple[SweepSite, ...] = ()


#: Keys of the `distributed` block per backend (the IR model decides; this table only
#: phrases the error when a key belongs to another backend).
_BACKEND_KEYS = {
    name: set(model.model_fields) - {"backend"}
    for name, model in (
        ("none", ir.NoBackend),
        ("ddp", ir.DDP),
        ("horovod", ir.Horovod),
        ("deepspeed", ir.DeepSpeed),
    )
}

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: The most points the sweeps of a spec may make (`l2hmcc.sweep.MAX_POINTS`; a test keeps
#: them equal).
MAX_SWEEP_POINTS = 1024


def lower(tree: SpecFile, source_name: str) -> LowerResult:
    """Lower a parsed spec to a resolved `ir.Spec` (None if there are errors)."""
    ctx = Context(tree.span)
    spec = _lower(tree, source_name, ctx)
    diagnostics = list(ctx.diagnostics)
    # Check every other value of each sweep by lowering the spec with that value in place
    # (and every other sweep at its first value); not for more points than l2hmcc compiles,
    # which would take time in proportion for nothing.
    firsts: dict[int, Value] = {id(attr): call.args[0] for _, attr, call, _ in ctx.sweeps}
    calls = [call for _, _, call, _ in ctx.sweeps]
    count = math.prod(len(c.args) for c in calls)
    if count > MAX_SWEEP_POINTS:
        diagnostics.append(
            error(
                "E306",
                f"the sweeps make {count} points; l2hmcc compiles at most {MAX_SWEEP_POINTS}",
                calls[0].span,
                f"{' × '.join(str(len(c.args)) for c in calls)} points",
                secondary=[Label(c.span, "") for c in calls[1:]],
                help="split the scan into several specs (`extends` a common base)",
            )
        )
    for _path, attr, call, _values in ctx.sweeps if count <= MAX_SWEEP_POINTS else ():
        for arg in call.args[1:]:
            variant = replace_values(tree, {**firsts, id(attr): arg})
            vctx = Context(tree.span, allow_sweep=False)
            _lower(variant, source_name, vctx)
            diagnostics.extend(vctx.diagnostics)
    sites = tuple(SweepSite(path, attr, call) for path, attr, call, _ in ctx.sweeps)
    return LowerResult(spec, ctx.spans, finalize(diagnostics), sites)


def replace_values(tree: SpecFile, values: dict[int, Value]) -> SpecFile:
    """The tree with the values of some attributes (keyed by ``id``) replaced."""

    def walk(items: tuple[Item, ...]) -> tuple[Item, ...]:
        out: list[Item] = []
        for it in items:
            if isinstance(it, Attribute) and id(it) in values:
                out.append(replace(it, value=values[id(it)]))
            elif isinstance(it, Block):
                out.append(replace(it, items=walk(it.items)))
            else:
                out.append(it)
        return tuple(out)

    return replace(tree, items=walk(tree.items))


def _lower(tree: SpecFile, source_name: str, ctx: Context) -> ir.Spec | None:
    data: dict[str, Any] = {}
    seen: dict[str, Block] = {}
    for item in tree.items:
        if isinstance(item, Attribute):
            ctx.diagnostics.append(
                error(
                    "E009",
                    f"attribute `{item.key.text}` outside a block",
                    item.key.span,
                    "must be inside a block",
                    help=_home_of(item.key.text),
                )
            )
            continue
        kind = item.kind.text
        schema = BLOCKS.get(kind)
        if schema is None:
            guess = did_you_mean(kind, list(BLOCKS))
            ctx.diagnostics.append(
                error(
                    "E101",
                    f"unknown block `{kind}`",
                    item.kind.span,
                    "unknown block",
                    help=f"did you mean `{guess}`?"
                    if guess
                    else f"blocks are {quote_list(list(BLOCKS))}",
                )
            )
            continue
        if kind in seen:
            ctx.diagnostics.append(
                error(
                    "E106",
                    f"duplicate block `{kind}`",
                    item.header,
                    "second definition",
                    secondary=[Label(seen[kind].header, "first defined here")],
                    help="merge the two blocks",
                )
            )
            continue
        seen[kind] = item
        data[kind] = _block(item, schema, kind, ctx)

    if "lattice" not in seen:
        ctx.diagnostics.append(
            error(
                "E108",
                "missing block `lattice`",
                ctx.spans.file_span,
                "",
                help="add e.g. `lattice { group = U1  shape = [16, 16]  beta = 4.0 }`",
            )
        )
    if "lattice" not in seen:
        return None
    # Go on after key and type errors (the rejected values are left out, so defaults stand
    # in), so that range and consistency errors are reported in the same run.
    net = seen.get("network")
    default_net = net is not None and net.label is None and created_by_override(net)
    _resolve(data, source_name, ctx, default_network=default_net)
    return _validate(data, ctx)


def _home_of(key: str) -> str:
    homes = [k for k, s in BLOCKS.items() if key in s.keys]
    if homes:
        return f"put it in {quote_list([f'{h} {{ ... }}' for h in homes])}"
    return "attributes are written inside a block, e.g. `train { steps = 2000 }`"


def _block(block: Block, schema: BlockSchema, path: str, ctx: Context) -> dict[str, Any]:
    ctx.spans.keys[path] = block.header
    out: dict[str, Any] = {}
    if block.label is not None:
        if schema.label is None:
            ctx.diagnostics.append(
                error(
                    "E110",
                    f"block `{path}` takes no label",
                    block.label.span,
                    "unexpected label",
                    help=f"write `{block.kind.text} {{ ... }}`"
                    + (
                        f"; did you mean `{block.label.text} = ...`?"
                        if block.label.text in schema.keys
                        else ""
                    ),
                )
            )
        else:
            field_name, convert_label = schema.label
            label_value = Ident(block.label.span, block.label.text)
            try:
                out[field_name] = convert_label(label_value, f"{path}.{field_name}", ctx)
                ctx.spans.values[f"{path}.{field_name}"] = block.label.span
            except Reject:
                pass
    elif schema.label_required:
        ctx.diagnostics.append(
            error(
                "E110",
                f"block `{path}` needs a label: {schema.label_doc}",
                block.kind.span,
                "label missing",
                help=f"e.g. `{block.kind.text} {_label_example(path)} {{ ... }}`",
            )
        )
    first: dict[str, Name] = {}
    for item in block.items:
        if isinstance(item, Block):
            key = item.kind.text
            nested = schema.nested.get(key)
            if nested is None:
                ctx.diagnostics.append(_unknown(item.kind, path, schema, is_block=True))
                continue
            if key in first:
                ctx.diagnostics.append(_duplicate(item.kind, first[key], f"{path}.{key}", True))
                continue
            first[key] = item.kind
            out[key] = _block(item, nested, f"{path}.{key}", ctx)
            continue
        key = item.key.text
        kpath = f"{path}.{key}"
        if schema.free is not None:
            if not _ENV_NAME.fullmatch(key):
                ctx.diagnostics.append(
                    error(
                        "E104",
                        f"`{key}` is not a valid environment variable name",
                        item.key.span,
                        "letters, digits and `_` only",
                    )
                )
                continue
            convert: Converter = schema.free
            ir_name = key
        else:
            spec_key = schema.keys.get(key)
            if spec_key is None:
                ctx.diagnostics.append(_unknown(item.key, path, schema, is_block=False))
                continue
            convert, ir_name = spec_key.convert, spec_key.ir or key
        if key in first:
            ctx.diagnostics.append(_duplicate(item.key, first[key], kpath, False))
            continue
        first[key] = item.key
        ir_path = f"{path}.{ir_name}"
        ctx.spans.keys[ir_path] = item.key.span
        ctx.spans.values[ir_path] = item.value.span
        try:
            out[ir_name] = _attribute(item, convert, kpath, ctx)
        except Reject:
            continue
    for req in schema.required:
        if req not in first:
            ctx.diagnostics.append(
                error(
                    "E109",
                    f"block `{path}` is missing `{req}`",
                    block.header,
                    f"needs `{req} = ...`",
                    help=_required_help(path, req),
                )
            )
    return out


def _attribute(item: Attribute, convert: Converter, path: str, ctx: Context) -> Any:
    v = item.value
    if not (isinstance(v, Call) and v.name.text == "sweep"):
        return convert(v, path, ctx)
    if not ctx.allow_sweep:
        raise ctx.reject(error("E112", "nested sweep", v.span))
    if not v.args:
        raise ctx.reject(
            error(
                "E112",
                "`sweep()` needs at least one value",
                v.span,
                "empty sweep",
                help="write `sweep(a, b, ...)`",
            )
        )
    values = []
    bad = False
    for arg in v.args:
        try:
            values.append(convert(arg, path, ctx))
        except Reject:
            bad = True
    if bad:
        raise Reject()
    ctx.sweeps.append((path, item, v, values))
    ctx.spans.values.setdefault(path, v.span)  # sweeps are named by the key as written
    return values[0]


def _label_example(path: str) -> str:
    return {"distributed": "ddp", "job": "polaris"}.get(path, "NAME")


def _required_help(path: str, key: str) -> str:
    examples = {
        "lattice.group": "group = U1",
        "lattice.shape": "shape = [16, 16]",
        "lattice.beta": "beta = 4.0",
        "network.conv.filters": "filters = [4, 8]",
    }
    return f"add `{examples.get(f'{path}.{key}', f'{key} = ...')}`"


def _unknown(name: Name, path: str, schema: BlockSchema, *, is_block: bool) -> Diagnostic:
    key = name.text
    known = [*schema.keys, *schema.nested]
    guess = did_you_mean(key, known)
    what = "block" if is_block else "key"
    help: str | None
    if is_block and key in schema.keys:
        help = f"`{key}` is an attribute: write `{key} = ...`"
    elif not is_block and key in schema.nested:
        help = f"`{key}` is a block: write `{key} {{ ... }}`"
    elif guess:
        help = f"did you mean `{guess}`?"
    elif others := [b for b, s in BLOCKS.items() if key in s.keys]:
        help = f"`{key}` belongs in {quote_list(others)}"
    else:
        help = f"`{path}` takes {quote_list(known)}" if known else None
    return error(
        "E102" if not is_block else "E101",
        f"unknown {what} `{key}` in `{path}`",
        name.span,
        f"unknown {what}",
        help=help,
    )


def _duplicate(name: Name, first: Name, path: str, is_block: bool) -> Diagnostic:
    return error(
        "E106" if is_block else "E107",
        f"duplicate {'block' if is_block else 'key'} `{path}`",
        name.span,
        "second definition",
        secondary=[Label(first.span, "first defined here")],
        help="remove one of them",
    )


def _resolve(
    data: dict[str, Any], source_name: str, ctx: Context, *, default_network: bool = False
) -> None:
    """Fill in the defaults that depend on other fields, and the train step forms.
    ``default_network``: the `network` block is one that ``--set network.KEY=...`` created
    (the spec has none), so it adjusts the group's default network."""
    exp = data.setdefault("experiment", {})
    if "name" not in exp:
        stem = PurePath(source_name).stem or "experiment"
        exp["name"] = re.sub(r"[^A-Za-z0-9_.-]", "-", stem).lstrip(".-") or "experiment"
    lattice = data.get("lattice", {})
    group = lattice.get("group", "U1")
    dyn = data.setdefault("dynamics", {})
    dyn.setdefault("x_update", "compact" if group == "U1" else "group")
    seed = exp.get("seed", ir.Experiment.model_fields["seed"].default)
    if 0 <= seed < 2**63:  # else `experiment.seed` is reported, and only there
        dyn.setdefault("mask_seed", seed)
    train = data.setdefault("train", {})
    train.setdefault("precision", "fp32" if group == "U1" else "fp64")
    net_default = train["precision"] if train["precision"] in ("fp32", "fp64") else "fp32"
    train.setdefault("network_precision", net_default)
    _resolve_steps(train, ctx)
    chains = train.get("chains", ir.Train.model_fields["chains"].default)
    evaluate = data.setdefault("evaluate", {})
    evaluate.setdefault("chains", chains)
    evaluate.setdefault("compile", train.get("compile", ir.Train.model_fields["compile"].default))
    data.setdefault("hmc", {}).setdefault("chains", chains)
    dist = data.get("distributed")
    if dist is not None:
        backend = dist.setdefault("backend", "none")
        for key in list(dist):
            if key != "backend" and key not in _BACKEND_KEYS.get(backend, set()):
                owners = [b for b, keys in _BACKEND_KEYS.items() if key in keys]
                ctx.diagnostics.append(
                    error(
                        "E102",
                        f"`{key}` is not an option of the `{backend}` backend",
                        ctx.spans.key(f"distributed.{key}"),
                        f"not a `{backend}` option",
                        help=f"`{key}` belongs to {quote_list(owners)}",
                    )
                )
                del dist[key]
    _group_defaults(data, default_network)
    _resolve_network(data, ctx)
    conv = (data.get("network") or {}).get("conv")
    if conv is not None and "filters" in conv:
        n = len(conv["filters"])
        conv.setdefault("kernel", [3] * n)
        conv.setdefault("pool", [1] * n)


#: The network of a U(1) spec (2D or 3D lattice) without a `network` block (docs/recipe.md).
U1_NETWORK: dict[str, Any] = {
    "kind": "local",
    "conv": {"filters": (8,), "kernel": (3,)},
    "hidden": (8,),
    "activation": "tanh",
}
#: The Fourier filter's initial mass² of a U(1) spec (2D or 3D lattice) that gets the default
#: network and does not write `dynamics.fourier` (docs/recipe.md); 0 otherwise.
U1_FOURIER = 0.5
#: The loss of a 2D U(1) spec, for the keys its `loss` block does not write: the charge term
#: alone, plain form (docs/recipe.md).
U1_2D_LOSS: dict[str, Any] = {"charge": 1.0, "plaquette": 0.0, "form": "plain"}
#: The step sizes' learning-rate factor of a U(1) spec with learnable step sizes.
U1_STEP_SIZE_LR_FACTOR = 3.0
#: Keys of the `network` block that `network local` does not take.
_NOT_LOCAL = ("embedding", "dropout", "batch_norm")


def _group_defaults(data: dict[str, Any], default_network: bool = False) -> None:
    """Defaults that depend on the gauge group, for the keys the spec does not write (the IR
    fields' own defaults are the SU(N) ones): U(1) gets `network local` (2D and 3D lattices,
    when there is no `network` block, or only the one that ``--set`` made: ``default_network``,
    whose keys are laid over the default), the charge loss in plain form (2D, where the charge
    is defined) and step sizes that learn 3× faster than the networks. With the default network
    comes its Fourier filter (`dynamics.fourier`, ``U1_FOURIER``), unless the spec writes one."""
    lattice = data.get("lattice", {})
    if lattice.get("group", "U1") != "U1":
        return
    dims = len(lattice.get("shape", ()))
    if dims in (2, 3) and ("network" not in data or default_network):
        written = data.get("network", {})  # a `conv` written replaces the default's whole
        data["network"] = {**U1_NETWORK, "conv": dict(U1_NETWORK["conv"]), **written}
        data.setdefault("dynamics", {}).setdefault("fourier", U1_FOURIER)
    if dims == 2:
        loss = data.setdefault("loss", {})
        for key, value in U1_2D_LOSS.items():
            loss.setdefault(key, value)
    dyn = data.get("dynamics", {})
    learnable = dyn.get(
        "learnable_step_size", ir.Dynamics.model_fields["learnable_step_size"].default
    )
    if learnable is not False:
        data.setdefault("train", {}).setdefault("step_size_lr_factor", U1_STEP_SIZE_LR_FACTOR)


def _resolve_network(data: dict[str, Any], ctx: Context) -> None:
    """`network none` is no networks (IR ``null``): it takes no keys. `network l2hmc` is the
    same as an unlabelled `network` block. `network local` is U(1) only and takes no embedding,
    dropout, batch norm, pooling or `full` padding."""
    net = data.get("network")
    if net is None:
        return
    if "fourier" in net:  # E371: the filter belongs to the dynamics
        m2 = net.pop("fourier")
        text = f"{m2:g}" if isinstance(m2, int | float) else "0.5"
        ctx.diagnostics.append(
            error(
                "E371",
                "`fourier` is no longer an option of `network`: the Fourier filter is part of"
                " the dynamics",
                ctx.spans.key("network.fourier"),
                "moved to `dynamics`",
                help=f"move `fourier = {text}` into `dynamics` (`dynamics {{ fourier = {text} }}`):"
                " the filter then works with any network, or none",
            )
        )
    kind = net.pop("kind", "l2hmc")
    if kind == "local":
        _resolve_local(data, net, ctx)
    if kind != "none":
        net["kind"] = kind
        return
    for key in net:
        ctx.diagnostics.append(
            error(
                "E102",
                f"`{key}` is not an option of `network none`",
                ctx.spans.key(f"network.{key}"),
                "not an option of `network none`",
                secondary=[Label(ctx.spans.value("network.kind"), "no networks")],
                help="remove it, or write `network l2hmc { ... }` for networks",
            )
        )
    data["network"] = None


def _resolve_local(data: dict[str, Any], net: dict[str, Any], ctx: Context) -> None:
    """E385–E388: what `network local` does not take (the offending keys are dropped, so
    that nothing is reported twice)."""
    label = Label(ctx.spans.value("network.kind"), "local networks")
    group = data.get("lattice", {}).get("group", "U1")
    if group != "U1":
        ctx.diagnostics.append(
            error(
                "E388",
                f"`network local` is implemented for U1 only, not {group}",
                ctx.spans.value("network.kind"),
                f"not for {group}",
                secondary=[Label(ctx.spans.value("lattice.group"), f"group is {group}")],
                help="use `network l2hmc { ... }` (or leave the `network` block out) for"
                " SU(N) links",
            )
        )
    for key in _NOT_LOCAL:
        if key in net:
            del net[key]
            ctx.diagnostics.append(
                error(
                    "E385",
                    f"`{key}` is not an option of `network local`",
                    ctx.spans.key(f"network.{key}"),
                    "not an option of `network local`",
                    secondary=[label],
                    help="remove it (`network local` reads cos θ_P and sin θ_P of the"
                    " plaquettes, per link); it is an option of `network l2hmc`",
                )
            )
    conv = net.get("conv")
    if conv is None:
        return
    pool = conv.get("pool")
    if pool is not None and any(p != 1 for p in pool):
        del conv["pool"]
        ctx.diagnostics.append(
            error(
                "E386",
                f"`network local` does not pool: `network.conv.pool` = {list(pool)}",
                ctx.spans.value("network.conv.pool"),
                "pooling",
                secondary=[label],
                help="remove `pool` (all 1): the local network gives every link its own"
                " features at the lattice's resolution",
            )
        )
    if conv.get("padding") == "full":
        del conv["padding"]
        ctx.diagnostics.append(
            error(
                "E387",
                "`network local` keeps the lattice's extent: `network.conv.padding` must be"
                " `same`, got `full`",
                ctx.spans.value("network.conv.padding"),
                "grows the extent",
                secondary=[label],
                help="remove `padding` (`same` is the default)",
            )
        )


def _resolve_steps(train: dict[str, Any], ctx: Context) -> None:
    steps = train.pop("steps", None)
    eras, per_era = train.get("eras"), train.get("steps_per_era")
    if steps is None:
        return
    if steps < 1:
        ctx.diagnostics.append(
            error(
                "E104",
                f"`train.steps` must be ≥ 1, got {steps}",
                ctx.spans.value("train.steps"),
                "out of range (must be ≥ 1)",
            )
        )
        return
    # `steps` is stored as steps_per_era: messages (and `l2hmcc diff`) about that field
    # point at what the user wrote.
    if "train.steps" in ctx.spans.values:
        ctx.spans.values.setdefault("train.steps_per_era", ctx.spans.values["train.steps"])
    if eras is None and per_era is None:
        train["eras"], train["steps_per_era"] = 1, steps
        return
    if per_era is None and eras:
        if steps % eras:
            ctx.diagnostics.append(
                error(
                    "E212",
                    f"`train.steps` = {steps} is not a multiple of `train.eras` = {eras}",
                    ctx.spans.value("train.steps"),
                    "not divisible",
                    secondary=[Label(ctx.spans.value("train.eras"), "eras")],
                    help="make steps a multiple of eras, or give `steps_per_era`",
                )
            )
            return
        train["steps_per_era"] = steps // eras
        return
    eras = eras or 1
    if per_era is not None and steps != eras * per_era:
        ctx.diagnostics.append(
            error(
                "E212",
                f"`train.steps` = {steps} disagrees with `eras` × `steps_per_era` ="
                f" {eras} × {per_era} = {eras * per_era}",
                ctx.spans.value("train.steps"),
                "conflicting step count",
                secondary=[Label(ctx.spans.value("train.steps_per_era"), "steps per era")],
                help="give either `steps` or `eras` with `steps_per_era`",
            )
        )


def _validate(data: dict[str, Any], ctx: Context) -> ir.Spec | None:
    data["sweeps"] = [{"path": p, "values": _jsonable(vals)} for p, _, _, vals in ctx.sweeps]
    try:
        spec = ir.Spec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            if length_is_fine(err):
                continue  # pydantic counts only the valid items; the bad item has its error
            if err["type"] == "missing":
                continue  # a required key: reported as E109, or its value was rejected
            ctx.diagnostics.append(pydantic_diagnostic(err, ctx.spans))
        return None
    return None if any(d.is_error for d in ctx.diagnostics) else spec


def _jsonable(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v
