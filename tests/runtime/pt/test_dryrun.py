"""``train.py --dry-run`` (``runtime/pt/dryrun.py``): the jobs on fake CUDA and XPU devices, the
device mistakes it names, and the memory estimate of the front end (``l2hmcc/memory.py``)
against what it measures.

The dry runs of one device kind share a process (``dryrun_helpers``); the CUDA and XPU
processes start together, once per module, and run side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dryrun_helpers import collect, compile_job, start_dry_runs
from targets_helpers import REPO, SPECS

from l2hmcc import driver, memory

pytestmark = pytest.mark.slow

KINDS = ("cuda", "xpu")
PT_TARGETS = ("pytorch", "pytorch-ddp", "pytorch-horovod", "pytorch-deepspeed")

#: Every shipped spec × the PyTorch targets it compiles for; compile off (one compiled case
#: below), so that the phases run through the fake device eagerly, in seconds.
EAGER = ("train.compile=false", "evaluate.compile=false")

#: Chain counts and lattice sizes beyond the shipped specs, for the estimate: U(1) fp32 and
#: SU(3) fp64, dense and conv networks, bf16 networks.
GRID: list[tuple[str, tuple[str, ...]]] = [
    ("u1-smoke", ("lattice.shape=[32,32]", "train.chains=16", "network.hidden=[64,64]")),
    ("u1-smoke", ("lattice.shape=[8,8]", "train.chains=256", "train.network_precision=bf16")),
    ("su3-smoke", ("lattice.shape=[4,4,4,4]", "train.chains=4")),
    ("su3-smoke", ("train.chains=32", "train.precision=fp32", "train.network_precision=bf16")),
    ("u1", ("train.chains=4", *EAGER)),
]

#: Planted device mistakes: job directory name -> a context manager factory.
PLANTS = r"""
from unittest import mock
_masks = Dynamics._build_masks
def _exp_step_sizes(self):
    # a host sync: the step sizes read back as Python floats every layer
    return torch.tensor([float(e) for e in torch.exp(self.log_step_size)], device=self.masks.device)
PLANTS = {
    "plant-cpu-mask": lambda: mock.patch.object(
        Dynamics, "_build_masks", lambda self, device: _masks(self, "cpu")
    ),
    "plant-item": lambda: mock.patch.object(Dynamics, "step_sizes", _exp_step_sizes),
    "plant-generator": lambda: mock.patch.object(
        Dynamics, "draw", lambda self, x, generator=None: _draw(self, x)
    ),
}
def _draw(self, x):
    cpu = torch.Generator("cpu")  # a CPU generator for device momenta
    v = torch.randn(x.shape, dtype=x.real.dtype, device=x.device, generator=cpu)
    u = torch.rand(x.shape[0], dtype=self.dtype, device=x.device)
    return v, None, u
"""


def _targets_of(spec: str) -> list[str]:
    """The PyTorch targets a shipped spec compiles for (its `distributed` block decides)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        found = []
        for target in PT_TARGETS:
            outcome = driver.check(f"specs/{spec}", target=target)
            if outcome.ok:
                found.append(target)
    return found


SHIPPED = [(spec.removesuffix(".l2h"), t) for spec in SPECS for t in _targets_of(spec)]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("dryrun")
    out = {}
    for spec, target in SHIPPED:
        out[f"{spec}:{target}"] = compile_job(base, spec, target, EAGER)
    for spec, sets in GRID:
        out[f"{spec}:{','.join(sets)}"] = compile_job(base, spec, "pytorch", sets)
    out["compiled"] = compile_job(base / "compiled", "u1-smoke", "pytorch", ("train.compile=true",))
    # the masks reach a device operation in SU(N) x-networks (U1 x updates index the links
    # with Dynamics.moved_links, which PyTorch accepts on the CPU for device tensors)
    for name, spec in (
        ("plant-cpu-mask", "su3-smoke"),
        ("plant-item", "u1-smoke"),
        ("plant-generator", "u1-smoke"),
    ):
        d = compile_job(base / name, spec, "pytorch")
        out[name] = d.rename(d.parent / name)
    return out


@pytest.fixture(scope="module")
def results(jobs: dict[str, Path]) -> dict[tuple[str, str], dict[str, Any]]:
    """The dry runs on fake CUDA (every job) and fake XPU (the shipped specs and the planted
    mistakes: the grid and the compiled case count bytes and trace graphs the same way on
    both), in two processes side by side."""
    xpu = {n: d for n, d in jobs.items() if ":" not in n or n.split(":")[1] in PT_TARGETS}
    xpu = {n: d for n, d in xpu.items() if n != "compiled"}
    chosen = {"cuda": jobs, "xpu": xpu}
    running = {k: start_dry_runs(k, list(chosen[k].values()), plant=PLANTS) for k in KINDS}
    out = {}
    for kind, proc in running.items():
        found = collect(proc, timeout=1800)
        for name, d in chosen[kind].items():
            out[kind, name] = found[str(d)]
            print(f"dry run on fake {kind}: {name}: {out[kind, name]['cpu_s']} s CPU")
    return out


def _report(results: dict[tuple[str, str], dict[str, Any]], kind: str, name: str) -> Any:
    r = results[kind, name]
    assert "report" in r, (
        f"dry run on fake {kind} failed: {r.get('mistake')}\n  at {r.get('place')}"
    )
    return r["report"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("spec", "target"), SHIPPED, ids=[f"{s}-{t}" for s, t in SHIPPED])
