"""Rank, local rank, world size and rendezvous from every launcher's variables."""

from __future__ import annotations

import pytest

from l2hmcc.runtime.common.launch import LaunchEnv, detect, export_torch_env


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"},
            ("torchrun", 3, 1, 4, 2),
        ),
        (
            {"HOROVOD_RANK": "1", "HOROVOD_LOCAL_RANK": "1", "HOROVOD_SIZE": "2"},
            ("horovod", 1, 1, 2, 2),
        ),
        (
            {"PMI_RANK": "5", "PMI_LOCAL_RANK": "1", "PMI_SIZE": "8", "PMI_LOCAL_SIZE": "4"},
            ("mpich", 5, 1, 8, 4),
        ),
        # PALS sets no world size: the PBS script exports WORLD_SIZE
        (
            {"PALS_RANKID": "13", "PALS_LOCAL_RANKID": "1", "WORLD_SIZE": "24"},
            ("pals", 13, 1, 24, 24),
        ),
        (
            {
                "OMPI_COMM_WORLD_RANK": "2",
                "OMPI_COMM_WORLD_LOCAL_RANK": "0",
                "OMPI_COMM_WORLD_SIZE": "3",
            },
            ("openmpi", 2, 0, 3, 3),
        ),
        # torchrun's variables win over MPI's (torchrun inside an mpiexec allocation)
        (
            {"RANK": "0", "WORLD_SIZE": "2", "PMI_RANK": "7", "PMI_SIZE": "8"},
            ("torchrun", 0, 0, 2, 2),
        ),
    ],
)
def test_launchers(environ: dict[str, str], expected: tuple[object, ...]) -> None:
    env = detect({**environ, "MASTER_ADDR": "x1.hsn", "MASTER_PORT": "2345"})
    got = (env.launcher, env.rank, env.local_rank, env.world_size, env.local_world_size)
    assert got == expected
    assert (env.master_addr, env.master_port) == ("x1.hsn", 2345)


def test_single_process_defaults() -> None:
    env = detect({})
    assert (env.launcher, env.rank, env.world_size, env.is_main, env.distributed) == (
        "none",
        0,
        1,
        True,
        False,
    )
    assert env.master_addr == "127.0.0.1" and 0 < env.master_port < 65536


def test_rank_outside_the_world_is_an_error() -> None:
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        detect({"PALS_RANKID": "3"})  # no WORLD_SIZE: world of 1


def test_export_torch_env_round_trips() -> None:
    launch = LaunchEnv(
        "pals",
        rank=5,
        local_rank=1,
        world_size=24,
        local_world_size=12,
        master_addr="x4.hsn",
        master_port=2345,
    )
    environ: dict[str, str] = {}
    export_torch_env(launch, environ)
    assert environ == {
        "RANK": "5",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "24",
        "LOCAL_WORLD_SIZE": "12",
        "MASTER_ADDR": "x4.hsn",
        "MASTER_PORT": "2345",
    }
    again = detect(environ)
    assert (again.rank, again.local_rank, again.world_size) == (5, 1, 24)
