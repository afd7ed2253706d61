"""Lowering: defaults resolved per group, step forms, overrides, sweeps, span mapping."""

from __future__ import annotations

import pytest

from l2hmcc import ir
from l2hmcc.diagnostics import did_you_mean
from l2hmcc.lower import LowerResult, lower
from l2hmcc.overrides import apply_overrides, parse_override
from l2hmcc.source import Source
from l2hmcc.spanmap import ir_path
from l2hmcc.syntax import parse

LATTICE = "lattice { group = U1  shape = [4, 4]  beta = 2.0 }\n"
SU3 = "lattice { group = SU3  shape = [2, 2, 2, 2]  beta = 6.0 }\n"


def low(text: str, name: str = "specs/my-run.l2h") -> LowerResult:
    result = parse(Source(name, text))
    assert result.tree is not None, result.diagnostics
    return lower(result.tree, name)


def ok(text: str) -> ir.Spec:
    r = low(text)
    assert r.spec is not None and not r.diagnostics, r.diagnostics
    return r.spec


def test_defaults_for_u1() -> None:
    spec = ok(LATTICE)
    assert spec.experiment.name == "my-run"
    assert spec.dynamics.x_update == "compact"
    assert spec.train.precision == "fp32" and spec.train.network_precision == "fp32"
    assert spec.lattice.beta == ir.Constant(value=2.0)
    assert spec.distributed == ir.NoBackend()
    assert spec.job.system == "local"
    assert spec.hmc.step_size == ir.AutoStepSize(target_acceptance=0.8)


def test_defaults_for_su3() -> None:
    spec = ok(SU3 + "train { network_precision = bf16  chains = 3 }")
    assert spec.dynamics.x_update == "group"
    assert spec.train.precision == "fp64"
    assert spec.train.network_precision == "bf16"
    assert spec.evaluate.chains == 3 and spec.hmc.chains == 3


def test_labels_set_name_backend_system() -> None:
    spec = ok(
        "experiment abc { }\n" + LATTICE + "distributed deepspeed { zero_stage = 2 }\n"
        'job aurora { account = "p"  walltime = 1h30m  env { A = 1  B = "x"  C = on } }'
    )
    assert spec.experiment.name == "abc"
    assert spec.distributed == ir.DeepSpeed(zero_stage=2)
    assert spec.job.system == "aurora" and spec.job.walltime_min == 90
    assert spec.job.env == {"A": "1", "B": "x", "C": "on"}


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90m", 90), ("2h", 120), ("01:30:00", 90), ("1:05", 65), ("45", 45), ("3600s", 60)],
)
def test_walltimes(text: str, minutes: int) -> None:
    assert ok(LATTICE + f"job local {{ walltime = {text} }}").job.walltime_min == minutes


@pytest.mark.parametrize(
    ("train", "eras", "per_era"),
    [
        ("steps = 100", 1, 100),
        ("steps = 1e3", 1, 1000),
        ("eras = 4  steps_per_era = 25", 4, 25),
        ("steps = 100  eras = 4", 4, 25),
        ("steps = 100  eras = 4  steps_per_era = 25", 4, 25),
    ],
)
def test_step_forms(train: str, eras: int, per_era: int) -> None:
    t = ok(LATTICE + f"train {{ {train} }}").train
    assert (t.eras, t.steps_per_era, t.steps) == (eras, per_era, eras * per_era)


def test_beta_schedules() -> None:
    assert ok(LATTICE.replace("2.0", "linear(4, 6)")).lattice.beta == ir.Linear(start=4, end=6)
    assert ok(LATTICE.replace("2.0", "geometric(4, 6)")).lattice.beta == ir.Geometric(
        start=4, end=6
    )
    assert ok(LATTICE.replace("2.0", "eras([4, 5])")).lattice.beta == ir.Eras(values=(4, 5))


def test_hmc_step_sizes() -> None:
    assert ok(LATTICE + "hmc { step_size = 0.1 }").hmc.step_size == ir.FixedStepSize(value=0.1)
    assert ok(LATTICE + "hmc { step_size = auto }").hmc.step_size == ir.AutoStepSize()
    assert ok(LATTICE + "hmc { step_size = auto(0.7) }").hmc.step_size == ir.AutoStepSize(
        target_acceptance=0.7
    )


def test_conv_defaults_kernel_and_pool() -> None:
    conv = ok(LATTICE + "network { conv { filters = [2, 4] } }").network.conv
    assert conv == ir.Conv(filters=(2, 4), kernel=(3, 3), pool=(1, 1))


