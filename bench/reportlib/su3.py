"""SU(3) 4⁴: plaquette and acceptance of short HMC and L2HMC runs, against the strong-coupling
series at small β and published large-volume values near β = 6.

Per β: the spec (a shipped one with the report's overrides and ``lattice.beta=β``) gives the
``Trainer``.  HMC (ε tuned to the spec's target acceptance at trajectory length 1; the tuning
trajectories and ``therm`` more thermalise the hot start) then runs ``steps`` trajectories.  The
L2HMC sampler starts from HMC's thermalised chains, trains ``train.steps`` steps at β and runs
``steps`` trajectories.  Both drop the first 10 % and report the plaquette ``⟨Re tr U_P⟩/3`` with
a τ-corrected error and the mean acceptance.

References: strong coupling ``β/18 + β²/216`` (``common.exact``; the next term,
``−5β⁴/93312``, and the finite-volume corrections, from surfaces that wrap the torus at
``O(u^{L})``, ``u ≈ β/18``, are far below the errors at β ≤ 1 on 4⁴); β = 6.0: the published
large-volume value in ``references.PUBLISHED_SU3_PLAQUETTE``.  A 4⁴ lattice at β = 6 is a box of ≈ 0.37 fm: it is not large
volume.  To one loop the plaquette there is ``1 − (g²/3)(1 − 1/V)`` against ``1 − g²/3``, i.e.
larger by ``≈ g²/(3V) ≈ 0.0013`` (the zero modes are absent), and non-perturbatively the small
box is deconfined (β_c(N_t = 4) ≈ 5.69), which raises the plaquette further; so on 4⁴ the
plaquette at β = 6 lies above that value by O(10⁻³–10⁻²) and the large-volume number is a
plausibility check, not a test.  The exact check of the sampler there is L2HMC against HMC on
the same volume.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l2hmcc.runtime.common import exact
from l2hmcc.runtime.common.autocorr import mean_error
from l2hmcc.runtime.pt import hmc
from l2hmcc.runtime.pt.lattice import mean_plaquette
from l2hmcc.runtime.pt.trainer import Trainer

from . import spec as spec_mod
from .physics import chains_like
from .references import PUBLISHED_SU3_PLAQUETTE


def reference(beta: float) -> dict[str, Any] | None:
    if beta <= 1.0:
        return {
            "value": exact.su3_strong_coupling_plaquette(beta),
            "kind": "strong coupling β/18 + β²/216",
            "truncation": 5 * beta**4 / 93312,
        }
    for b, (value, err, source) in PUBLISHED_SU3_PLAQUETTE.items():
        if abs(beta - b) < 1e-9:
            return {"value": value, "err": err, "kind": "published, large volume", "source": source}
    return None


@dataclass(frozen=True)
class Plan:
    spec: Path
    overrides: tuple[str, ...] = ()
    betas: tuple[float, ...] = (0.5, 6.0)
    steps: int = 100  #: measured trajectories per sampler
    therm: int = 50  #: HMC thermalisation after tuning


def _summary(
    acc: np.ndarray, plaq: np.ndarray, burn: int, cost: tuple[float, float]
) -> dict[str, Any]:
    p = mean_error(plaq[burn:])
    return {
        "acceptance": float(acc[burn:].mean()),
        "plaquette": p.mean,
        "err": p.err,
        "tau_plaquette": p.tau if math.isfinite(p.tau) else None,
        "cost_cpu_s": cost[0],
        "cost_wall_s": cost[1],
    }


class _Timer:
    """Process CPU and wall seconds per trajectory of a loop (device synchronised)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> _Timer:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.c0, self.t0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.cpu, self.wall = time.process_time() - self.c0, time.perf_counter() - self.t0

    def per(self, n: int) -> tuple[float, float]:
        return self.cpu / n, self.wall / n


