"""The L2HMC training recipe against its own ablation: a bounded experiment on U(1) 16×16.

Each *variant* is a spec (default ``specs/u1-report.l2h``) with ``--set`` overrides, trained at
one fixed β from the same HMC-thermalised chains, then measured beside the ε-only ablation
(the same dynamics without networks: only the step sizes ε_k and any Fourier masses trained)
and HMC tuned to 75 % acceptance at trajectory length 1, all from the same start, in
interleaved blocks timed in process CPU time (one thread; eager everywhere, so per-CPU-second
figures compare like with like).  Per sampler it reports:

* τ_int(Q) of the integer charge (Madras–Sokal window, ``≥`` when not converged) per
  trajectory, per force evaluation (× forces per trajectory) and per CPU second (× CPU s per
  trajectory of one chain), acceptance, ⟨cos θ_P⟩ and ⟨Q²⟩ against exact;
* the hypothesis of issue text "the sine-charge loss rewards UV jumps": the loss's expected
  jump ⟨A ΔQ_sin²⟩ of proposals, the chain's ⟨ΔQ_sin²⟩, the integer tunnelling rate
  (fraction of trajectories whose integer Q changed) and the share of ⟨ΔQ_sin²⟩ carried by
  trajectories that did *not* change the integer charge;
* for trained variants: the loss terms, acceptance and jumps over training (10 chunks), the
  gradient norms of each loss term on the step sizes and on the networks at initialisation,
  and the training CPU time.

Run (the numbers of docs/recipe.md; its result files are in docs/recipe/)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/recipe.py --beta 3 \\
        --train-steps 1000 --trajectories 1000 --set loss.plaquette=0 \\
        --out bench/results/recipe-b3-charge.json zero-eps10

Variants are names from ``VARIANTS`` or ``name:key=value,key=value`` (``--set`` overrides).
The ε-only ablation and HMC are always measured.  JSON is written after every variant;
``recipe.py --tables FILE.json`` prints it as the markdown tables of docs/recipe.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

from reportlib import spec as spec_mod  # noqa: E402
from reportlib.physics import _forces, analyze, chains_like  # noqa: E402

from l2hmcc.runtime.pt import hmc  # noqa: E402
from l2hmcc.runtime.pt.lattice import sin_charge, topological_charge  # noqa: E402
from l2hmcc.runtime.pt.loss import DISTANCES, _term  # noqa: E402
from l2hmcc.runtime.pt.trainer import Trainer  # noqa: E402

#: Named variants: ``--set`` overrides of the base spec.
VARIANTS: dict[str, tuple[str, ...]] = {
    # the report's spec as it is (specs/u1-report.l2h: specs/u1.l2h's recipe, annealed)
    "report": (),
    # heads at exactly zero: the ε-only sampler at step 0
    "zero": ("network.head_init=0",),
    # zero heads, step sizes learning 10× faster than the networks
    "zero-eps10": ("network.head_init=0", "train.step_size_lr_factor=10"),
    # the plaquette distance only (no sine charge)
    "plaquette": ("loss.charge=0", "loss.plaquette=1.0"),
    # the networks as initialised (small heads), ε as initialised: one train step
    "untrained": ("train.steps=1",),
}


def parse_variant(text: str) -> tuple[str, tuple[str, ...]]:
    if ":" in text:
        name, rest = text.split(":", 1)
        return name, tuple(s for s in rest.split(",") if s)
    if text not in VARIANTS:
        raise SystemExit(f"recipe.py: unknown variant {text!r}; known: {sorted(VARIANTS)}")
    return text, VARIANTS[text]


class Series:
    """Per-trajectory ``[B]`` series of one sampler, and its process CPU time."""

    def __init__(self) -> None:
        self.acc: list[torch.Tensor] = []
        self.plaq: list[torch.Tensor] = []
        self.charge: list[torch.Tensor] = []
        self.sin: list[torch.Tensor] = []
        self.jump_sin: list[torch.Tensor] = []  #: A · ΔQ_sin² of the proposal
        self.cpu = 0.0
        self.wall = 0.0
        self.n = 0

    def add(self, acc: torch.Tensor, x: torch.Tensor, x_prop: torch.Tensor | None) -> None:
        from l2hmcc.runtime.pt.lattice import mean_plaquette

        q_sin = sin_charge(x)
        self.acc.append(acc.detach())
        self.plaq.append(mean_plaquette(x))
        self.charge.append(topological_charge(x))
        self.sin.append(q_sin)
        if x_prop is not None and self.sin[:-1]:
            prev = self.sin[-2]
            self.jump_sin.append(acc.detach() * (sin_charge(x_prop) - prev).square())
        self.n += 1

    def arrays(self) -> dict[str, np.ndarray]:
        def stack(xs: list[torch.Tensor]) -> np.ndarray:
            return torch.stack(xs).double().cpu().numpy()

        return {"acc": stack(self.acc), "plaq": stack(self.plaq), "charge": stack(self.charge)}


def jumps(s: Series, burn: int) -> dict[str, Any]:
    """The sine-charge jumps against integer tunnelling (the hypothesis of the module doc)."""
    q = np.rint(torch.stack(s.charge).double().cpu().numpy()[burn:])
    qs = torch.stack(s.sin).double().cpu().numpy()[burn:]
    dq = np.diff(q, axis=0)
    dqs2 = np.diff(qs, axis=0) ** 2
    tunnel = dq != 0
    total = float(dqs2.mean())
    out = {
        "dQsin2": total,
        "dQint2": float((dq**2).mean()),
        "tunnel_rate": float(tunnel.mean()),
        "dQsin2_without_tunnel": float(dqs2[~tunnel].mean()) if (~tunnel).any() else None,
        "dQsin2_with_tunnel": float(dqs2[tunnel].mean()) if tunnel.any() else None,
        # share of the chain's ⟨ΔQ_sin²⟩ from trajectories that left the integer Q unchanged
        "share_without_tunnel": float(dqs2[~tunnel].sum() / dqs2.sum()) if total > 0 else None,
    }
    if s.jump_sin:
        out["A_dQsin2_proposal"] = float(
            torch.stack(s.jump_sin).double().cpu().numpy()[burn:].mean()
        )
    return out


#: the dynamics' parameters that are not networks: what an ablation (``network none``) trains
INTEGRATOR_PARAMETERS = frozenset({"log_step_size", "kinetic_log_m2"})


def grads_at_init(tr: Trainer, beta: float, batches: int) -> dict[str, Any]:
    """Norms of the gradient of each weighted loss term on the integrator's own parameters
    (the step sizes and any Fourier masses, ``INTEGRATOR_PARAMETERS``: the ``eps`` figures)
    and on the networks, averaged over ``batches`` proposals from the trainer's (thermalised)
    chains, and the terms' values (the model as initialised, train mode)."""
    tr.model.train()
    bt = tr._beta_tensor(beta)
    named = [(n, p) for n, p in tr.model.named_parameters() if p.requires_grad]
    out: dict[str, list[float]] = {}
    for _ in range(batches):
        x = tr.x
        v, d, _u = tr.model.draw(x, tr.generator)
        prop = tr.model(x, v, bt, d)
        acc = prop.acceptance
        for term in ("plaquette", "charge"):
            w = getattr(tr.loss_config, term)
            if w == 0:
                continue
            jump = acc * DISTANCES[term](x, prop.x)
            value = w * _term(tr.loss_config, jump)
            grads = torch.autograd.grad(
                value, [p for _, p in named], retain_graph=True, allow_unused=True
            )
            sq = {"eps": 0.0, "nets": 0.0}
            for (n, _p), g in zip(named, grads, strict=True):
                if g is not None:
                    sq["eps" if n in INTEGRATOR_PARAMETERS else "nets"] += float(g.square().sum())
            for k, v2 in sq.items():
                out.setdefault(f"{term}_{k}", []).append(math.sqrt(v2))
            out.setdefault(f"{term}_value", []).append(float(value.detach()))
        out.setdefault("acceptance", []).append(float(acc.mean()))
    return {k: float(np.mean(v)) for k, v in out.items()}