def test_sweeps_take_the_first_value_and_are_recorded() -> None:
    spec = ok(
        LATTICE.replace("2.0", "sweep(2.0, linear(1.0, 2.0))")
        + "train { lr = sweep(1e-3, 1e-4) }\njob local { walltime = sweep(1h, 30m) }"
    )
    assert spec.lattice.beta == ir.Constant(value=2.0)
    assert spec.train.lr == 1e-3
    assert [(s.path, s.values) for s in spec.sweeps] == [
        (
            "lattice.beta",
            ({"kind": "constant", "value": 2.0}, {"kind": "linear", "start": 1.0, "end": 2.0}),
        ),
        ("train.lr", (1e-3, 1e-4)),
        ("job.walltime", (60, 30)),
    ]


def test_every_sweep_value_is_range_checked() -> None:
    r = low(LATTICE + "dynamics { leapfrog = sweep(2, 0, -1) }")
    assert [(d.code, d.primary.span.col) for d in r.diagnostics] == [("E104", 32), ("E104", 35)]


def test_span_map_points_into_the_source_and_falls_back() -> None:
    text = LATTICE + "train { lr = 0.5 }\n"
    r = low(text)
    s = r.spans.value("train.lr")
    assert text[s.start : s.end] == "0.5"
    header = r.spans.value("train.optimizer")  # defaulted: the block header
    assert text[header.start : header.end] == "train"
    assert r.spans.value("job.nodes") == r.spans.file_span
    assert r.spans.written("train.lr") and not r.spans.written("train.chains")
    shape1 = r.spans.value("lattice.shape.1")
    assert text[shape1.start : shape1.end] == "4" and shape1.col == 35


def test_ir_path_drops_union_tags() -> None:
    assert ir_path(("distributed", "deepspeed", "zero_stage")) == "distributed.zero_stage"
    assert ir_path(("lattice", "beta", "linear", "end")) == "lattice.beta.end"
    assert ir_path(("lattice", "shape", 1)) == "lattice.shape.1"
    assert ir_path(("distributed",)) == "distributed"


def test_did_you_mean() -> None:
    assert did_you_mean("leapfrogs", ["leapfrog", "step_size"]) == "leapfrog"
    assert did_you_mean("u1", ["U1", "SU2"]) == "U1"
    assert did_you_mean("zzz", ["leapfrog"]) is None


def test_overrides_replace_add_and_create() -> None:
    base = parse(Source("s", LATTICE + "train { steps = 10 }")).tree
    assert base is not None
    ovs = []
    for i, text in enumerate(
        ["train.steps=20", "lattice.shape=[8, 8]", "network.conv.filters=[2]", "job.nodes=1"], 1
    ):
        ov, diags = parse_override(text, i)
        assert ov is not None and not diags
        ovs.append(ov)
    spec = lower(apply_overrides(base, ovs), "s").spec
    assert spec is not None
    assert spec.train.steps == 20 and spec.lattice.shape == (8, 8)
    assert spec.network.conv is not None and spec.network.conv.filters == (2,)


@pytest.mark.parametrize("text", ["train.steps", "steps=1", "train..steps=1", "tr@in.steps=1"])
def test_malformed_overrides(text: str) -> None:
    ov, diags = parse_override(text, 1)
    assert ov is None and diags[0].code == "E114"
    assert diags[0].primary.span.file == "--set[1]"


def test_override_errors_point_into_the_override() -> None:
    tree = parse(Source("s", LATTICE)).tree
    assert tree is not None
    ov, _ = parse_override("train.lr=-1", 3)
    assert ov is not None
    [d] = lower(apply_overrides(tree, [ov]), "s").diagnostics
    assert d.code == "E104" and d.primary.span.file == "--set[3]" and d.primary.span.col == 10


def test_errors_of_several_kinds_in_one_run() -> None:
    r = low(LATTICE + "dynamics { leapfrogs = 1  leapfrog = 0  mask = chess }")
    assert r.spec is None
    assert sorted(d.code for d in r.diagnostics) == ["E102", "E104", "E105"]


def test_runtime_fields_default_as_the_runtime() -> None:
    spec = ok(LATTICE)
    assert spec.network is not None and spec.network.head_init == 0.01
    assert (spec.train.lr_final, spec.train.weight_decay, spec.train.keep_checkpoints) == (
        0.01,
        0.0,
        3,
    )
    set_ = ok(
        LATTICE + "network { head_init = 0  conv { filters = [2]  padding = full } }\n"
        "train { lr_schedule = linear  lr_final = 0.1  weight_decay = 1e-4"
        "  keep_checkpoints = 0 }\n"
    )
    assert set_.network is not None and set_.network.head_init == 0.0
    assert set_.network.conv is not None and set_.network.conv.padding == "full"
    assert (set_.train.lr_schedule, set_.train.lr_final) == ("linear", 0.1)
    assert (set_.train.weight_decay, set_.train.keep_checkpoints) == (1e-4, 0)
    default = ok(LATTICE + "network { conv { filters = [2] } }").network
    assert default is not None and default.conv is not None and default.conv.padding == "same"
    assert low(LATTICE + "train { lr_final = 0 }").spec is None  # (0, 1]


