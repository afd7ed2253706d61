"""The ALCF system database against the facts in ../shared/reference/alcf-pbs.md."""

from __future__ import annotations

import datetime
import itertools

import pytest

from l2hmcc import systems
from l2hmcc.systems import AURORA, POLARIS, SUNSPOT, SYSTEMS


def test_facts_are_dated() -> None:
    assert isinstance(systems.FACTS_CHECKED, datetime.date)
    assert systems.FACTS_CHECKED.year >= 2026


def test_systems_named_by_the_language() -> None:
    assert set(SYSTEMS) == {"polaris", "aurora", "sunspot", "local"}
    assert [s.name for s in SYSTEMS.values() if s.is_cluster] == ["polaris", "aurora", "sunspot"]


@pytest.mark.parametrize("system", [POLARIS, AURORA, SUNSPOT], ids=lambda s: s.name)
def test_queue_limits_are_well_formed(system: systems.System) -> None:
    for queue in system.queues.values():
        assert queue.execution, queue.name
        for ex in queue.execution:
            assert 1 <= ex.nodes.lo <= ex.nodes.hi
            assert ex.walltime_min.lo == systems.MIN_WALLTIME_MIN
            assert ex.walltime_min.hi >= 60
        # a routing queue's execution queues do not overlap in nodes
        spans = sorted((ex.nodes.lo, ex.nodes.hi) for ex in queue.execution)
        for (_, hi), (lo, _) in itertools.pairwise(spans):
            assert hi < lo


def test_polaris_facts() -> None:
    assert POLARIS.node.devices_per_node == 4
    assert POLARIS.filesystems == {"home", "eagle"}
    assert "grand" in POLARIS.deprecated_filesystems
    assert POLARIS.select_system == "polaris"
    prod = POLARIS.queues["prod"]
    assert prod.routing
    assert [(q.name, str(q.nodes), q.walltime_min.hi) for q in prod.execution] == [
        ("small", "10–24", 180),
        ("medium", "25–99", 360),
        ("large", "100–496", 1440),
    ]
    assert POLARIS.queues["debug"].nodes == systems.Range(1, 2)
    assert POLARIS.queues["debug-scaling"].nodes == systems.Range(1, 10)
    assert POLARIS.queues["preemptable"].rerunnable
    assert POLARIS.queues["preemptable"].walltime_min.hi == 72 * 60
    assert POLARIS.queues["capacity"].walltime_min.hi == 168 * 60
    assert "tiny" not in POLARIS.queues  # removed Feb 2026


def test_aurora_facts() -> None:
    assert AURORA.node.devices_per_node == 12
    assert AURORA.node.reserved_cores == (0, 52)
    assert AURORA.filesystems == {"home", "flare", "daos_user_fs", "daos_perf_fs"}
    prod = AURORA.queues["prod"]
    assert prod.nodes.lo == 256
    assert prod.route(255, 60) is None
    assert (r := prod.route(256, 12 * 60)) is not None and r.name == "small"
    assert prod.route(1024, 12 * 60 + 1) is None
    assert (r := prod.route(1025, 18 * 60)) is not None and r.name == "medium"
    assert (r := prod.route(2000, 24 * 60)) is not None and r.name == "large"
    assert prod.route(10625, 60) is None
    assert AURORA.queues["debug-scaling"].nodes == systems.Range(2, 256)
    assert AURORA.queues["capacity"].nodes == systems.Range(1, 16)
    assert AURORA.master_port == 2345


def test_sunspot_facts() -> None:
    assert SUNSPOT.filesystems == {"home", "tegu"}
    assert "flare" not in SUNSPOT.filesystems
    assert not SUNSPOT.queues["workq"].verified
    assert (
        SUNSPOT.stacks[0].name == "frameworks/2026.1.0"
    )  # pinned: bare `frameworks` loads nothing


