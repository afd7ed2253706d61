"""Who am I in a launched job: rank, local rank, world size and rendezvous (stdlib only).

The same ``train.py`` runs under plain ``python`` (one process), ``torchrun``, DeepSpeed's
launcher, ``horovodrun`` and ``mpiexec`` on ALCF systems. ``detect`` reads whichever launcher's
variables are present, in this order:

==============  ===================  ======================  =========================
launcher        rank                 local rank              world size
==============  ===================  ======================  =========================
torchrun/DS     ``RANK``             ``LOCAL_RANK``          ``WORLD_SIZE``
Horovod         ``HOROVOD_RANK``     ``HOROVOD_LOCAL_RANK``  ``HOROVOD_SIZE``
MPICH (Polaris) ``PMI_RANK``         ``PMI_LOCAL_RANK``      ``PMI_SIZE``
PALS (Aurora)   ``PALS_RANKID``      ``PALS_LOCAL_RANKID``   ``WORLD_SIZE`` / ``PMI_SIZE``
Open MPI        ``OMPI_COMM_WORLD_RANK``  ``OMPI_COMM_WORLD_LOCAL_RANK``  ``OMPI_COMM_WORLD_SIZE``
none            0                    0                       1
==============  ===================  ======================  =========================

PALS does not set a world size (``PALS_SIZE`` is never set); the generated PBS scripts export
``WORLD_SIZE``. ``MASTER_ADDR``/``MASTER_PORT`` come from the environment (the PBS scripts set
them to the first node's high-speed-network name), else ``127.0.0.1`` and a port derived from
the job so that concurrent single-node jobs do not collide.

``export_torch_env`` writes the torchrun-style variables (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) so that
``init_process_group(init_method="env://")`` and ``deepspeed.init_distributed`` work the same
under every launcher.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LaunchEnv", "SingleRankExtras", "detect", "export_torch_env", "free_port"]

#: (launcher, rank, local rank, world size, local world size), first match wins.
_SCHEMES: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("torchrun", "RANK", "LOCAL_RANK", ("WORLD_SIZE",), ("LOCAL_WORLD_SIZE",)),
    ("horovod", "HOROVOD_RANK", "HOROVOD_LOCAL_RANK", ("HOROVOD_SIZE",), ("HOROVOD_LOCAL_SIZE",)),
    ("mpich", "PMI_RANK", "PMI_LOCAL_RANK", ("PMI_SIZE", "WORLD_SIZE"), ("PMI_LOCAL_SIZE",)),
    ("pals", "PALS_RANKID", "PALS_LOCAL_RANKID", ("WORLD_SIZE", "PMI_SIZE"), ("PALS_LOCAL_SIZE",)),
    (
        "openmpi",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_LOCAL_RANK",
        ("OMPI_COMM_WORLD_SIZE",),
        ("OMPI_COMM_WORLD_LOCAL_SIZE",),
    ),
)


@dataclass(frozen=True)
class LaunchEnv:
    """This process's place in the job (see the module docstring)."""

    launcher: str
    """``torchrun``, ``horovod``, ``mpich``, ``pals``, ``openmpi`` or ``none``."""
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _int(env: Mapping[str, str], names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return default


def free_port() -> int:
    """A TCP port that was free a moment ago (for single-process rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def detect(environ: Mapping[str, str] | None = None) -> LaunchEnv:
    """Read the launcher's variables (``os.environ`` by default); single process if none."""
    env = os.environ if environ is None else environ
    for launcher, rank_var, local_var, size_vars, local_size_vars in _SCHEMES:
        rank_text = env.get(rank_var, "").strip()
        if not rank_text.isdigit():
            continue
        rank = int(rank_text)
        world = _int(env, size_vars, 1)
        if rank >= world:
            raise ValueError(
                f"{rank_var}={rank} but the world size is {world} "
                f"(from {' or '.join(size_vars)}): set WORLD_SIZE to the number of ranks"
            )
        local = _int(env, (local_var,), 0)
        port = _int(env, ("MASTER_PORT",), 29500)
        return LaunchEnv(
            launcher=launcher,
            rank=rank,
            local_rank=local,
            world_size=world,
            local_world_size=_int(env, local_size_vars, world),
            master_addr=env.get("MASTER_ADDR", "127.0.0.1") or "127.0.0.1",
            master_port=port,
        )
    port = _int(env, ("MASTER_PORT",), 0) or free_port()
    return LaunchEnv("none", master_addr=env.get("MASTER_ADDR", "127.0.0.1"), master_port=port)


def export_torch_env(launch: LaunchEnv, environ: MutableMapping[str, str] | None = None) -> None:
    """Set ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` from ``launch`` (``os.environ`` by default) for ``env://`` rendezvous."""
    env = os.environ if environ is None else environ
    env["RANK"] = str(launch.rank)
    env["LOCAL_RANK"] = str(launch.local_rank)
    env["WORLD_SIZE"] = str(launch.world_size)
    env["LOCAL_WORLD_SIZE"] = str(launch.local_world_size)
    env["MASTER_ADDR"] = launch.master_addr
    env["MASTER_PORT"] = str(launch.master_port)


class SingleRankExtras:
    """What the job driver asks of a backend beyond training, for one rank: no communicator,
    gathers that return this rank's data, nothing to close or refresh after a resume. Mixed
    into both frameworks' ``SingleProcessBackend``."""

    comm = None

    def close(self) -> None:
        return None

    def all_gather_chains(self, array: Any) -> Any:
        return array

    def gather_objects(self, obj: Any) -> list[Any]:
        return [obj]

    def after_resume(self) -> None:
        return None
