"""Runtime throughput: L2HMC train steps/s and trajectories/s and HMC trajectories/s, eager vs
``torch.compile``, fp32 vs fp64 (and, on CUDA, fp32 links with bf16 networks).

The workloads are those of ``bench/bench_l2hmc_pt.py`` (the seed's U(1) 16×16 ×128 chains,
8 layers, its 60 M-parameter conv network; SU(3) 4⁴ ×8 chains, 2 layers, [256] tanh) and of
``bench/bench_hmc_pt.py`` (U(1) 16×16 ×128, 16 steps of ε = 0.125; SU(3) 4⁴ ×8, 8 steps of
ε = 0.05), imported from there; a mode may scale the chains and lattice (``scale``).  Every
variant of a workload lives in the same process: each is built and warmed up first (the first
call, which holds the compilation, is timed on its own), then the variants run in interleaved
rounds (each round: ``n_train`` train steps and ``n_traj`` trajectories of every variant in
turn), so that drifting load on a shared machine hits all of them alike.  Each variant is
reported by its fastest round and its median round, in wall time and in process CPU time (with
one thread the CPU time does not count the time other processes held the core).
``Plan.cost`` adds the cost figures of ``reportlib/cost.py`` (L2HMC per force against HMC,
networks against their FLOP floor, SU(3) compiled against eager, the seed side by side) to the
same run.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bench_hmc_pt
import bench_l2hmc_pt
import torch

from l2hmcc.runtime.pt import hmc
from l2hmcc.runtime.pt.trainer import TrainConfig, Trainer

from . import cost


@dataclass(frozen=True)
class Variant:
    precision: str  #: "fp32" or "fp64" (links, actions, Metropolis test; networks unless below)
    compiled: bool
    network_precision: str | None = None  #: "bf16": networks under CUDA autocast

    @property
    def label(self) -> str:
        net = f"+{self.network_precision} nets" if self.network_precision else ""
        return f"{self.precision}{net} {'compiled' if self.compiled else 'eager'}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Clock:
    """Wall and process-CPU seconds of a block (CUDA work is synchronised at both ends)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def time(self, fn: Callable[[], None], n: int) -> tuple[float, float]:
        _sync(self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        _sync(self.device)
        return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


class L2hmcRunner:
    """One (workload, variant): a ``Trainer`` with its chains, timed by train step and by
    trajectory (draw, ``propose`` without gradients, accept: ``Trainer.evaluate``'s step)."""

    def __init__(
        self, w: bench_l2hmc_pt.Workload, v: Variant, device: torch.device, seed: int = 0
    ) -> None:
        torch.manual_seed(seed)
        cfg = TrainConfig(
            steps=10**6,
            chains=w.chains,
            lr=1e-4,
            precision=v.precision,  # type: ignore[arg-type]
            network_precision=v.network_precision,  # type: ignore[arg-type]
            compile=v.compiled,
            log_every=0,
            seed=seed,
        )
        self.w, self.v = w, v
        self.trainer = Trainer(
            w.group, w.shape, w.beta, w.dynamics, w.network, w.loss, cfg, device=device, log=None
        )
        self.beta = self.trainer._beta_tensor(w.beta)
        self.x = self.trainer.x.clone()
        self.parameters = sum(p.numel() for p in self.trainer.model.parameters())

    def train_step(self) -> None:
        self.trainer.train_step(self.w.beta)

    def trajectory(self) -> None:
        model = self.trainer.model
        model.eval()
        v, d, u = model.draw(self.x, self.trainer.generator)
        with torch.no_grad():
            prop = model.propose(self.x, v, self.beta, d)
        self.x, _ = model.accept(self.x, prop, u)


class HmcRunner:
    """One HMC (workload, variant): ``hmc.hmc_step`` with the eager or compiled integrator."""

    def __init__(self, w: bench_hmc_pt.Workload, v: Variant, device: torch.device) -> None:
        dtype = torch.float64 if v.precision == "fp64" else torch.float32
        self.w, self.v = w, v
        self.g = torch.Generator(device).manual_seed(0)
        self.links = w.group.random(w.batch, w.shape, dtype=dtype, device=device, generator=self.g)
        self.integrator = hmc.compile_leapfrog() if v.compiled else None
        self.acc: list[torch.Tensor] = []

    def trajectory(self) -> None:
        self.links, met = hmc.hmc_step(
            self.links, self.w.beta, self.w.eps, self.w.n_steps, self.g, integrator=self.integrator
        )
        self.acc.append(met["accept_prob"].mean())


def _summary(rounds: list[tuple[float, float]]) -> dict[str, float]:
    walls = [r[0] for r in rounds]
    cpus = [r[1] for r in rounds]
    return {
        "wall_s": min(walls),
        "wall_median_s": statistics.median(walls),
        "cpu_s": min(cpus),
        "cpu_median_s": statistics.median(cpus),
    }


def _release(device: torch.device) -> None:
    """Free what a failed variant held (its tensors are garbage now)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _failed(name: str, kind: str, v: Variant, exc: Exception) -> dict[str, Any]:
    return {
        "workload": name,
        "kind": kind,
        "variant": dataclasses.asdict(v),
        "label": v.label,
        "error": f"{type(exc).__name__}: {exc}"[:500],
    }


def _first(clock: _Clock, fn: Callable[[], None]) -> float:
    return clock.time(fn, 1)[0]


def l2hmc_workload(
    name: str,
    w: bench_l2hmc_pt.Workload,
    variants: list[Variant],
    device: torch.device,
    *,
    rounds: int,
    n_train: int,
    n_traj: int,
    log: Any = print,
) -> list[dict[str, Any]]:
    clock = _Clock(device)
    runners, out = [], []
    for v in variants:
        try:
            r = L2hmcRunner(w, v, device)
            first_traj = _first(clock, r.trajectory)
            first_train = _first(clock, r.train_step)
            clock.time(r.trajectory, 1)  # the eval graphs after training mode, allocator
            clock.time(r.train_step, 1)
        except Exception as exc:  # one failing variant must not hide the others
            log(f"  {name} {v.label}: failed: {type(exc).__name__}: {exc}")
            out.append(_failed(name, "l2hmc", v, exc))
            _release(device)
            continue
        runners.append((r, first_train, first_traj, [], []))
        log(
            f"  {name} {v.label}: {r.parameters / 1e6:.2f} M parameters, first train step "
            f"{first_train:.1f} s, first trajectory {first_traj:.1f} s"
        )
    for _ in range(rounds):
        for entry in list(runners):
            r, _, _, train_rounds, traj_rounds = entry
            try:
                train_rounds.append(clock.time(r.train_step, n_train))
                traj_rounds.append(clock.time(r.trajectory, n_traj))
            except Exception as exc:  # e.g. out of device memory: drop this variant only
                log(f"  {name} {r.v.label}: failed: {type(exc).__name__}: {exc}")
                out.append(_failed(name, "l2hmc", r.v, exc))
                runners.remove(entry)
                _release(device)
    for r, first_train, first_traj, train_rounds, traj_rounds in runners:
        out.append(
            {
                "workload": name,
                "kind": "l2hmc",
                "variant": dataclasses.asdict(r.v),
                "label": r.v.label,
                "chains": w.chains,
                "shape": list(w.shape),
                "layers": w.dynamics.leapfrog,
                "parameters": r.parameters,
                "first_train_s": first_train,
                "first_traj_s": first_traj,
                "train": _summary(train_rounds),
                "traj": _summary(traj_rounds),
                "rounds": rounds,
            }
        )
    del runners
    # the compiled graphs hold on to the trainers' modules: drop them before the next workload
    torch._dynamo.reset()
    _release(device)
    return out


def hmc_workload(
    name: str,
    w: bench_hmc_pt.Workload,
    variants: list[Variant],
    device: torch.device,
    *,
    rounds: int,
    n_traj: int,
    log: Any = print,
) -> list[dict[str, Any]]:
    clock = _Clock(device)
    runners = []
    failed = []
    for v in variants:
        try:
            r = HmcRunner(w, v, device)
            first = clock.time(r.trajectory, 2)[0] * 2
        except Exception as exc:
            log(f"  HMC {name} {v.label}: failed: {type(exc).__name__}: {exc}")
            failed.append(_failed(name, "hmc", v, exc))
            _release(device)
            continue
        runners.append((r, first, []))
        log(f"  HMC {name} {v.label}: first two trajectories {first:.1f} s")
    for r, _, _ in runners:
        r.acc.clear()
    for _ in range(rounds):
        for entry in list(runners):
            r, _, traj_rounds = entry
            try:
                traj_rounds.append(clock.time(r.trajectory, n_traj))
            except Exception as exc:
                log(f"  HMC {name} {r.v.label}: failed: {type(exc).__name__}: {exc}")
                failed.append(_failed(name, "hmc", r.v, exc))
                runners.remove(entry)
                _release(device)
    return failed + [
        {
            "workload": name,
            "kind": "hmc",
            "variant": dataclasses.asdict(r.v),
            "label": r.v.label,
            "chains": w.batch,
            "shape": list(w.shape),
            "leapfrog_steps": w.n_steps,
            "step_size": w.eps,
            "acceptance": float(torch.stack(r.acc).mean()) if r.acc else None,
            "first_two_s": first,
            "traj": _summary(traj_rounds),
            "rounds": rounds,
        }
        for r, first, traj_rounds in runners
    ]


@dataclass(frozen=True)
class Plan:
    """What ``run`` measures: workload scaling, variants and round sizes."""

    u1_chains: int | None = None  #: None: the workload's own (128)
    u1_shape: tuple[int, ...] | None = None
    su3_chains: int | None = None
    su3_shape: tuple[int, ...] | None = None
    u1_network: Any = None  #: None: the seed's network
    su3_network: Any = None  #: None: the workload's ([256] tanh)
    rounds: int = 3
    n_train: int = 1
    n_traj: int = 2
    hmc_traj: int = 10
    hmc_u1_chains: int | None = None  #: None: as u1_chains (HMC has no network to outgrow)
    hmc_u1_shape: tuple[int, ...] | None = None
    hmc_su3_chains: int | None = None
    hmc_su3_shape: tuple[int, ...] | None = None
    compiled: bool = True
    #: workloads whose L2HMC variants include torch.compile (HMC always does when ``compiled``):
    #: compiling the SU(3) layers (complex arithmetic, no inductor codegen) takes tens of
    #: minutes on a 2-core CPU, so the quick mode leaves them out
    l2hmc_compiled: tuple[str, ...] = ("u1", "su3")
    bf16: bool = False  #: add fp32 links + bf16 networks (CUDA)
    workloads: tuple[str, ...] = ("u1", "su3")
    #: L2HMC per force against HMC, networks against their FLOP floor, SU(3) compiled against
    #: eager and the seed side by side (``reportlib/cost.py``); None: not measured
    cost: cost.Plan | None = None


def _l2hmc_workloads(plan: Plan) -> dict[str, bench_l2hmc_pt.Workload]:
    u1, su3 = bench_l2hmc_pt.WORKLOADS["u1"], bench_l2hmc_pt.WORKLOADS["su3"]
    u1 = dataclasses.replace(
        u1,
        chains=plan.u1_chains or u1.chains,
        shape=plan.u1_shape or u1.shape,
        network=plan.u1_network or u1.network,
    )
    su3 = dataclasses.replace(
        su3,
        chains=plan.su3_chains or su3.chains,
        shape=plan.su3_shape or su3.shape,
        network=plan.su3_network or su3.network,
    )
    return {"u1": u1, "su3": su3}


def _hmc_workloads(plan: Plan) -> dict[str, bench_hmc_pt.Workload]:
    u1, su3 = bench_hmc_pt.WORKLOADS["u1"], bench_hmc_pt.WORKLOADS["su3"]
    u1 = dataclasses.replace(
        u1,
        batch=plan.hmc_u1_chains or plan.u1_chains or u1.batch,
        shape=plan.hmc_u1_shape or plan.u1_shape or u1.shape,
    )
    su3 = dataclasses.replace(
        su3,
        batch=plan.hmc_su3_chains or plan.su3_chains or su3.batch,
        shape=plan.hmc_su3_shape or plan.su3_shape or su3.shape,
    )
    return {"u1": u1, "su3": su3}


def variants(plan: Plan, device: torch.device) -> list[Variant]:
    modes = (False, True) if plan.compiled else (False,)
    out = [Variant(p, c) for p in ("fp32", "fp64") for c in modes]
    if plan.bf16 and device.type == "cuda":
        out += [Variant("fp32", c, "bf16") for c in modes]
    return out


def run(plan: Plan, device: torch.device, log: Any = print) -> dict[str, Any]:
    vs = variants(plan, device)
    results: list[dict[str, Any]] = []
    l2, hw = _l2hmc_workloads(plan), _hmc_workloads(plan)
    for name in plan.workloads:
        l2_vs = [v for v in vs if not v.compiled or name in plan.l2hmc_compiled]
        log(f"throughput: L2HMC {name} ({', '.join(v.label for v in l2_vs)})")
        results += l2hmc_workload(
            name,
            l2[name],
            l2_vs,
            device,
            rounds=plan.rounds,
            n_train=plan.n_train,
            n_traj=plan.n_traj,
            log=log,
        )
        # HMC has no networks: bf16 networks do not apply
        hmc_vs = [v for v in vs if v.network_precision is None]
        log(f"throughput: HMC {name}")
        results += hmc_workload(
            name, hw[name], hmc_vs, device, rounds=plan.rounds, n_traj=plan.hmc_traj, log=log
        )
    return {
        "plan": dataclasses.asdict(plan) | {"u1_network": None, "su3_network": None},
        "device": str(device),
        "results": results,
        # the seed's times are measured beside ours by the cost figures ("cost", its "seed" rows)
        "seed": {},
        "cost": cost.run(plan.cost, device, log) if plan.cost is not None else None,
    }
