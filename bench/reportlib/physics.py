"""U(1) 16×16 physics: a trained L2HMC sampler against HMC tuned to 0.7–0.8 acceptance at
trajectory length 1, on the same number of chains and trajectories.

Protocol (``run``):

1. The spec (a shipped one, with the report's ``--set`` overrides) gives the ``Trainer`` exactly
   as a generated ``train.py`` would build it (``spec.py``).  Its β schedule is ``eras([...])``:
   training anneals β from low to high (Foreman et al.), and after the era of each β the
   sampler is measured at that β.
2. Measurement at β: ``chains`` chains copied from the training chains (as ``pt/run.py`` does).
   HMC's ε is tuned first with ``hmc.tune_step_size`` (fixed trajectory length; its trajectories
   thermalise and are not counted), with the compiled integrator.  Then L2HMC (draw, propose,
   accept; eval mode, no gradients) and HMC run in interleaved blocks of ``block`` trajectories,
   each block timed in wall and process CPU time, until both have ``steps`` trajectories; the
   first 10 % are dropped as burn-in.  HMC then continues alone to ``long_factor × steps``
   trajectories: a longer series for a better τ_int(Q) reference (HMC is cheap).
3. Per sampler: acceptance; ⟨cos θ_P⟩ and ⟨Q²⟩ with τ-corrected errors against their exact
   finite-volume values (``common.exact``); the tunneling rate (fraction of trajectories, over
   chains, whose integer charge changed); τ_int(Q) with the Madras–Sokal window and its error
   (``common.autocorr``), and whether the window converged (if not, τ is a lower bound);
   cost per trajectory (all chains) and per effective sample of Q, ``cost × 2τ / chains``;
   force evaluations per trajectory (HMC ``n + 1``; merged L2HMC ``2N + 1``, plus ``8N``
   network calls).  ``improvement`` = HMC's cost per effective sample over L2HMC's.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l2hmcc.runtime.common import exact
from l2hmcc.runtime.common.autocorr import integrated_autocorr_time, mean_error
from l2hmcc.runtime.pt import hmc
from l2hmcc.runtime.pt.lattice import mean_plaquette, topological_charge
from l2hmcc.runtime.pt.trainer import Trainer

from . import spec as spec_mod


@dataclass(frozen=True)
class Plan:
    spec: Path
    overrides: tuple[str, ...] = ()
    block: int = 50  #: trajectories per interleaved block
    long_factor: int = 5  #: HMC reference run length, in units of ``steps``
    betas: tuple[float, ...] | None = None  #: measure only these eras' β (None: all)
    compile_hmc: bool = True
    #: compile the L2HMC layers for the measurement even if the spec trains eagerly (HMC runs its
    #: compiled integrator: both samplers are timed at their best)
    compile_eval: bool = True
    #: also train and measure the same dynamics without networks (step sizes only)
    ablation: bool = True


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def chains_like(x: torch.Tensor, chains: int) -> torch.Tensor:
    """``chains`` chains from ``x`` (repeated and cut), as ``pt/run.py`` does."""
    reps = math.ceil(chains / x.shape[0])
    return x.repeat((reps,) + (1,) * (x.dim() - 1))[:chains].clone()


class Series:
    """Per-trajectory ``[B]`` measurements of one sampler, and its timed cost."""

    def __init__(self) -> None:
        self.acc: list[torch.Tensor] = []
        self.plaq: list[torch.Tensor] = []
        self.charge: list[torch.Tensor] = []
        self.wall = 0.0
        self.cpu = 0.0
        self.n = 0

    def add(self, acc: torch.Tensor, links: torch.Tensor) -> None:
        self.acc.append(acc.detach())
        self.plaq.append(mean_plaquette(links))
        self.charge.append(topological_charge(links))
        self.n += 1

    def arrays(self) -> dict[str, np.ndarray]:
        def stack(xs: list[torch.Tensor]) -> np.ndarray:
            return torch.stack(xs).double().cpu().numpy()

        return {"acc": stack(self.acc), "plaq": stack(self.plaq), "charge": stack(self.charge)}


def timed_block(device: torch.device, series: Series, fn: Any, n: int) -> None:
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    _sync(device)
    series.wall += time.perf_counter() - t0
    series.cpu += time.process_time() - c0


def analyze(
    arrays: dict[str, np.ndarray],
    *,
    beta: float,
    volume: int,
    cost_cpu: float,
    cost_wall: float,
    burn_in: int,
    basis: str = "cpu",
) -> dict[str, Any]:
    """Figures of one sampler from its ``[T, B]`` series (see the module docstring).

    ``cost_cpu``/``cost_wall``: seconds per trajectory of all chains; ``basis`` (``cpu`` or
    ``wall``) is the cost the per-effective-sample figure uses (process CPU time on a CPU,
    where one thread makes it robust to other load; wall time on a GPU)."""
    acc, plaq = arrays["acc"][burn_in:], arrays["plaq"][burn_in:]
    q = np.rint(arrays["charge"][burn_in:])
    t_len, chains = q.shape
    p = mean_error(plaq)
    q2 = mean_error(q**2)
    tau = integrated_autocorr_time(q)
    p_exact = exact.u1_plaquette(beta, volume)
    q2_exact = exact.u1_q2(beta, volume)
    tunnel = float((np.diff(q, axis=0) != 0).mean()) if t_len > 1 else float("nan")
    finite_tau = math.isfinite(tau.tau)
    cost = cost_cpu if basis == "cpu" else cost_wall
    per_eff = cost * 2.0 * tau.tau / chains if finite_tau else math.inf
    return {
        "trajectories": int(t_len),
        "chains": int(chains),
        "acceptance": float(acc.mean()),
        "plaquette": {
            "mean": p.mean,
            "err": p.err,
            "exact": p_exact,
            "infinite_volume": exact.u1_plaquette_infinite_volume(beta),
            "sigma": (p.mean - p_exact) / p.err if p.err > 0 else None,
        },
        "q2": {
            "mean": q2.mean,
            "err": q2.err,
            "exact": q2_exact,
            "sigma": (q2.mean - q2_exact) / q2.err if q2.err > 0 else None,
        },
        "tunneling_rate": tunnel,
        "tau_q": {
            "value": tau.tau if finite_tau else None,
            "err": tau.tau_err if math.isfinite(tau.tau_err) else None,
            "window": tau.window,
            "converged": tau.converged,
        },
        "cost_s": cost,
        "cost_cpu_s": cost_cpu,
        "cost_wall_s": cost_wall,
        "cost_per_eff_s": per_eff if math.isfinite(per_eff) else None,
    }


def _record(history: Any, key: str) -> np.ndarray:
    v = np.asarray(history[key], dtype=np.float64)
    return v.reshape(len(v), -1).mean(1)


def _forces(trainer: Trainer) -> tuple[int, int]:
    """(force evaluations, network calls) per trajectory of the trainer's sampler."""
    layers = trainer.dynamics_config.leapfrog
    merged = trainer.dynamics_config.directions == "merged"
    # network calls per layer and direction: two v-networks, and two x-networks unless the
    # kind has none (`network local`)
    per_layer = (2 if len(trainer.model.vnets) else 0) + (2 if len(trainer.model.xnets) else 0)
    forces = 2 * layers + 1 if merged else 2 * (layers + 1)
    calls = per_layer * layers * (2 if merged else 4)
    return forces, calls