def run_beta(plan: Plan, beta: float, device: torch.device, log: Any = print) -> dict[str, Any]:
    cfg = spec_mod.load(plan.spec, (*plan.overrides, f"lattice.beta={beta}"))
    torch.manual_seed(cfg.seed)
    trainer = Trainer(
        cfg.group,
        cfg.shape,
        cfg.beta,
        cfg.dynamics,
        cfg.network,
        cfg.loss,
        cfg.train,
        device=device,
        log=None,
    )
    gen, bt = trainer.generator, trainer._beta_tensor(beta)
    chains = cfg.evaluate["chains"]
    x = chains_like(trainer.x, chains)
    target = cfg.hmc.get("target_acceptance") or 0.75
    tuned = hmc.tune_step_size(
        x, bt, target=target, traj_length=cfg.hmc["trajectory_length"], generator=gen
    )
    eps, n = tuned.eps, tuned.n_steps
    x = tuned.links
    for _ in range(plan.therm):
        x, _ = hmc.hmc_step(x, bt, eps, n, gen, measure_charge=False)
    therm = x.clone()
    acc, plaq = [], []
    with _Timer(device) as timer:
        for _ in range(plan.steps):
            x, met = hmc.hmc_step(x, bt, eps, n, gen, measure_charge=False)
            acc.append(met["accept_prob"])
            plaq.append(met["plaquette"])
    burn = plan.steps // 10
    h = _summary(
        torch.stack(acc).double().cpu().numpy(),
        torch.stack(plaq).double().cpu().numpy(),
        burn,
        timer.per(plan.steps),
    )
    h |= {"step_size": eps, "leapfrog_steps": n}

    # L2HMC from HMC's thermalised chains
    trainer.x = chains_like(therm, cfg.train.chains)
    c0 = time.process_time()
    trainer.train()
    train_cpu = time.process_time() - c0
    model = trainer.model
    model.eval()
    x = therm.clone()
    acc, plaq = [], []
    with _Timer(device) as timer:
        for _ in range(plan.steps):
            v, d, u = model.draw(x, gen)
            with torch.no_grad():
                prop = model.propose(x, v, bt, d)
            x, _ = model.accept(x, prop, u)
            acc.append(prop.acceptance)
            plaq.append(mean_plaquette(x))
    l2 = _summary(
        torch.stack(acc).double().cpu().numpy(),
        torch.stack(plaq).double().cpu().numpy(),
        burn,
        timer.per(plan.steps),
    )
    l2 |= {
        "train_steps": trainer.step,
        "train_cpu_s": train_cpu,
        "step_sizes": [float(e) for e in model.step_sizes().detach().cpu()],
    }
    ref = reference(beta)
    out = {
        "beta": beta,
        "shape": list(cfg.shape),
        "chains": chains,
        "steps": plan.steps,
        "burn_in": burn,
        "hmc": h,
        "l2hmc": l2,
        "reference": ref,
    }
    for key in ("hmc", "l2hmc"):
        s = out[key]
        if ref is not None:
            err = math.hypot(s["err"] or 0.0, ref.get("err") or 0.0)
            s["sigma_vs_reference"] = (s["plaquette"] - ref["value"]) / err if err > 0 else None
    d_err = math.hypot(h["err"] or 0.0, l2["err"] or 0.0)
    out["l2hmc_minus_hmc_sigma"] = (l2["plaquette"] - h["plaquette"]) / d_err if d_err else None
    log(
        f"  SU(3) β = {beta}: HMC ⟨P⟩ {h['plaquette']:.5f}±{h['err']:.5f} acc {h['acceptance']:.2f}; "
        f"L2HMC ⟨P⟩ {l2['plaquette']:.5f}±{l2['err']:.5f} acc {l2['acceptance']:.2f}; "
        f"reference {ref['value'] if ref else '-'}"
    )
    return out


def run(plan: Plan, device: torch.device, log: Any = print) -> dict[str, Any]:
    cfg = spec_mod.load(plan.spec, plan.overrides)
    log(
        f"SU(3): {plan.spec} on {'x'.join(map(str, cfg.shape))}, {cfg.evaluate['chains']} chains, "
        f"β = {list(plan.betas)}, {plan.steps} trajectories each"
    )
    return {
        "config": cfg.describe(),
        "steps": plan.steps,
        "therm": plan.therm,
        "results": [run_beta(plan, b, device, log) for b in plan.betas],
    }