def test_mask_seed_follows_the_experiment_seed_unless_given() -> None:
    assert ok(LATTICE).dynamics.mask_seed == 1234
    assert ok("experiment e { seed = 5 }\n" + LATTICE).dynamics.mask_seed == 5
    spec = ok("experiment e { seed = 5 }\n" + LATTICE + "dynamics { mask_seed = 9 }")
    assert spec.dynamics.mask_seed == 9


def test_evaluate_compile_follows_train_compile_unless_given() -> None:
    assert ok(LATTICE).evaluate.compile is True
    assert ok(LATTICE + "train { compile = false }").evaluate.compile is False
    spec = ok(LATTICE + "train { compile = false }\nevaluate { compile = true }")
    assert (spec.train.compile, spec.evaluate.compile) == (False, True)


def test_network_none_is_no_networks_and_takes_no_keys() -> None:
    assert ok(LATTICE + "network none {}").network is None
    assert ok(LATTICE + "network l2hmc { hidden = [8] }").network == ir.Network(hidden=(8,))
    r = low(LATTICE + "network none { hidden = [8]  dropout = 0.1 }")
    assert r.spec is None
    assert [(d.code, d.primary.span.line) for d in r.diagnostics] == [("E102", 2), ("E102", 2)]
    assert all(d.secondary[0].message == "no networks" for d in r.diagnostics)
    r = low(LATTICE + "network non {}")
    assert [d.code for d in r.diagnostics] == ["E105"]
    assert r.diagnostics[0].help == "did you mean `none`?"


# --- group defaults (docs/recipe.md) ---------------------------------------------------------

LOCAL_DEFAULT = ir.Network(
    kind="local",
    conv=ir.Conv(filters=(8,), kernel=(3,), pool=(1,)),
    hidden=(8,),
    activation="tanh",
)


def test_u1_defaults_to_the_local_network_and_the_charge_loss() -> None:
    spec = ok(LATTICE)
    assert spec.network == LOCAL_DEFAULT and spec.dynamics.fourier == 0.5  # and its filter
    assert (spec.loss.charge, spec.loss.plaquette, spec.loss.form) == (1.0, 0.0, "plain")
    assert spec.train.step_size_lr_factor == 3.0
    # 3D: the local network, but the charge is not defined there: the SU(N) loss defaults
    spec3 = ok("lattice { group = U1  shape = [4, 4, 4]  beta = 2.0 }")
    assert spec3.network == LOCAL_DEFAULT
    assert spec3.loss == ir.Loss() and spec3.train.step_size_lr_factor == 3.0
    # 4D: no 4D convolutions, so the seed's network
    spec4 = ok("lattice { group = U1  shape = [2, 2, 2, 2]  beta = 2.0 }")
    assert spec4.network == ir.Network() and spec4.loss == ir.Loss()
    assert spec4.dynamics.fourier == 0.0 and spec3.dynamics.fourier == 0.5


def test_the_default_filter_comes_with_the_default_network_only() -> None:
    """`dynamics.fourier` is 0.5 for a U1 2D/3D spec that gets the default network (also one
    that `--set` made) and writes no `fourier`; a written network or `fourier` keeps its own."""
    assert ok(LATTICE + "dynamics { fourier = 0.2 }").dynamics.fourier == 0.2
    assert ok(LATTICE + "dynamics { fourier = 0 }").dynamics.fourier == 0.0
    assert ok(LATTICE + "network local { hidden = [4] }").dynamics.fourier == 0.0
    assert ok(LATTICE + "network none {}").dynamics.fourier == 0.0
    none = ok(LATTICE + "network none {}  dynamics { fourier = 0.3 }")
    assert none.network is None and none.dynamics.fourier == 0.3
    assert ok(SU3).dynamics.fourier == 0.0


def test_fourier_in_the_network_block_says_where_it_went() -> None:
    for kind in ("local", "l2hmc", "none"):
        r = low(LATTICE + f"network {kind} {{ fourier = 0.25 }}")
        assert [d.code for d in r.diagnostics] == ["E371"], kind
        assert r.diagnostics[0].help.startswith("move `fourier = 0.25` into `dynamics`")