def curves(tr: Trainer, chunks: int = 10) -> dict[str, list[float]]:
    h = tr.histories["train"]
    out: dict[str, list[float]] = {}
    keys = ("loss", "loss_charge", "loss_plaquette", "esjd_charge", "esjd_plaquette")
    for key in (*keys, "accept_prob", "dQ", "dQ_sin", "grad_norm"):
        if key not in h or len(h[key]) == 0:
            continue
        v = np.asarray(h[key], dtype=np.float64)
        v = v.reshape(len(v), -1).mean(1)
        n = max(len(v) // chunks, 1)
        out[key] = [float(v[i : i + n].mean()) for i in range(0, n * (len(v) // n), n)]
    return out


def _fmt(x: Any, spec: str = ".3g") -> str:
    return "–" if x is None else format(x, spec)


def tables(result: dict[str, Any]) -> str:
    """Markdown tables of a result file: the measurement, then training and gradients."""
    rows = [
        "| sampler | acc | τ_int(Q) | τ × forces | τ × CPU ms (per chain) | tunnel rate |"
        " ⟨ΔQ_sin²⟩ | share w/o tunnel | ⟨A ΔQ_sin²⟩ proposals | plaq σ | ⟨Q²⟩ σ | train CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    samplers = {"eps_only": result.get("eps_only", {}), **result["variants"]}
    samplers["hmc"] = result.get("hmc", {})
    for name, rec in samplers.items():
        f = rec.get("measure")
        if not f:
            continue
        t, j = f["tau_q"], f["jumps"]
        tau = (
            f"{'' if t['converged'] else '≥ '}{_fmt(t['value'], '.3g')} ± {_fmt(t['err'], '.2g')}"
            f" (W={t['window']})"
        )
        cpu_ms = None if f["tau_cpu_s"] is None else 1e3 * f["tau_cpu_s"]
        train = rec.get("train", {}).get("cpu_s")
        rows.append(
            f"| {name} | {f['acceptance']:.3f} | {tau} | {_fmt(f['tau_forces'], '.0f')}"
            f" ({f['forces_per_traj']}) | {_fmt(cpu_ms, '.3g')} | {j['tunnel_rate']:.4f} |"
            f" {j['dQsin2']:.4f} | {_fmt(j['share_without_tunnel'], '.2f')} |"
            f" {_fmt(j.get('A_dQsin2_proposal'), '.4f')} |"
            f" {_fmt(f['plaquette']['sigma'], '+.1f')} | {_fmt(f['q2']['sigma'], '+.1f')} |"
            f" {_fmt(train, '.0f')} |"
        )
    rows += [
        "",
        "| sampler | grad at init: charge on ε / nets | plaquette on ε / nets |"
        " acc at init | train: acc (first → last tenth) | ⟨dQ_sin⟩ | ⟨dQ⟩ | loss | ε_k after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rec in samplers.items():
        g, tr = rec.get("grads_at_init"), rec.get("train")
        if not g or not tr:
            continue
        c = tr["curves"]

        def ends(key: str, c: dict[str, list[float]] = c) -> str:
            v = c.get(key)
            return "–" if not v else f"{v[0]:.3g} → {v[-1]:.3g}"

        eps = ", ".join(f"{e:.3f}" for e in tr["step_sizes"])
        rows.append(
            f"| {name} | {_fmt(g.get('charge_eps'))} / {_fmt(g.get('charge_nets'))} |"
            f" {_fmt(g.get('plaquette_eps'))} / {_fmt(g.get('plaquette_nets'))} |"
            f" {_fmt(g.get('acceptance'))} | {ends('accept_prob')} | {ends('dQ_sin')} |"
            f" {ends('dQ')} | {ends('loss')} | {eps} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--tables":
        print(tables(json.loads(Path(sys.argv[2]).read_text())))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "variants", nargs="*", default=[], help="trained variants (none: ε-only and HMC only)"
    )
    ap.add_argument("--spec", default=str(REPO / "specs" / "u1-report.l2h"))
    ap.add_argument("--beta", type=float, default=3.0)
    ap.add_argument("--train-steps", type=int, default=1500)
    ap.add_argument("--chains", type=int, default=32, help="training chains")
    ap.add_argument("--eval-chains", type=int, default=64)
    ap.add_argument("--trajectories", type=int, default=1000)
    ap.add_argument("--block", type=int, default=50)
    ap.add_argument("--grad-batches", type=int, default=4)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override of the base spec for every sampler, the ε-only ablation included",
    )
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    device = torch.device("cpu")
    c_start = time.process_time()
    base = (
        f"lattice.beta={a.beta}",
        f"train.steps={a.train_steps}",
        f"train.chains={a.chains}",
        "train.compile=false",
        *a.set,
    )
    variants = [parse_variant(v) for v in a.variants]
    result: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "beta": a.beta,
        "spec": a.spec,
        "train_steps": a.train_steps,
        "train_chains": a.chains,
        "eval_chains": a.eval_chains,
        "trajectories": a.trajectories,
        "variants": {},
    }

    # thermalised start: HMC at β from a hot start, tuned to 0.75 (shared by every sampler)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    from l2hmcc.runtime.pt.groups import group_by_name

    u1 = group_by_name("U1")
    x0 = u1.random(a.eval_chains, (16, 16), dtype=torch.float32, generator=gen)
    bt = torch.tensor(a.beta, dtype=torch.float32)
    tuned = hmc.tune_step_size(x0, bt, target=0.75, traj_length=1.0, generator=gen)
    x = tuned.links
    for _ in range(200):
        x, _m = hmc.hmc_step(x, bt, tuned.eps, tuned.n_steps, gen)
    x_therm = x.clone()

    def build(overrides: tuple[str, ...], networks: bool) -> Trainer:
        cfg = spec_mod.load(a.spec, (*base, *overrides))
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        train = dataclasses.replace(cfg.train, log_every=0, checkpoint_every=0)
        tr = Trainer(
            cfg.group,
            cfg.shape,
            a.beta,
            cfg.dynamics,
            cfg.network if networks else None,
            cfg.loss,
            train,
            device=device,
            log=None,
        )
        tr.x = chains_like(x_therm, train.chains)
        return tr

    def train(tr: Trainer) -> dict[str, Any]:
        t0, c0 = time.perf_counter(), time.process_time()
        tr.train()
        if tr.stop_flag.is_set():  # the trainer turns SIGTERM into a clean stop: honour it
            save()
            raise SystemExit(143)
        return {
            "steps": tr.step,
            "cpu_s": time.process_time() - c0,
            "wall_s": time.perf_counter() - t0,
            "step_sizes": [float(e) for e in tr.model.step_sizes().detach()],
            "curves": curves(tr),
        }

    def measure(samplers: dict[str, Trainer | None]) -> dict[str, Any]:
        """Interleaved blocks of every sampler (None: HMC) from the thermalised chains."""
        state = {k: x_therm.clone() for k in samplers}
        series = {k: Series() for k in samplers}
        for k, s in series.items():
            s.add(torch.ones(a.eval_chains), state[k], None)

        def step(k: str) -> None:
            tr = samplers[k]
            if tr is None:
                x, met = hmc.hmc_step(state[k], bt, tuned.eps, tuned.n_steps, gen)
                series[k].add(met["accept_prob"], x, None)
                # HMC: A ΔQ_sin² of the proposal is not recorded (no proposal kept)
            else:
                v, d, u = tr.model.draw(state[k], tr.generator)
                with torch.no_grad():
                    prop = tr.model.propose(state[k], v, bt, d)
                x, _ = tr.model.accept(state[k], prop, u)
                series[k].add(prop.acceptance, x, prop.x)
            state[k] = x

        for tr in samplers.values():
            if tr is not None:
                tr.model.eval()
        done = 0
        while done < a.trajectories:
            n = min(a.block, a.trajectories - done)
            for k in samplers:
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(n):
                    step(k)
                series[k].cpu += time.process_time() - c0
                series[k].wall += time.perf_counter() - t0
            done += n
        burn = a.trajectories // 10
        out = {}
        for k, tr in samplers.items():
            s = series[k]
            n_traj = s.n - 1
            f = analyze(
                s.arrays(),
                beta=a.beta,
                volume=256,
                cost_cpu=s.cpu / n_traj,
                cost_wall=s.wall / n_traj,
                burn_in=burn,
            )
            forces = tuned.n_steps + 1 if tr is None else _forces(tr)[0]
            tau = f["tau_q"]["value"]
            cpu_per_chain_traj = s.cpu / n_traj / a.eval_chains
            f["forces_per_traj"] = forces
            f["network_calls_per_traj"] = 0 if tr is None else _forces(tr)[1]
            f["cpu_s_per_chain_traj"] = cpu_per_chain_traj
            f["tau_forces"] = tau * forces if tau else None
            f["tau_cpu_s"] = tau * cpu_per_chain_traj if tau else None
            f["jumps"] = jumps(s, burn)
            out[k] = f
        return out

    def save() -> None:
        result["cpu_s_total"] = time.process_time() - c_start
        if a.out:
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")

    # the ε-only ablation (the base spec's dynamics, loss and schedule, no networks)
    eps_tr = build((), networks=False)
    result["eps_only"] = {"grads_at_init": grads_at_init(eps_tr, a.beta, a.grad_batches)}
    result["eps_only"]["train"] = train(eps_tr)
    result["hmc"] = {"step_size": tuned.eps, "leapfrog_steps": tuned.n_steps}
    print(f"ε-only trained: {result['eps_only']['train']['cpu_s']:.0f} s CPU", flush=True)
    save()
    trained: dict[str, Trainer | None] = {"eps_only": eps_tr, "hmc": None}
    for name, overrides in variants:
        tr = build(overrides, networks=True)
        rec: dict[str, Any] = {"overrides": list(overrides)}
        rec["parameters"] = sum(p.numel() for p in tr.model.parameters() if p.requires_grad)
        rec["grads_at_init"] = grads_at_init(tr, a.beta, a.grad_batches)
        tr.x = chains_like(x_therm, tr.config.chains)
        rec["train"] = train(tr)
        result["variants"][name] = rec
        trained[name] = tr
        print(f"{name} trained: {rec['train']['cpu_s']:.0f} s CPU", flush=True)
        save()
    figures = measure(trained)
    for k, f in figures.items():
        target = result["variants"].get(k) or result.setdefault(k, {})
        target["measure"] = f
        t = f["tau_q"]
        print(
            f"{k:>12}: acc {f['acceptance']:.3f} τ(Q) {'' if t['converged'] else '≥'}"
            f"{t['value'] or float('nan'):.2f}±{t['err'] or 0:.2f} (W={t['window']}) "
            f"tunnel {f['jumps']['tunnel_rate']:.4f} ⟨ΔQsin²⟩ {f['jumps']['dQsin2']:.4f} "
            f"share w/o tunnel {f['jumps']['share_without_tunnel'] or 0:.2f} "
            f"τ·forces {f['tau_forces'] or float('nan'):.1f} "
            f"τ·CPU ms {1e3 * (f['tau_cpu_s'] or float('nan')):.2f}",
            flush=True,
        )
    save()
    print(f"total CPU {result['cpu_s_total']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