def measure(
    trainers: dict[str, Trainer],
    beta: float,
    *,
    chains: int,
    steps: int,
    block: int,
    long_factor: int,
    target_acceptance: float,
    traj_length: float,
    compile_hmc: bool,
    log: Any = print,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The trained samplers (``trainers``: ``"l2hmc"`` and optionally ``"leapfrog"``, the
    no-network ablation) against tuned HMC at ``beta`` (see the module docstring); HMC starts
    from the ``"l2hmc"`` trainer's chains.  Returns (figures, series)."""
    main = trainers["l2hmc"]
    device, gen = main.device, main.generator
    volume = math.prod(main.lattice_shape)
    bt = main._beta_tensor(beta)
    x0 = chains_like(main.x, chains)
    integ = hmc.compile_leapfrog() if compile_hmc else None

    t0 = time.perf_counter()
    tuned = hmc.tune_step_size(
        x0.clone(),
        bt,
        target=target_acceptance,
        traj_length=traj_length,
        generator=gen,
        integrator=integ,
    )
    tune_s = time.perf_counter() - t0
    eps, n_steps = tuned.eps, tuned.n_steps
    state = {"hmc": tuned.links}
    series = {key: Series() for key in trainers}
    hm = Series()
    steppers = {}
    warm: dict[str, float] = {}
    for key, tr in trainers.items():
        state[key] = chains_like(tr.x, chains)
        tr.model.eval()

        def step(key: str = key, tr: Trainer = tr) -> None:
            x = state[key]
            v, d, u = tr.model.draw(x, tr.generator)
            with torch.no_grad():
                prop = tr.model.propose(x, v, bt, d)
            x, _ = tr.model.accept(x, prop, u)
            state[key] = x
            series[key].add(prop.acceptance, x)

        steppers[key] = step
        # one untimed trajectory: compilation of the eval graphs, if any
        t0 = time.perf_counter()
        with torch.no_grad():
            v, d, _ = tr.model.draw(state[key], tr.generator)
            tr.model.propose(state[key], v, bt, d)
        warm[key] = time.perf_counter() - t0

    def hmc_step() -> None:
        x, met = hmc.hmc_step(state["hmc"], bt, eps, n_steps, gen, integrator=integ)
        state["hmc"] = x
        hm.add(met["accept_prob"], x)

    done = 0
    while done < steps:
        n = min(block, steps - done)
        for key in trainers:
            timed_block(device, series[key], steppers[key], n)
        timed_block(device, hm, hmc_step, n)
        done += n
    long = Series()
    long.acc, long.plaq, long.charge = list(hm.acc), list(hm.plaq), list(hm.charge)
    long.n = hm.n
    extra = (long_factor - 1) * steps
    if extra > 0:
        timed_block(
            device, long, lambda: _hmc_into(long, state, bt, eps, n_steps, gen, integ), extra
        )
    burn = steps // 10
    basis = "cpu" if device.type == "cpu" else "wall"

    def figures(s: Series, cost_of: Series | None = None) -> dict[str, Any]:
        c = cost_of or s
        return analyze(
            s.arrays(),
            beta=beta,
            volume=volume,
            cost_cpu=c.cpu / c.n,
            cost_wall=c.wall / c.n,
            burn_in=burn,
            basis=basis,
        )

    out: dict[str, Any] = {
        "beta": beta,
        "volume": volume,
        "steps": steps,
        "burn_in": burn,
        "block": block,
        "cost_basis": basis,
        "hmc_step_size": eps,
        "hmc_leapfrog_steps": n_steps,
        "hmc_tuned_acceptance": tuned.acceptance,
        "hmc_tune_s": tune_s,
        "hmc_forces_per_traj": n_steps + 1,
        "hmc": figures(hm),
        # the long HMC run: the interleaved part's cost stands for the whole run
        "hmc_long": figures(long, cost_of=hm),
        "samplers": list(trainers),
    }
    th = out["hmc"]["tau_q"]["value"]
    hmc_eff = out["hmc"]["cost_per_eff_s"]
    for key, tr in trainers.items():
        forces, calls = _forces(tr)
        f = figures(series[key])
        tl, eff = f["tau_q"]["value"], f["cost_per_eff_s"]
        out[key] = f
        out[f"{key}_step_sizes"] = [float(e) for e in tr.model.step_sizes().detach().cpu()]
        out[f"{key}_forces_per_traj"] = forces
        out[f"{key}_network_calls_per_traj"] = calls
        out[f"{key}_first_trajectory_s"] = warm[key]
        out[f"{key}_vs_hmc"] = {
            "tau": th / tl if tl and th else None,
            "forces": (th * (n_steps + 1)) / (tl * forces) if tl and th else None,
            "cost": hmc_eff / eff if eff and hmc_eff else None,
        }
    # the headline figures (the trained sampler of the spec)
    out["improvement_tau"] = out["l2hmc_vs_hmc"]["tau"]
    out["improvement_forces"] = out["l2hmc_vs_hmc"]["forces"]
    out["improvement_cost"] = out["l2hmc_vs_hmc"]["cost"]
    arrays = {f"{key}_{k}": v for key in trainers for k, v in series[key].arrays().items()}
    arrays |= {f"hmc_{k}": v for k, v in long.arrays().items()}
    for key in trainers:
        log(
            f"  β = {beta}: {key} acc {out[key]['acceptance']:.3f} τ(Q) {_tau_text(out[key])} "
            f"{1e3 * out[key]['cost_s']:.1f} ms/traj"
        )
    log(
        f"  β = {beta}: HMC ε = {eps:.4g}×{n_steps} acc {out['hmc']['acceptance']:.3f} τ(Q) "
        f"{_tau_text(out['hmc'])} (long {_tau_text(out['hmc_long'])}) "
        f"{1e3 * out['hmc']['cost_s']:.2f} ms/traj"
    )
    return out, arrays


def _hmc_into(
    series: Series,
    state: dict[str, torch.Tensor],
    bt: torch.Tensor,
    eps: float,
    n_steps: int,
    gen: torch.Generator,
    integ: Any,
) -> None:
    x, met = hmc.hmc_step(state["hmc"], bt, eps, n_steps, gen, integrator=integ)
    state["hmc"] = x
    series.add(met["accept_prob"], x)


def _tau_text(s: dict[str, Any]) -> str:
    t = s["tau_q"]
    if t["value"] is None:
        return "∞"
    mark = "" if t["converged"] else "≥"
    return f"{mark}{t['value']:.1f}±{t['err'] or 0:.1f}"


def _train_era(trainer: Trainer, beta: float, n: int) -> dict[str, Any]:
    s0 = trainer.step
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train(steps=n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    h = trainer.histories["train"]
    tail = slice(max(s0, trainer.step - max(n // 10, 1)), trainer.step)
    return {
        "beta": beta,
        "steps": trainer.step - s0,
        "wall_s": wall,
        "cpu_s": cpu,
        "acceptance": float(_record(h, "accept_prob")[tail].mean()),
        "dQ": float(_record(h, "dQ")[tail].mean()) if "dQ" in h else None,
        "loss": float(_record(h, "loss")[tail].mean()),
        "step_sizes": [float(e) for e in trainer.model.step_sizes().detach().cpu()],
    }


def run(plan: Plan, device: torch.device, log: Any = print) -> dict[str, Any]:
    cfg = spec_mod.load(plan.spec, plan.overrides)
    if cfg.group != "U1" or len(cfg.shape) != 2:
        raise spec_mod.SpecError(f"{plan.spec}: the physics section needs a 2D U1 spec")
    eras = cfg.beta.era_values() if cfg.beta.kind == "stepped" else (cfg.beta.final(1),)
    total = cfg.train.total_steps
    per_era = max(total // len(eras), 1)
    train_cfg = dataclasses.replace(cfg.train, log_every=0, checkpoint_every=0)

    def build(network: Any) -> Trainer:
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        tr = Trainer(
            cfg.group,
            cfg.shape,
            cfg.beta,
            cfg.dynamics,
            network,
            cfg.loss,
            train_cfg,
            device=device,
            log=None,
        )
        if cfg.start == "cold":
            tr.x = tr.group.cold(train_cfg.chains, cfg.shape, dtype=tr.dtype, device=device)
        return tr

    # the spec's sampler, and (plan.ablation) the same dynamics, loss and schedule without
    # networks: a leapfrog whose per-layer step sizes are trained (what the networks add)
    trainers = {"l2hmc": build(cfg.network)}
    if plan.ablation:
        trainers["leapfrog"] = build(None)
    params = sum(p.numel() for p in trainers["l2hmc"].model.parameters() if p.requires_grad)
    chains, steps = cfg.evaluate["chains"], cfg.evaluate["steps"]
    if (cfg.hmc["chains"], cfg.hmc["steps"]) != (chains, steps):
        log("  note: hmc chains/steps differ from evaluate's; both use evaluate's")
    target = cfg.hmc.get("target_acceptance") or 0.75
    # The spec's train.compile applies to training; the measurement compiles the layers too
    # (plan.compile_eval), as HMC runs its compiled integrator: both are timed at their best.
    compile_eval = plan.compile_eval and not train_cfg.compile
    compile_note = "layers compiled for the measurement" if compile_eval else "as the spec"
    results, series = [], {}
    training: dict[str, list[dict[str, Any]]] = {key: [] for key in trainers}
    log(
        f"physics: {plan.spec} ({params} trainable parameters), eras β = {list(eras)}, "
        f"{per_era} train steps each ({train_cfg.chains} chains), then {steps} trajectories × "
        f"{chains} chains per sampler; samplers {list(trainers)} and HMC"
    )
    for k, beta in enumerate(eras):
        n = per_era if k < len(eras) - 1 else total - per_era * (len(eras) - 1)
        for key, tr in trainers.items():
            rec = _train_era(tr, beta, n)
            training[key].append(rec)
            log(
                f"  trained {key} era β = {beta}: {rec['steps']} steps in {rec['cpu_s']:.0f} s "
                f"CPU ({rec['wall_s']:.0f} s wall), acc {rec['acceptance']:.3f}, "
                f"|ΔQ| {rec['dQ'] or 0:.3f}"
            )
        if plan.betas is not None and not any(abs(beta - b) < 1e-9 for b in plan.betas):
            continue
        for tr in trainers.values():
            if compile_eval:
                tr.model.compile_proposal(True)
        out, ser = measure(
            trainers,
            beta,
            chains=chains,
            steps=steps,
            block=plan.block,
            long_factor=plan.long_factor,
            target_acceptance=target,
            traj_length=cfg.hmc["trajectory_length"],
            compile_hmc=plan.compile_hmc,
            log=log,
        )
        for tr in trainers.values():
            if compile_eval:
                tr.model.compile_proposal(False)  # back to eager training
        results.append(out)
        series[beta] = ser
    h = trainers["l2hmc"].histories["train"]
    curves = {
        key: _record(h, key).tolist() for key in ("loss", "accept_prob", "dQ", "beta") if key in h
    }
    return {
        "config": cfg.describe(),
        "parameters": params,
        "compile_eval": compile_note,
        "samplers": list(trainers),
        "training": training["l2hmc"],
        "training_ablation": training.get("leapfrog"),
        "train_curves": curves,
        "results": results,
        "_series": series,  # arrays for the figures (not written to JSON)
    }
