"""Cross-field checks: the pass list, target checks, and the rules at their boundaries.

Most rules are exercised, with their exact spans, by the bad-spec corpus
(tests/corpus/*.l2h, run by test_corpus.py); these tests cover the API and the edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from l2hmcc import checks, driver
from l2hmcc.lower import LowerResult, lower
from l2hmcc.source import Source
from l2hmcc.syntax import parse


@dataclass(frozen=True)
class FakeTarget:
    name: str
    framework: str
    backend: str


def low(text: str) -> LowerResult:
    tree = parse(Source("t.l2h", text)).tree
    assert tree is not None
    r = lower(tree, "t.l2h")
    assert r.spec is not None, r.diagnostics
    return r


def codes(text: str, target: FakeTarget | None = None) -> list[str]:
    r = low(text)
    assert r.spec is not None
    return [d.code for d in checks.check(r.spec, r.spans, target)]


U1 = "lattice { group = U1  shape = [4, 4]  beta = 2.0 }\n"


def test_passes_are_named_functions() -> None:
    for p in [*checks.PASSES, *checks.TARGET_PASSES]:
        assert callable(p) and p.__doc__, p


@pytest.mark.parametrize(
    ("shape", "group", "expected"),
    [
        ("[4, 4]", "U1", []),
        ("[4, 4, 4]", "U1", ["E201"]),
        ("[2, 2, 2, 2]", "SU3", []),
        ("[4, 4]", "SU2", ["E201"]),
    ],
)
def test_charge_dimension(shape: str, group: str, expected: list[str]) -> None:
    text = f"lattice {{ group = {group}  shape = {shape}  beta = 2.0 }}\nloss {{ charge = 0.1 }}"
    assert codes(text) == expected


def test_odd_extents_are_fine_with_a_random_mask() -> None:
    text = "lattice { group = U1  shape = [5, 5]  beta = 2.0 }\nnetwork l2hmc {}\n"
    assert codes(text) == ["E202", "E202"]
    assert codes(text + "dynamics { mask = random }") == []


def test_odd_extents_are_fine_without_x_networks() -> None:
    # `network local` (the U(1) default) masks nothing: every link drifts by eps v
    text = "lattice { group = U1  shape = [5, 5]  beta = 2.0 }\n"
    assert codes(text) == []
    assert codes(text + "network local { hidden = [4] }") == []


def test_zero_charge_weight_alone_is_fine_but_all_zero_is_not() -> None:
    assert codes(U1 + "loss { plaquette = 0  charge = 0.1 }") == []
    assert codes(U1 + "loss { plaquette = 0  charge = 0  rmse = 0 }") == ["E211"]


def test_pooling_must_divide_every_extent() -> None:
    net = "network { conv { filters = [2, 2]  pool = [2, 2] } }"
    assert codes("lattice { group = U1  shape = [8, 8]  beta = 2.0 }\n" + net) == []
    assert codes("lattice { group = U1  shape = [8, 6]  beta = 2.0 }\n" + net) == ["E210"]


def test_full_padding_pools_the_grown_extents_in_floor_mode() -> None:
    # the seed's stack on 15x15: 15 -> 18 -> 21 -> 24, pooled by 2 -> 12 -> 15; with `same`
    # padding the extent stays 15, which 2 does not divide (E210)
    conv = "conv { filters = [4, 8, 16, 32]  kernel = [4, 4, 4, 4]  pool = [1, 1, 2, 1]"
    conv += "  padding = %s }"
    seed = "lattice { group = U1  shape = [15, 15]  beta = 4.0 }\ndynamics { mask = random }\n"
    assert codes(seed + "network { " + conv % "full" + " }") == []
    assert codes(seed + "network { " + conv % "same" + " }") == ["E210"]
    tiny = "conv { filters = [2]  kernel = [1]  pool = [%d]  padding = full }"
    assert codes(U1 + "network { " + tiny % 4 + " }") == []  # 4 // 4 = 1 site left
    assert codes(U1 + "network { " + tiny % 5 + " }") == ["E210"]  # nothing left


def test_affine_warns_on_u1_only_and_compact_is_quiet() -> None:
    l2hmc = "network l2hmc {}\n"
    assert codes(U1 + l2hmc + "dynamics { x_update = affine }") == ["W004"]
    assert codes(U1 + l2hmc + "dynamics { x_update = compact }") == []
    # without x-networks (`network local`, the U(1) default) affine is the drift: W387 only
    assert codes(U1 + "dynamics { x_update = affine }") == ["W387"]
    su3 = "lattice { group = SU3  shape = [2, 2, 2, 2]  beta = 6.0 }\n"
    assert codes(su3 + "dynamics { x_update = affine }") == ["E204"]


def test_network_none_needs_learnable_step_sizes() -> None:
    assert codes(U1 + "network none {}") == []
    assert codes(U1 + "network none {}\ndynamics { learnable_step_size = false }") == ["E213"]
    assert codes(U1 + "dynamics { learnable_step_size = false }") == []
    # the network checks see no network: batch norm with one chain is no error without one
    assert codes(U1 + "network none {}\ntrain { chains = 1 }") == []


def test_ranks_and_backends() -> None:
    assert codes(U1 + "job local { ranks_per_node = 2 }") == ["E206"]
    assert codes(U1 + "distributed ddp {}\njob local { ranks_per_node = 2 }") == []
    assert codes(U1 + "distributed ddp {}") == []  # ranks per node left to the system


def test_fp16_allreduce_warns_with_the_mixed_loss_only() -> None:
    job = "\njob local { ranks_per_node = 2 }"
    fp16 = "distributed horovod { fp16_allreduce = true }"
    assert codes(U1 + fp16 + job) == []  # 2D U(1) defaults to the plain form
    u1_3d = "lattice { group = U1  shape = [4, 4, 4]  beta = 2.0 }\n"
    assert codes(u1_3d + fp16 + job) == ["W005"]  # the mixed form is the default there
    assert codes(U1 + fp16 + "\nloss { form = mixed }" + job) == ["W005"]
    assert codes(U1 + fp16 + "\nloss { form = plain }" + job) == []
    assert codes(U1 + "distributed horovod { fp16_allreduce = false }" + job) == []


@pytest.mark.parametrize(
    ("backend", "target", "expected"),
    [
        ("deepspeed", FakeTarget("tensorflow", "tensorflow", "none"), ["E301"]),
        ("ddp", FakeTarget("tensorflow-horovod", "tensorflow", "horovod"), ["E301"]),
        ("horovod", FakeTarget("tensorflow-horovod", "tensorflow", "horovod"), []),
        ("horovod", FakeTarget("pytorch-ddp", "pytorch", "ddp"), ["E302"]),
        ("ddp", FakeTarget("pytorch-ddp", "pytorch", "ddp"), []),
    ],
)
def test_target_checks(backend: str, target: FakeTarget, expected: list[str]) -> None:
    text = U1 + f"distributed {backend} {{}}\njob local {{ ranks_per_node = 2 }}"
    assert codes(text) == []
    assert codes(text, target) == expected


def test_without_a_distributed_block_the_target_decides(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "s.l2h"
    path.write_text(U1 + "job local { ranks_per_node = 2 }\n")
    assert [d.code for d in driver.check(str(path)).diagnostics] == ["E206"]
    outcome = driver.check(str(path), target="pytorch-ddp")
    assert outcome.ok and outcome.spec is not None
    assert outcome.spec.distributed.backend == "ddp"


@pytest.mark.parametrize(
    ("hmc", "expected"),
    [
        ("step_size = 0.3  trajectory_length = 1.0", ["W006"]),
        ("step_size = 0.1  trajectory_length = 1.0", []),  # 10 steps, up to rounding
        ("step_size = 0.25  trajectory_length = 1.0", []),
        ("step_size = 2.0  trajectory_length = 1.0", ["W006"]),  # one step of 1.0
        ("step_size = auto(0.8)  trajectory_length = 1.3", []),
    ],
)
def test_hmc_step_size_warns_when_the_job_runs_another(hmc: str, expected: list[str]) -> None:
    assert codes(U1 + f"hmc {{ {hmc} }}") == expected


def test_the_runtime_and_the_check_agree_on_the_hmc_schedule() -> None:
    from l2hmcc.checks.honour import hmc_schedule
    from l2hmcc.runtime.common.run import Hmc

    assert "ceil(trajectory_length / ε)" in (Hmc.__doc__ or "")
    pt_hmc = pytest.importorskip("l2hmcc.runtime.pt.hmc")
    for eps, tau in [(0.3, 1.0), (0.1, 1.0), (0.07, 2.0), (1e-3, 0.5), (5.0, 1.0)]:
        n, run_eps = hmc_schedule(eps, tau)
        assert n == pt_hmc.steps_for_length(eps, tau) and run_eps == pytest.approx(tau / n)
        assert run_eps <= eps * (1 + 1e-9)


SU3 = "lattice { group = SU3  shape = [2, 2, 2, 2]  beta = 6.0 }\n"


def test_compile_not_honoured_warns_from_the_one_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from l2hmcc.checks import honour

    pt = FakeTarget("pytorch", "pytorch", "none")
    assert honour.compiles_layers("pytorch", "SU3")  # every runtime compiles every group today
    assert codes(SU3, pt) == []
    monkeypatch.setattr(honour, "EAGER_LAYERS", frozenset({("pytorch", "SU3")}))
    assert codes(SU3, pt) == ["W007"]  # train.compile defaults to true
    assert codes(SU3 + "train { compile = false }", pt) == []
    assert codes(SU3, FakeTarget("tensorflow", "tensorflow", "none")) == []
    assert codes(U1, pt) == []
    r = low(SU3 + "train { compile = true }")
    (d,) = checks.check(r.spec, r.spans, pt)  # type: ignore[arg-type]
    assert d.primary.span == r.spans.value("train.compile")
    assert "`train.compile = true` is not honoured" in d.message
