"""Times the seed (PyPI ``l2hmc`` 0.13.0) on its default U(1) workload, on command, for the
interleaved side-by-side section of ``bench/bench_cost.py``. Runs in the seed's own venv
(``bench/setup-seed.sh``); imports nothing from this project.

The workload is the seed's default configuration (its ``conf/*/default.yaml``) at the size
of ``specs/u1-seed.l2h``: U(1) 16×16, 128 chains, 8 leapfrog layers, ε = 0.1, merged
directions, separate networks, split x-networks; conv filters [4, 8, 16, 32], kernel 4,
pool 2; dense [16, 16, 16, 16], ReLU, batch norm, no dropout; net weights 1; its default loss
(mixed, charge weight 0.01). A *train step* is its trainer's ``train_step`` (forward, loss,
backward, Adam step; no clipping: its default ``clip_norm`` is 0); a *trajectory* its
``eval_step`` (forward in eval mode, loss), both without the trainer's logging and
tracking (which needs aim, wandb and Horovod). One thread.

Protocol (one JSON object per line on stdout): first ``{"ready": ..., "parameters": N}``;
then for every line ``train K`` or ``traj K`` on stdin, ``{"cpu_s": [...], "wall_s": [...]}``
for K calls; ``quit`` (or end of input) ends.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import sys
import time

import torch
from l2hmc.configs import (
    ConvolutionConfig,
    DynamicsConfig,
    InputSpec,
    LossConfig,
    NetworkConfig,
)
from l2hmc.dynamics.pytorch.dynamics import Dynamics
from l2hmc.group.u1.pytorch.group import U1Phase
from l2hmc.lattice.u1.pytorch.lattice import LatticeU1
from l2hmc.loss.pytorch.loss import LatticeLoss
from l2hmc.network.pytorch.network import NetworkFactory

CHAINS, SHAPE, LAYERS, BETA = 128, [16, 16], 8, 4.0


def build() -> tuple[Dynamics, LatticeLoss, torch.optim.Optimizer, U1Phase, DynamicsConfig]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    dyn_cfg = DynamicsConfig(
        nchains=CHAINS,
        group="U1",
        latvolume=SHAPE,
        nleapfrog=LAYERS,
        eps=0.1,
        eps_hmc=None,
        use_ncp=True,
        verbose=True,
        eps_fixed=False,
        use_split_xnets=True,
        use_separate_networks=True,
        merge_directions=True,
    )
    xdim = dyn_cfg.xdim
    spec = InputSpec(
        xshape=tuple(dyn_cfg.xshape),
        xnet={"x": [xdim, 2], "v": [xdim]},
        vnet={"x": [xdim], "v": [xdim]},
    )
    factory = NetworkFactory(
        input_spec=spec,
        network_config=NetworkConfig(
            units=[16, 16, 16, 16], activation_fn="relu", dropout_prob=0.0, use_batch_norm=True
        ),
        conv_config=ConvolutionConfig(filters=[4, 8, 16, 32], sizes=[4, 4, 4, 4], pool=[2] * 4),
    )
    lattice = LatticeU1(CHAINS, SHAPE)
    dynamics = Dynamics(config=dyn_cfg, potential_fn=lattice.action, network_factory=factory)
    loss = LatticeLoss(
        lattice=lattice,
        loss_config=LossConfig(
            use_mixed_loss=True, charge_weight=0.01, plaq_weight=0.0, aux_weight=0.0
        ),
    )
    optimizer = torch.optim.Adam(dynamics.parameters(), lr=1e-4)
    return dynamics, loss, optimizer, U1Phase(), dyn_cfg


def main() -> int:
    dynamics, loss_fn, optimizer, g, cfg = build()
    beta = torch.tensor(BETA)
    state = {"x": g.random(list(cfg.xshape)).flatten(1)}

    def train_step() -> None:
        x = g.compat_proj(state["x"].reshape(cfg.xshape))
        x.requires_grad_(True)
        dynamics.train()
        optimizer.zero_grad()
        xout, metrics = dynamics((x, beta))
        xprop = metrics.pop("mc_states").proposed.x
        loss = loss_fn(x_init=x, x_prop=xprop, acc=metrics["acc"])
        loss.backward()
        optimizer.step()
        state["x"] = xout.detach()

    def trajectory() -> None:
        dynamics.eval()
        x = state["x"]
        xout, metrics = dynamics((x, beta))
        xprop = metrics.pop("mc_states").proposed.x
        loss_fn(x_init=x, x_prop=xprop, acc=metrics["acc"]).item()
        state["x"] = xout.detach()

    units = {"train": train_step, "traj": trajectory}
    params = sum(p.numel() for p in dynamics.parameters() if p.requires_grad)
    print(json.dumps({"ready": True, "parameters": params}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        fn, n = units[words[0]], int(words[1])
        cpu, wall = [], []
        for _ in range(n):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(json.dumps({"cpu_s": cpu, "wall_s": wall}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