def test_su3_keeps_the_field_defaults() -> None:
    spec = ok(SU3)
    assert spec.network == ir.Network() and spec.network.kind == "l2hmc"
    assert spec.loss == ir.Loss() and spec.train.step_size_lr_factor == 1.0


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("loss { charge = 0.5 }", ("loss", "charge"), 0.5),
        ("loss { charge = 0  plaquette = 0.2 }", ("loss", "charge"), 0.0),
        ("loss { plaquette = 0.1 }", ("loss", "plaquette"), 0.1),
        ("loss { form = mixed }", ("loss", "form"), "mixed"),
        ("train { step_size_lr_factor = 1 }", ("train", "step_size_lr_factor"), 1.0),
        ("train { step_size_lr_factor = 7 }", ("train", "step_size_lr_factor"), 7.0),
    ],
)
def test_a_key_the_user_writes_is_never_replaced(
    text: str, field: tuple[str, str], value: object
) -> None:
    spec = ok(LATTICE + text)
    assert getattr(getattr(spec, field[0]), field[1]) == value
    # and the keys the block leaves out still get the U(1) defaults
    if field[0] == "loss":
        others = {"charge": 1.0, "plaquette": 0.0, "form": "plain"}
        for key, default in others.items():
            if key != field[1] and key not in text:
                assert getattr(spec.loss, key) == default, key


def test_a_written_network_block_is_never_replaced() -> None:
    assert ok(LATTICE + "network { hidden = [4] }").network == ir.Network(hidden=(4,))
    assert ok(LATTICE + "network l2hmc {}").network == ir.Network()
    assert ok(LATTICE + "network none {}").network is None
    local = ok(LATTICE + "network local { hidden = [4, 4] }").network
    assert local == ir.Network(kind="local", hidden=(4, 4))  # no conv unless written


def test_fixed_step_sizes_keep_the_factor_1() -> None:
    spec = ok(LATTICE + "dynamics { learnable_step_size = false }")
    assert spec.train.step_size_lr_factor == 1.0


def test_network_local_rules() -> None:
    r = low(LATTICE + "network local {\n  embedding = raw\n  conv { filters = [2]  pool = [2] }\n}")
    assert [(d.code, d.primary.span.line) for d in r.diagnostics] == [("E385", 3), ("E386", 4)]
    assert all(d.secondary[0].message == "local networks" for d in r.diagnostics)
    r = low(SU3 + "network local {}")
    assert [d.code for d in r.diagnostics] == ["E388"]
    assert r.diagnostics[0].help is not None and "network l2hmc" in r.diagnostics[0].help
    spec = ok(LATTICE + "network local { conv { filters = [2, 3]  pool = [1, 1] } }")
    assert spec.network is not None and spec.network.conv is not None
    assert spec.network.conv.kernel == (3, 3) and spec.network.conv.pool == (1, 1)


def over(text: str, *sets: str) -> LowerResult:
    """Lower ``text`` with ``--set`` overrides applied."""
    tree = parse(Source("t.l2h", text)).tree
    assert tree is not None
    parsed = [parse_override(s, i) for i, s in enumerate(sets, 1)]
    assert all(ov is not None and not diags for ov, diags in parsed)
    return lower(apply_overrides(tree, [ov for ov, _ in parsed if ov is not None]), "t.l2h")


def test_set_on_a_spec_without_network_adjusts_the_group_default() -> None:
    spec = over(LATTICE, "network.hidden=[16, 16]").spec
    assert spec is not None and spec.network == LOCAL_DEFAULT.model_copy(
        update={"hidden": (16, 16)}
    )
    spec = over(LATTICE, "network.conv.filters=[8]", "network.conv.kernel=[5]").spec
    assert spec is not None and spec.network is not None and spec.network.conv is not None
    assert (spec.network.conv.filters, spec.network.conv.kernel) == ((8,), (5,))
    spec = over(LATTICE, "network.conv.filters=[4, 4]").spec  # the kernels default to 3s
    assert spec is not None and spec.network is not None and spec.network.conv is not None
    assert spec.network.conv.kernel == (3, 3)
    # a key `network local` does not take is reported at the override
    r = over(LATTICE, "network.dropout=0.1")
    assert [(d.code, d.primary.span.file) for d in r.diagnostics] == [("E385", "--set[1]")]
    # SU(N), or a spec that writes a network block: the block as written (l2hmc)
    spec = over(SU3, "network.hidden=[4]").spec
    assert spec is not None and spec.network == ir.Network(hidden=(4,))
    spec = over(LATTICE + "network { hidden = [8] }", "network.activation=tanh").spec
    assert spec is not None and spec.network == ir.Network(hidden=(8,), activation="tanh")