def test_every_shipped_spec_passes(
    results: dict[tuple[str, str], dict[str, Any]], kind: str, spec: str, target: str
) -> None:
    rep = _report(results, kind, f"{spec}:{target}")
    assert rep["device"] == f"{kind}:0" and rep["target"] == target
    assert [p["name"].split(" (")[0] for p in rep["phases"]] == [
        "train step",
        "L2HMC trajectory",
        "HMC trajectory",
    ]
    resident = rep["params_bytes"] + rep["optimizer_bytes"]
    train, *others = rep["phases"]
    # the train step holds the parameters, optimizer state and (from its backward on) the
    # gradients; the other phases hold the parameters and optimizer state (the gradients are
    # released after each step), and each works on top
    assert train["peak_bytes"] > resident + rep["grads_bytes"]
    for p in others:
        assert p["peak_bytes"] > resident
    assert rep["grads_bytes"] == rep["params_bytes"]
    if target == "pytorch-ddp":
        assert rep["wrapper_bytes"] == rep["grads_bytes"]
    if target == "pytorch-deepspeed" and rep["world_size"] > 1:
        assert rep["peak_bytes_per_rank"] < max(p["peak_bytes"] for p in rep["phases"])


def test_precisions_reach_the_fake_device(results: dict[tuple[str, str], dict[str, Any]]) -> None:
    """fp64 links (SU(3): complex128) and bf16 networks under CUDA and XPU autocast, fp32 U(1)."""
    su3 = _report(results, "cuda", "su3-smoke:pytorch")
    assert su3["precision"] == "fp64" and su3["autocast"] is None
    u1 = _report(results, "cuda", "u1-smoke:pytorch")
    assert u1["precision"] == "fp32"
    bf16 = "u1-smoke:lattice.shape=[8,8],train.chains=256,train.network_precision=bf16"
    assert _report(results, "cuda", bf16)["autocast"] == "bf16"
    # on XPU (Aurora) the networks of aurora.l2h run under XPU autocast as on CUDA
    xpu = _report(results, "xpu", "aurora:pytorch-ddp")
    assert xpu["network_precision"] == "bf16" and xpu["autocast"] == "bf16"
    assert not any("applies on" in n for n in xpu["notes"])
    assert _report(results, "cuda", "aurora:pytorch-ddp")["autocast"] == "bf16"


def test_compiled_phases_are_traced(results: dict[tuple[str, str], dict[str, Any]]) -> None:
    rep = _report(results, "cuda", "compiled")
    for p in rep["phases"]:
        assert p["compiled"].startswith("torch.compile:"), p
    # dynamo traced the layers and the HMC leapfrog on fake tensors (aot_eager)
    assert "torch.compile: 0 " not in rep["phases"][0]["compiled"]


@pytest.mark.parametrize(
    ("plant", "what", "place"),
    [
        ("plant-cpu-mask", "Expected all tensors to be on the same device", "pt/networks.py:"),
        ("plant-item", "a host sync in the hot path", "pt/dynamics.py:"),
        ("plant-generator", "a random generator on cpu fills a tensor on", "test"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_planted_mistakes_are_named(
    results: dict[tuple[str, str], dict[str, Any]], kind: str, plant: str, what: str, place: str
) -> None:
    r = results[kind, plant]
    assert "mistake" in r, f"the planted mistake {plant} went unnoticed on fake {kind}"
    assert what in r["mistake"]
    assert kind in r["mistake"] or plant != "plant-cpu-mask"
    assert place in r["place"] or place == "test", r["place"]


def _estimate(spec: str, sets: tuple[str, ...], target: str, world: int) -> memory.MemoryEstimate:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        outcome = driver.load(f"specs/{spec}.l2h", sets)
    assert outcome.spec is not None
    return memory.estimate(outcome.spec, world_size=world, target=target)


ESTIMATED = [(s, t, EAGER) for s, t in SHIPPED] + [(s, "pytorch", sets) for s, sets in GRID]


@pytest.mark.parametrize(
    ("spec", "target", "sets"),
    ESTIMATED,
    ids=[f"{s}-{t}-{','.join(x)}" for s, t, x in ESTIMATED],
)
def test_estimate_within_2x_of_the_dry_run(
    results: dict[tuple[str, str], dict[str, Any]],
    spec: str,
    target: str,
    sets: tuple[str, ...],
) -> None:
    name = f"{spec}:{target}" if sets == EAGER else f"{spec}:{','.join(sets)}"
    rep = _report(results, "cuda", name)
    est = _estimate(spec, sets, target, rep["world_size"])
    # the parameters are counted exactly
    assert est.parameters == rep["params_bytes"]
    measured = rep["peak_bytes_per_rank"]
    print(f"{name}: estimate / dry run = {est.peak / measured:.2f} ({measured / 2**20:.1f} MiB)")
    assert measured / 2 <= est.peak <= measured * 2, (est, measured)


def test_cli_dry_run_reexecutes_with_the_fake_device(tmp_path: Path) -> None:
    """``train.py --dry-run --device xpu`` of a DeepSpeed job: the report, ZeRO over the
    ds_config world size, and the JSON copy."""
    job = compile_job(tmp_path, "su3-smoke", "pytorch-deepspeed", ("job.ranks_per_node=4",))
    out = tmp_path / "dry.json"
    proc = subprocess.run(  # from another directory, as a batch script would
        [sys.executable, str(job / "train.py"), "--dry-run", "--device", "xpu", "--json", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dry run on fake xpu:0 (pytorch-deepspeed)" in proc.stdout
    assert "ZeRO stage 1 over 4 rank(s)" in proc.stdout
    assert proc.stdout.rstrip().endswith("dry run passed")
    rep = json.loads(out.read_text())
    assert rep["zero_stage"] == 1 and rep["world_size"] == 4