def test_horovod_only_in_the_older_polaris_stack() -> None:
    assert POLARIS.stacks[0].name == "conda/2025-09-25"
    assert POLARIS.stack_for("pytorch", "ddp") is POLARIS.stacks[0]
    hvd = POLARIS.stack_for("pytorch", "horovod")
    assert hvd is not None and hvd.name == "conda/2024-04-29"
    tf_hvd = POLARIS.stack_for("tensorflow", "horovod")
    assert tf_hvd is not None and tf_hvd.name == "conda/2024-04-29"
    assert AURORA.stack_for("pytorch", "horovod") is None  # removed in frameworks/2025.3.1
    tf = AURORA.stack_for("tensorflow", "horovod")
    assert tf is not None and tf.modules == ("tensorflow/2025.2.0", "mpich/opt/develop-git.6037a7a")
    assert SUNSPOT.stack_for("tensorflow", "none") is None


@pytest.mark.parametrize(
    ("module", "backend"),
    [
        ("frameworks/2025.3.1", "xccl"),
        ("frameworks/2025.2.0", "xccl"),
        ("frameworks/2024.2.1_u1", "ccl"),
        ("frameworks/2026.1.0", "xccl"),
        ("frameworks", None),
        ("conda/2025-09-25", None),
    ],
)
def test_torch_backend_per_frameworks_version(module: str, backend: str | None) -> None:
    assert systems.torch_dist_backend_for_frameworks(module) == backend


def test_stack_backends_agree_with_the_version_rule() -> None:
    for system in (AURORA, SUNSPOT):
        for stack in system.stacks:
            build = stack.builds.get("pytorch")
            if build is not None:
                assert build.dist_backend == systems.torch_dist_backend_for_frameworks(stack.name)
    assert all(s.builds["pytorch"].dist_backend == "nccl" for s in POLARIS.stacks)


def test_aurora_bind_list_for_12_ranks_is_the_user_guide_one() -> None:
    """The framework pages' list (PyTorch, TensorFlow), not the running-jobs page's
    ``1-8:…:41-48:…``, which overlaps the cores left to oneCCL's workers."""
    cores = systems.cpu_bind_list(AURORA, 12)
    text = ":".join(systems.format_cpu_list(c) for c in cores)
    assert text == "4-7:8-11:12-15:16-19:20-23:24-27:56-59:60-63:64-67:68-71:72-75:76-79"


@pytest.mark.parametrize("ppn", range(1, 49))
def test_aurora_bind_lists_avoid_reserved_cores(ppn: int) -> None:
    cores = systems.cpu_bind_list(AURORA, ppn)
    assert len(cores) == ppn
    flat = [c for rank in cores for c in rank]
    assert not {0, 52} & set(flat)
    assert not set(AURORA.node.comm_worker_cores) & set(flat)  # oneCCL's workers
    assert all(0 <= c < 104 for c in flat)
    # no rank straddles the two sockets
    assert all(len({c // 52 for c in rank}) == 1 for rank in cores)
    # ranks do not share cores
    assert len(flat) == len(set(flat))
    # half the ranks on each socket (the first half next to tiles 0-5)
    on_socket0 = sum(1 for rank in cores if rank[0] < 52)
    assert on_socket0 == (ppn + 1) // 2


def test_format_cpu_list() -> None:
    assert systems.format_cpu_list([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    assert systems.format_cpu_list([4]) == "4"


def test_format_minutes() -> None:
    assert systems.format_minutes(60) == "1h"
    assert systems.format_minutes(90) == "1h30m"
    assert systems.format_minutes(5) == "5m"
    assert systems.format_minutes(168 * 60) == "168h"


def test_the_ir_and_the_target_registry_agree_with_the_database() -> None:
    import typing

    from l2hmcc import ir, targets

    assert set(typing.get_args(ir.SystemName)) == set(SYSTEMS)
    registered = {name: (t.framework, t.backend) for name, t in targets.TARGETS.items()}
    assert registered == systems.TARGETS
