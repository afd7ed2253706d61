"""The IR: frozen, closed, and a lossless JSON round trip (Hypothesis)."""

from __future__ import annotations

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from l2hmcc import ir
from l2hmcc.lower import lower
from l2hmcc.source import Source
from l2hmcc.syntax import parse

BASE = {
    "experiment": {"name": "x"},
    "lattice": {"group": "U1", "shape": [4, 4], "beta": {"kind": "constant", "value": 1.0}},
}


def test_frozen_and_closed() -> None:
    spec = ir.Spec.model_validate(BASE)
    with pytest.raises(pydantic.ValidationError):
        spec.train.lr = 1.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        ir.Spec.model_validate({**BASE, "extra": 1})
    with pytest.raises(pydantic.ValidationError):
        ir.Spec.model_validate({**BASE, "train": {"lr": float("inf")}})


def test_discriminated_unions() -> None:
    spec = ir.Spec.model_validate(
        {**BASE, "distributed": {"backend": "deepspeed", "zero_stage": 3}}
    )
    assert isinstance(spec.distributed, ir.DeepSpeed)
    with pytest.raises(pydantic.ValidationError):
        ir.Spec.model_validate({**BASE, "distributed": {"backend": "ddp", "zero_stage": 3}})


BETAS = st.one_of(
    st.floats(0.1, 10).map(lambda b: f"{b!r}"),
    st.tuples(st.floats(0.1, 10), st.floats(0.1, 10)).map(lambda t: f"linear({t[0]!r}, {t[1]!r})"),
    st.lists(st.floats(0.1, 10), min_size=1, max_size=4).map(
        lambda xs: "eras([" + ", ".join(map(repr, xs)) + "])"
    ),
)


NETWORKS = st.one_of(
    st.just("network none {}"),
    st.tuples(
        st.sampled_from(["", "l2hmc "]),
        st.lists(st.integers(1, 512), min_size=1, max_size=4),
        st.floats(0, 0.9),
        st.floats(0, 1),
    ).map(
        lambda t: f"network {t[0]}{{ hidden = {t[1]}  dropout = {t[2]!r}  head_init = {t[3]!r} }}"
    ),
)


@st.composite
def spec_texts(draw: st.DrawFn) -> str:
    group = draw(st.sampled_from(["U1", "SU2", "SU3"]))
    dims = 2 if group == "U1" else 4
    shape = [2 * draw(st.integers(1, 8)) for _ in range(dims)]
    backend = draw(st.sampled_from(["none", "ddp", "horovod", "deepspeed"]))
    system = draw(st.sampled_from(["local", "polaris", "aurora", "sunspot"]))
    return "\n".join(
        [
            f"experiment e{draw(st.integers(0, 999))} {{ seed = {draw(st.integers(0, 2**62))} }}",
            f"lattice {{ group = {group}  shape = {shape}  beta = {draw(BETAS)} }}",
            f"dynamics {{ leapfrog = {draw(st.integers(1, 16))}"
            f"  step_size = {draw(st.floats(1e-4, 1.0))!r}"
            f"  directions = {draw(st.sampled_from(['merged', 'random']))} }}",
            draw(NETWORKS),
            f"loss {{ plaquette = {draw(st.floats(0.01, 10))!r} }}",
            f"train {{ steps = {draw(st.integers(1, 10**6))}  lr = {draw(st.floats(1e-6, 1))!r}"
            f"  lr_schedule = {draw(st.sampled_from(['constant', 'cosine', 'linear']))}"
            f"  lr_final = {draw(st.floats(1e-4, 1))!r}"
            f"  weight_decay = {draw(st.floats(0, 0.1))!r}"
            f"  compile = {draw(st.sampled_from(['true', 'false']))} }}",
            f"evaluate {{ compile = {draw(st.sampled_from(['true', 'false']))} }}",
            f"hmc {{ step_size = {draw(st.sampled_from(['auto', 'auto(0.7)', '0.05']))} }}",
            f"distributed {backend} {{}}",
            f'job {system} {{ walltime = {draw(st.integers(1, 600))}m  env {{ K = "v" }} }}',
        ]
    )


@settings(max_examples=100, deadline=None)
@given(spec_texts())
def test_ir_json_round_trip(text: str) -> None:
    tree = parse(Source("t", text)).tree
    assert tree is not None
    result = lower(tree, "t")
    assert result.spec is not None, result.diagnostics
    spec = result.spec
    assert ir.Spec.model_validate_json(spec.model_dump_json()) == spec
    assert ir.Spec.model_validate(spec.model_dump(mode="json")) == spec
