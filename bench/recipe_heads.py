"""What the trained `network local` v-networks of a generated job output (docs/recipe.md).

Loads the job's last checkpoint and evaluates each layer's v-network on the checkpoint's chains
(the training chains at that step).  Per layer it prints the mean and the spread over all links
and chains of the heads ``s``, ``q`` and ``t``, and the correlation of each head with the
link's plaquettes (``cos θ_P(n) + cos θ_P(n − 1̂)`` for the direction-0 links: low values are
plaquettes near the barrier θ_P = π).  A spread small against the mean says the network acts as a
per-layer constant (a tuned integrator), not as a function of the surrounding plaquettes.

Run it with the job's own runtime, from anywhere::

    .venv/bin/python bench/recipe_heads.py JOB_DIR [--json OUT.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch


def heads(job: Path) -> list[dict[str, Any]]:
    sys.path.insert(0, str(job))
    spec = importlib.import_module("train")
    networks = importlib.import_module("l2hmcc_runtime.pt.networks")
    groups = importlib.import_module("l2hmcc_runtime.pt.groups")
    lattice = importlib.import_module("l2hmcc_runtime.pt.lattice")
    last = sorted((job / "output" / "checkpoints").glob("ckpt-*.pt"))[-1]
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    state, links = ckpt["model"], ckpt["chains"].float()
    group = groups.group_by_name(spec.LATTICE.group)
    plaq = lattice.plaquette_field(links, 0, 1)
    near = (torch.cos(plaq) + torch.cos(torch.roll(plaq, 1, 2))).flatten().numpy()
    rows = []
    for k in range(spec.DYNAMICS.leapfrog):
        net = networks.LocalNet(group, spec.LATTICE.shape, spec.NETWORK, dtype=torch.float32)
        prefix = f"vnets.{k}."
        net.load_state_dict({n[len(prefix) :]: v for n, v in state.items() if n.startswith(prefix)})
        with torch.no_grad():
            s, t, q = net(links)
        row: dict[str, Any] = {"layer": k, "step": int(ckpt["step"])}
        for name, h in (("s", s), ("q", q), ("t", t)):
            if h is None:
                continue
            v = h[:, 0].flatten().numpy()
            row[name] = {
                "mean": float(h.mean()),
                "std": float(h.std()),
                "corr_plaquettes": float(np.corrcoef(near, v)[0, 1]),
            }
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("job", type=Path)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = heads(a.job.resolve())
    for r in rows:
        cells = [
            f"{h} {r[h]['mean']:+.3f} ± {r[h]['std']:.3f} (corr {r[h]['corr_plaquettes']:+.2f})"
            for h in "sqt"
            if h in r
        ]
        print(f"layer {r['layer']}: " + "  ".join(cells))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
