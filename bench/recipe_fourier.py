"""Plain leapfrog against Fourier-accelerated leapfrog at a fixed force budget, U(1) 16×16
(docs/recipe.md, "β = 3, second round").

No training: each integrator runs fixed step sizes on HMC-thermalised chains and reports the
acceptance and the accepted integer-charge jump ⟨ΔQ²⟩ per trajectory (τ_int(Q) follows from it,
see docs/recipe.md).  The step schedule is the trained ε-only ablation's of the recipe's β = 3
job (8 layers, merged directions: 16 leapfrog steps ε_0 … ε_7, ε_7 … ε_0, 17 forces) times a
factor, or a uniform ε with the same trajectory length.  Fourier acceleration kicks with
``K F`` and drifts by ``ε K v`` with ``K̂(k) = √((4D + m²)/(λ(k) + m²))`` per lattice momentum
(λ the Laplacian's eigenvalues: ``dynamics { fourier = m² }`` with ``network none`` and m²
not trained).  Standalone: the lattice formulas are written out here (float64, one thread).

    OMP_NUM_THREADS=1 .venv/bin/python bench/recipe_fourier.py --beta 3 --trajectories 150 \\
        [--json OUT.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time

import numpy as np
import torch

TWO_PI = 2 * math.pi
#: the trained ε-only step sizes of the recipe's β = 3 job (docs/recipe/beta3-round2.json)
RAMP_B3 = (0.1336, 0.1224, 0.1655, 0.1966, 0.2239, 0.2396, 0.2454, 0.2502)


def plaquettes(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0] + torch.roll(x[:, 1], -1, 1) - torch.roll(x[:, 0], -1, 2) - x[:, 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beta", type=float, default=3.0)
    ap.add_argument("--trajectories", type=int, default=150, help="per integrator")
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    beta, b, size = args.beta, args.chains, args.size

    def action(x: torch.Tensor) -> torch.Tensor:
        return beta * (1 - torch.cos(plaquettes(x))).flatten(1).sum(1)

    def force(x: torch.Tensor) -> torch.Tensor:
        sp = torch.sin(plaquettes(x))
        return beta * torch.stack([sp - torch.roll(sp, 1, 2), torch.roll(sp, 1, 1) - sp], 1)

    def charge(x: torch.Tensor) -> torch.Tensor:
        p = torch.remainder(plaquettes(x) + math.pi, TWO_PI) - math.pi
        return torch.round(p.flatten(1).sum(1) / TWO_PI)

    k = TWO_PI * torch.arange(size, dtype=torch.float64) / size
    lap = (4 * torch.sin(k / 2) ** 2)[:, None] + (4 * torch.sin(k / 2) ** 2)[None, :]

    def filt(m2: float | None) -> torch.Tensor | None:
        return None if m2 is None else torch.sqrt((8 + m2) / (lap + m2))

    def apply(kh: torch.Tensor | None, f: torch.Tensor) -> torch.Tensor:
        return f if kh is None else torch.fft.ifft2(torch.fft.fft2(f) * kh).real

    def step(x: torch.Tensor, eps: list[float], kh: torch.Tensor | None):
        v = torch.randn_like(x)
        h0 = action(x) + 0.5 * v.square().flatten(1).sum(1)
        y, w = x, v
        kicks = [eps[0] / 2] + [(a + c) / 2 for a, c in itertools.pairwise(eps)] + [eps[-1] / 2]
        for kick, drift in zip(kicks[:-1], eps, strict=True):
            w = w - kick * apply(kh, force(y))
            y = y + drift * apply(kh, w)
        w = w - kicks[-1] * apply(kh, force(y))
        h1 = action(y) + 0.5 * w.square().flatten(1).sum(1)
        acc = torch.exp(torch.clamp(h0 - h1, max=0))
        take = torch.rand(b, dtype=x.dtype) < acc
        dq2 = torch.where(take, (charge(y) - charge(x)) ** 2, torch.zeros(b, dtype=x.dtype))
        return torch.where(take[:, None, None, None], torch.remainder(y, TWO_PI), x), acc, dq2

    x = torch.rand(b, 2, size, size, dtype=torch.float64) * TWO_PI
    for _ in range(300):
        x, _, _ = step(x, [0.15] * 8, None)
    palindrome = list(RAMP_B3) + list(RAMP_B3[::-1])
    runs: list[tuple[str, list[float], float | None]] = [
        ("leapfrog, trained ramp", palindrome, None),
        ("leapfrog, ramp x0.9", [e * 0.9 for e in palindrome], None),
        ("leapfrog, uniform (same length)", [sum(palindrome) / 16] * 16, None),
    ]
    for m2 in (8.0, 2.0, 0.5):
        for f in (0.5, 0.7, 0.85, 1.0):
            runs.append((f"fourier m2={m2}, ramp x{f}", [e * f for e in palindrome], m2))
    out = []
    q2 = []
    for name, eps, m2 in runs:
        kh = filt(m2)
        accs, jumps = [], []
        t0 = time.process_time()
        for _ in range(args.trajectories):
            x, a, d2 = step(x, eps, kh)
            accs.append(float(a.mean()))
            jumps.append(float(d2.mean()))
            q2.append(float((charge(x) ** 2).mean()))
        row = {
            "integrator": name,
            "trajectory_length": sum(eps),
            "forces": len(eps) + 1,
            "acceptance": float(np.mean(accs)),
            "dq2": float(np.mean(jumps)),
            "dq2_err": float(np.std(jumps) / math.sqrt(len(jumps))),
            "cpu_s": time.process_time() - t0,
        }
        out.append(row)
        print(
            f"{name:34s} T={row['trajectory_length']:.2f} acc {row['acceptance']:.3f} "
            f"<dQ^2> {row['dq2']:.3f} +- {row['dq2_err']:.3f}",
            flush=True,
        )
    print(f"<Q^2> over all runs {np.mean(q2):.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"beta": beta, "mean_q2": float(np.mean(q2)), "runs": out}, fh, indent=1)


if __name__ == "__main__":
    main()
