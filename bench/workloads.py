"""The seed's L2HMC workloads, shared by ``bench_l2hmc_pt.py``,
``bench_tf.py`` and the report (framework-free: the runtime's common configs only).

* ``u1``: U(1) 16×16, 128 chains, 8 layers, merged directions, β = 4, ε₀ = 0.1, compact x
  update, the seed's default network (``seed_u1_network``, 60.2 M parameters);
* ``su3``: SU(3) 4⁴, 8 chains, 2 layers, ε₀ = 0.01, one hidden layer of 256, tanh, β = 6,
  loss plaquette 0.1.

``hmc_eps``/``hmc_steps`` are the fixed HMC trajectory ``bench_tf.py`` times beside them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from l2hmcc.runtime.common.config import (
    DynamicsConfig,
    LossConfig,
    NetworkConfig,
    seed_u1_network,
)


@dataclass(frozen=True)
class Workload:
    group: str
    shape: tuple[int, ...]
    beta: float
    chains: int
    dynamics: DynamicsConfig
    network: NetworkConfig
    loss: LossConfig
    hmc_eps: float = 0.1
    hmc_steps: int = 10


WORKLOADS = {
    "u1": Workload(
        "U1",
        (16, 16),
        4.0,
        128,
        DynamicsConfig(leapfrog=8, step_size=0.1, directions="merged", x_update="compact"),
        seed_u1_network(),
        LossConfig(plaquette=1.0, charge=0.0),
        0.125,
        16,
    ),
    "su3": Workload(
        "SU3",
        (4, 4, 4, 4),
        6.0,
        8,
        DynamicsConfig(leapfrog=2, step_size=0.01, directions="merged"),
        NetworkConfig(hidden=(256,), activation="tanh"),
        LossConfig(plaquette=0.1, charge=0.0),
        0.1,
        10,
    ),
}
