"""The ALCF system database: every fact about a cluster that the compiler relies on.

One entry per system (node shape, execution queues, filesystems, module stacks, launcher and
binding rules, rank variables). A change at ALCF is an edit of one entry here; the checks
(`l2hmcc.checks.system`) and the PBS planner (`l2hmcc.pbs`) only read this table.

Sources (state of `FACTS_CHECKED`): `../shared/reference/alcf-pbs.md`, compiled from the ALCF
user guides (docs.alcf.anl.gov, argonne-lcf/user-guides @7d04a3f), argonne-lcf/GettingStarted
and saforem2/ezpz, with its section 5 corrections of the 2026-12-07 review (job arrays need
`-r y`, one job per user in the debug queues, Sunspot's `-hsn0` nodefile names, DAOS without
`-l daos`, Aurora binding clear of oneCCL's worker cores, oneCCL settings for mpiexec only).
Each entry cites the page it comes from. Facts the reference marks uncertain carry ``verified=False`` (or a ``(?)`` in
their note) and produce warnings rather than errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

FACTS_CHECKED = date(2026, 12, 7)
"""When the facts below were last compared with the ALCF user guides."""

Framework = Literal["pytorch", "tensorflow"]
Backend = Literal["none", "ddp", "horovod", "deepspeed"]

TARGETS: dict[str, tuple[Framework, Backend]] = {
    "pytorch": ("pytorch", "none"),
    "pytorch-ddp": ("pytorch", "ddp"),
    "pytorch-horovod": ("pytorch", "horovod"),
    "pytorch-deepspeed": ("pytorch", "deepspeed"),
    "tensorflow": ("tensorflow", "none"),
    "tensorflow-horovod": ("tensorflow", "horovod"),
}
"""Every compiler target and the (framework, distributed backend) it runs."""

MIN_WALLTIME_MIN = 5
"""Every ALCF queue rejects walltimes under five minutes."""

PROXY = "http://proxy.alcf.anl.gov:3128"
NO_PROXY = (
    "admin,polaris-adminvm-01,localhost,*.cm.polaris.alcf.anl.gov,polaris-*,"
    "*.polaris.alcf.anl.gov,*.alcf.anl.gov"
)
"""The suggested no_proxy (UG:polaris/running-jobs, UG:aurora/getting-started-on-aurora)."""


@dataclass(frozen=True)
class Range:
    """An inclusive integer range ``lo..hi``."""

    lo: int
    hi: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.lo <= value <= self.hi

    def __str__(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}–{self.hi}"


def format_minutes(minutes: int) -> str:
    """``90`` → ``"1h30m"``, ``60`` → ``"1h"``, ``10080`` → ``"168h"`` (the spec's own units)."""
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours}h{mins:02d}m"
    return f"{hours}h" if hours else f"{mins}m"


@dataclass(frozen=True)
class ExecQueue:
    """An execution queue: where a job actually runs. Limits are inclusive."""

    name: str
    nodes: Range
    walltime_min: Range

    def fits(self, nodes: int, walltime_min: int) -> bool:
        return nodes in self.nodes and walltime_min in self.walltime_min

    def describe(self) -> str:
        """``2–256 nodes for ≤ 1h``."""
        return f"{self.nodes} nodes for ≤ {format_minutes(self.walltime_min.hi)}"


@dataclass(frozen=True)
class Queue:
    """A queue a job script may name with ``-q``.

    An execution queue lists itself in ``execution``; a routing queue (``prod``) lists the
    execution queues it routes to. A job that fits none of them is accepted by a routing queue and
    then silently dropped, so the checks validate against ``execution``, never the routing limits.
    """

    name: str
    execution: tuple[ExecQueue, ...]
    routing: bool = False
    by_request: bool = False
    rerunnable: bool = False
    """Jobs may be killed and requeued (preemptable): the script asks for ``-r y``."""
    verified: bool = True
    """False where the limits are not public; violations are then warnings."""
    note: str = ""
    job_arrays: bool = True
    """Whether the queue takes PBS job arrays (``#PBS -J``); a sweep compiled for a queue that
    does not gets one job script per point instead (`l2hmcc.sweep.plan_submission`)."""
    job_arrays_note: str = ""
    """Why not, for the sweep's record."""
    one_job_per_user: bool = False
    """At most one job per user running, accruing or queued (held jobs count too): a second
    ``qsub``, even one with ``-W depend=…``, is refused, so a sweep runs its points one after
    another inside a single job (`l2hmcc.sweep.plan_submission`) and a job that continues
    itself (``job { continue = N }``) cannot queue its follow-on there."""

    @property
    def nodes(self) -> Range:
        return Range(
            min(q.nodes.lo for q in self.execution), max(q.nodes.hi for q in self.execution)
        )

    @property
    def walltime_min(self) -> Range:
        return Range(
            min(q.walltime_min.lo for q in self.execution),
            max(q.walltime_min.hi for q in self.execution),
        )

    def route(self, nodes: int, walltime_min: int) -> ExecQueue | None:
        """The execution queue a job of this size lands in, or None if it fits none."""
        return next((q for q in self.execution if q.fits(nodes, walltime_min)), None)

    def max_walltime_for(self, nodes: int) -> int | None:
        """The longest walltime any execution queue allows for ``nodes`` nodes."""
        limits = [q.walltime_min.hi for q in self.execution if nodes in q.nodes]
        return max(limits) if limits else None

    def describe(self) -> str:
        if len(self.execution) == 1:
            return self.execution[0].describe()
        return "; ".join(f"{q.name}: {q.describe()}" for q in self.execution)


def _exec(
    name: str, nodes: tuple[int, int], hours: float, min_minutes: int = MIN_WALLTIME_MIN
) -> ExecQueue:
    return ExecQueue(name, Range(*nodes), Range(min_minutes, round(hours * 60)))


#: The debug queues hold one job per user (running, accruing or queued), so a job array
#: cannot go there; a sweep submits its points' scripts one by one instead. (The rule comes
#: from issue 7; ../shared/reference/alcf-pbs.md does not cover arrays: `qstat -Qf debug`
#: shows a queue's settings.)
_NO_ARRAYS = "a debug queue: one job per user, no job arrays"


def _queue(
    name: str,
    nodes: tuple[int, int],
    hours: float,
    *,
    by_request: bool = False,
    rerunnable: bool = False,
    note: str = "",
    job_arrays: bool = True,
    one_job_per_user: bool = False,
) -> Queue:
    """An execution queue that is submitted to directly."""
    return Queue(
        name,
        (_exec(name, nodes, hours),),
        by_request=by_request,
        rerunnable=rerunnable,
        note=note,
        job_arrays=job_arrays,
        job_arrays_note="" if job_arrays else _NO_ARRAYS,
        one_job_per_user=one_job_per_user,
    )


@dataclass(frozen=True)
class NodeShape:
    """What one compute node offers a job."""

    accelerator: str
    devices_per_node: int
    """GPUs (Polaris) or GPU tiles in FLAT mode (Aurora): the default and the most ranks per
    node l2hmcc places (one rank per device). More would need MPS (Polaris) or several compute
    command streamers per tile (Aurora, ``ZEX_NUMBER_OF_CCS``, up to 48 ranks), which the
    generated jobs do not set up."""
    sockets: int
    cores_per_socket: int
    threads_per_core: int
    reserved_cores: tuple[int, ...] = ()
    """Physical cores the OS keeps (with their hyper-threads): never bind ranks to them."""
    comm_worker_cores: tuple[int, ...] = ()
    """Cores left to the collective library's worker threads (oneCCL's
    ``CCL_WORKER_AFFINITY``): ranks are not bound to them either."""
    device_memory_bytes: int = 0
    """Memory of one device (one rank's share; 0: not a GPU), against which ``check`` holds
    the estimated peak per rank (``l2hmcc.memory``, W360)."""

    @property
    def cores(self) -> int:
        return self.sockets * self.cores_per_socket


@dataclass(frozen=True)
class FrameworkBuild:
    """What a module stack ships for one framework."""

    version: str
    backends: frozenset[str]
    """Distributed backends usable with this build (``none`` is always usable)."""
    dist_backend: str | None = None
    """``torch.distributed`` process-group backend (nccl, xccl, ccl)."""


@dataclass(frozen=True)
class ModuleStack:
    """A pinned set of modules that provides Python and the frameworks.

    ``modules`` are loaded in order after ``module use`` of ``module_paths``; ``activate`` (a
    conda environment) follows. The first module names the stack.
    """

    modules: tuple[str, ...]
    builds: dict[str, FrameworkBuild]
    module_paths: tuple[str, ...] = ("/soft/modulefiles",)
    activate: str | None = None
    note: str = ""
    retiring: str = ""
    """Set when ALCF announced the stack's removal: what to do once it is gone (a warning)."""

    @property
    def name(self) -> str:
        return self.modules[0]


@dataclass(frozen=True)
class System:
    """One machine: everything a job script for it depends on."""

    name: str
    title: str
    """The name as people write it (``Polaris``)."""
    scheduler: Literal["pbs", "local"]
    description: str
    node: NodeShape
    queues: dict[str, Queue] = field(default_factory=dict)
    filesystems: frozenset[str] = frozenset()
    default_filesystems: tuple[str, ...] = ()
    """Requested when the spec names none: home and the project filesystem."""
    deprecated_filesystems: dict[str, str] = field(default_factory=dict)
    """Filesystem name → why it should not be used (a warning, the job may still be rejected)."""
    filesystem_resources: dict[str, str] = field(default_factory=dict)
    """Filesystem → an extra ``-l`` resource it needs (Aurora DAOS: ``daos=daos_user``)."""
    select_system: str | None = None
    """``-l select=N:system=<name>`` where the docs use it."""
    stacks: tuple[ModuleStack, ...] = ()
    """Known module stacks; the first that ships the wanted framework and backend is the default."""
    cpu_bind: Literal["depth", "list", "none"] = "none"
    """``depth``: ``--depth=D --cpu-bind depth``; ``list``: an explicit per-rank core list."""
    cores_per_rank: int = 8
    bind_from_core: int = 0
    """``list`` binding: the first core (counted within each socket) a rank may be bound to."""
    gpu_affinity: Literal["cuda-reversed", "in-app", "none"] = "none"
    """``cuda-reversed``: the script sets CUDA_VISIBLE_DEVICES=3-local_rank (Polaris GPU↔core
    affinity is reversed); ``in-app``: the runtime binds ``xpu:PALS_LOCAL_RANKID`` (Aurora FLAT)."""
    local_rank_var: str = ""
    rank_vars: tuple[str, ...] = ()
    hsn_suffix: str = ""
    """Appended to the first node's HSN host name to form MASTER_ADDR."""
    hsn_host_suffix: str = ""
    """What turns a node's short name into its HSN interface's name (Sunspot: ``-hsn0``). The
    nodefile may hold either (Sunspot's already ends in ``-hsn0``), so the job script strips
    it from the nodefile's name before adding it once."""
    master_port: int = 29500
    env: tuple[tuple[str, str], ...] = ()
    """Exported by every job on this system (values are literal; ``$`` is not expanded)."""
    comm_env: tuple[tuple[str, str], ...] = ()
    """Extra exports for distributed jobs (the collective library's settings)."""
    comm_ld_library_path: tuple[str, ...] = ()
    """Prepended to LD_LIBRARY_PATH for distributed jobs (Polaris: the AWS OFI NCCL plugin)."""
    comm_note: str = ""
    """A comment for the job script next to those settings."""
    deepspeed_launcher_refused: str = ""
    """Why DeepSpeed's own launcher (pdsh over ssh) cannot start this system's ranks; empty
    where it can. The checks refuse ``launcher = deepspeed`` with this reason (E335)."""

    @property
    def is_cluster(self) -> bool:
        return self.scheduler == "pbs"

    def stack_for(self, framework: str, backend: str) -> ModuleStack | None:
        """The default stack that ships ``framework`` with ``backend``."""
        for stack in self.stacks:
            build = stack.builds.get(framework)
            if build is not None and (backend == "none" or backend in build.backends):
                return stack
        return None

    def stack_named(self, module: str) -> ModuleStack | None:
        return next((s for s in self.stacks if module in s.modules), None)

    def resolve_stack(
        self, framework: str, backend: str, modules: Sequence[str]
    ) -> tuple[ModuleStack | None, tuple[str, ...]]:
        """The module stack a job loads, and the spec's modules that are loaded after it.

        A spec module that names a known stack (``conda/2024-04-29``) selects it; one of the
        same family as the default stack's first module (``conda/…``, ``frameworks/…``)
        replaces that module (its builds are assumed like the default's); the rest are extra.
        """
        for m in modules:
            stack = self.stack_named(m)
            if stack is not None:
                return stack, tuple(x for x in modules if x not in stack.modules)
        default = self.stack_for(framework, backend)
        if default is None:
            return None, tuple(modules)
        family = module_family(default.name)
        replacing = [m for m in modules if module_family(m) == family]
        if not replacing:
            return default, tuple(modules)
        custom = ModuleStack(
            modules=(replacing[0], *default.modules[1:]),
            builds=default.builds,
            module_paths=default.module_paths,
            activate=default.activate,
            note=f"chosen by the spec (not in l2hmcc's table; assumed like {default.name})",
        )
        return custom, tuple(m for m in modules if m != replacing[0])

    def fitting_queues(self, nodes: int, walltime_min: int) -> list[tuple[Queue, ExecQueue]]:
        """Every queue whose execution limits take ``nodes`` for ``walltime_min``, in table
        order (the debug queues first)."""
        out = []
        for queue in self.queues.values():
            ex = queue.route(nodes, walltime_min)
            if ex is not None:
                out.append((queue, ex))
        return out

    def default_queue(
        self, nodes: int, walltime_min: int, *, chained: bool = False
    ) -> Queue | None:
        """The queue a job that names none goes to: the first that fits and is open to every
        project without side effects (not by request, not preemptable); for a job that
        submits its own follow-on (``chained``), not one that holds one job per user."""
        for queue, _ in self.fitting_queues(nodes, walltime_min):
            if queue.by_request or queue.rerunnable or (chained and queue.one_job_per_user):
                continue
            return queue
        return None


def module_family(module: str) -> str:
    """``conda/2025-09-25`` → ``conda``; ``mpich/opt/develop-git.6037a7a`` → ``mpich``."""
    return module.split("/", 1)[0]


_FRAMEWORKS_VERSION = re.compile(r"^frameworks/(\d{4})\.(\d+)\.(\d+)")


def torch_dist_backend_for_frameworks(module: str) -> str | None:
    """Aurora/Sunspot ``frameworks/YYYY.M.P``: ``xccl`` from 2025.2.0 on, ``ccl`` before.

    (UG commit 29d91879: frameworks ≥ 2025.2.0 use ``backend="xccl"`` without importing
    ``oneccl_bindings_for_pytorch``; older modules need IPEX + oneCCL bindings and ``ccl``.)
    """
    m = _FRAMEWORKS_VERSION.match(module)
    if m is None:
        return None
    version = tuple(int(x) for x in m.groups())
    return "xccl" if version >= (2025, 2, 0) else "ccl"


# ----------------------------------------------------------------------------------------------
# Polaris: 560 nodes, 1× EPYC 7543P (32 cores) + 4× A100-40GB (UG:polaris/index.md)

_POLARIS_STACKS = (
    ModuleStack(
        modules=("conda/2025-09-25",),
        activate="base",
        builds={
            "pytorch": FrameworkBuild("2.8", frozenset({"ddp", "deepspeed"}), "nccl"),
            "tensorflow": FrameworkBuild("2.21-pre", frozenset()),
        },
        note="default since 2025-10-24: torch 2.8, TF 2.21-pre, DeepSpeed 0.17.6, no Horovod",
    ),
    ModuleStack(
        modules=("conda/2024-04-29",),
        activate="base",
        builds={
            "pytorch": FrameworkBuild("2.3", frozenset({"ddp", "deepspeed", "horovod"}), "nccl"),
            "tensorflow": FrameworkBuild("2.16.1", frozenset({"horovod"})),
        },
        note="older stack, the last one that ships Horovod",
        # Announced for removal (the 2026-12-07 review of the Polaris pages; issue 15). The
        # way on without it is the UG's: a venv on top of the current conda module
        # (UG:polaris/data-science/python.md, `python -m venv --system-site-packages`).
        retiring="`conda/2024-04-29` is announced for removal; once it is gone, load"
        " `conda/2025-09-25`, make a venv on top of it (`python -m venv"
        " --system-site-packages`), install Horovod there (`HOROVOD_WITH_PYTORCH=1 pip"
        " install horovod`, or HOROVOD_WITH_TENSORFLOW) and list its activation in"
        " `job.modules`, or compile for `pytorch-ddp` instead",
    ),
)

POLARIS = System(
    name="polaris",
    title="Polaris",
    scheduler="pbs",
    description="Polaris (NVIDIA A100, PBS Pro)",
    # A100-40GB: 40 GiB of HBM2 per GPU (docs.alcf.anl.gov/polaris/hardware-overview/
    # machine-overview; NVIDIA A100 datasheet)
    node=NodeShape(
        "NVIDIA A100-40GB",
        4,
        sockets=1,
        cores_per_socket=32,
        threads_per_core=2,
        device_memory_bytes=40 * 2**30,
    ),
    queues={
        "debug": _queue("debug", (1, 2), 1, job_arrays=False),
        # "max 1 job running/accruing/queued per-user" (UG:polaris/running-jobs/index.md)
        "debug-scaling": _queue(
            "debug-scaling",
            (1, 10),
            1,
            note="1 job per user",
            job_arrays=False,
            one_job_per_user=True,
        ),
        "prod": Queue(
            "prod",
            (
                _exec("small", (10, 24), 3),
                _exec("medium", (25, 99), 6),
                _exec("large", (100, 496), 24),
            ),
            routing=True,
            note="routing queue; 10 running / 100 queued jobs per project",
        ),
        "preemptable": _queue(
            "preemptable", (1, 10), 72, rerunnable=True, note="jobs are killed by demand jobs"
        ),
        "demand": _queue("demand", (1, 56), 1, by_request=True),
        "capacity": _queue("capacity", (1, 4), 168, note="2 queued, 1 running per user"),
    },
    filesystems=frozenset({"home", "eagle"}),
    default_filesystems=("home", "eagle"),
    deprecated_filesystems={
        "grand": "Grand was retired (removed from the Polaris docs in Sep 2024); valid: home, eagle",
    },
    select_system="polaris",
    stacks=_POLARIS_STACKS,
    cpu_bind="depth",
    cores_per_rank=8,
    gpu_affinity="cuda-reversed",
    local_rank_var="PMI_LOCAL_RANK",
    rank_vars=("PMI_RANK", "PMI_SIZE", "PMI_LOCAL_RANK", "PMI_LOCAL_SIZE"),
    hsn_suffix=".hsn.cm.polaris.alcf.anl.gov",
    master_port=29500,
    env=(
        ("http_proxy", PROXY),
        ("https_proxy", PROXY),
        ("ftp_proxy", PROXY),
        ("HTTP_PROXY", PROXY),
        ("HTTPS_PROXY", PROXY),
        ("no_proxy", NO_PROXY),
        ("TMPDIR", "/tmp"),
    ),
    # UG:polaris/applications-and-libraries/libraries/nccl.md
    comm_env=(
        ("NCCL_NET_GDR_LEVEL", "PHB"),
        ("NCCL_CROSS_NIC", "1"),
        ("NCCL_COLLNET_ENABLE", "1"),
        ("NCCL_NET", "AWS Libfabric"),
        ("FI_CXI_DISABLE_HOST_REGISTER", "1"),
        ("FI_MR_CACHE_MONITOR", "userfaultfd"),
        ("FI_CXI_DEFAULT_CQ_SIZE", "131072"),
    ),
    comm_ld_library_path=(
        "/soft/libraries/aws-ofi-nccl/v1.9.1-aws/lib",
        "/soft/libraries/hwloc/lib/",
    ),
    comm_note="NCCL settings of the Polaris NCCL page; if a job hangs, unset NCCL_NET_GDR_LEVEL,"
    " NCCL_CROSS_NIC, NCCL_COLLNET_ENABLE and NCCL_NET.",
)


# ----------------------------------------------------------------------------------------------
# Aurora: 2× SPR (2×52 cores) + 6 PVC GPUs = 12 tiles; cores 0 and 52 reserved since 2025-03-31

_AURORA_NODE = NodeShape(
    "Intel Data Center GPU Max 1550 (tile)",
    12,
    sockets=2,
    cores_per_socket=52,
    threads_per_core=2,
    reserved_cores=(0, 52),
    # The cores the framework pages leave to oneCCL's workers (`CCL_WORKER_AFFINITY`,
    # UG:aurora/data-science/frameworks/oneCCL.md, pytorch.md).
    comm_worker_cores=(42, 43, 44, 45, 46, 47, 94, 95, 96, 97, 98, 99),
    # Max 1550: 128 GB of HBM2e in two tiles, 64 GiB per tile, one rank per tile in FLAT mode
    # (docs.alcf.anl.gov/aurora/hardware-overview/machine-overview; Intel's product page)
    device_memory_bytes=64 * 2**30,
)

#: The framework pages' binding (UG:aurora/data-science/frameworks/pytorch.md, tensorflow.md):
#: four cores per rank from core 4 of each socket, `list:4-7:…:24-27:56-59:…:76-79`, clear of
#: the reserved cores and of oneCCL's worker cores 42–47 and 94–99. (The generic running-jobs
#: list `1-8:…:41-48:…` overlaps the worker cores.)
_AURORA_CORES_PER_RANK = 4
_AURORA_BIND_FROM_CORE = 4

#: DeepSpeed's own launcher starts ranks with pdsh over ssh, not with PALS mpiexec, so the
#: oneCCL settings for mpiexec (`CCL_PROCESS_LAUNCHER=pmix`, `CCL_ATL_TRANSPORT=mpi`,
#: `CCL_KVS_MODE=mpi`, UG:aurora/data-science/frameworks/oneCCL.md) do not hold there.
_NO_PDSH = (
    "DeepSpeed's launcher starts ranks over ssh (pdsh), not PALS mpiexec, and the oneCCL"
    " settings of the Aurora oneCCL page (CCL_PROCESS_LAUNCHER=pmix, CCL_ATL_TRANSPORT=mpi,"
    " CCL_KVS_MODE=mpi) are for ranks mpiexec starts"
)

_ONECCL_ENV = (
    # oneCCL minimal set, tested to 1024 nodes (UG:aurora/data-science/frameworks/oneCCL.md)
    ("CCL_PROCESS_LAUNCHER", "pmix"),
    ("CCL_ATL_TRANSPORT", "mpi"),
    ("FI_MR_CACHE_MONITOR", "userfaultfd"),
    ("CCL_KVS_MODE", "mpi"),
)

_ONECCL_NOTE = "oneCCL minimal settings of the Aurora oneCCL page (tested to 1024 nodes)."

_AURORA_ENV = (
    ("http_proxy", PROXY),
    ("https_proxy", PROXY),
    ("ftp_proxy", PROXY),
    ("HTTP_PROXY", PROXY),
    ("HTTPS_PROXY", PROXY),
    ("no_proxy", NO_PROXY),
    ("TMPDIR", "/tmp"),
)

AURORA = System(
    name="aurora",
    title="Aurora",
    scheduler="pbs",
    description="Aurora (Intel Max 1550, PBS Pro)",
    node=_AURORA_NODE,
    queues={
        # "Max 1 job running/accruing/queued per-user" (UG:aurora/running-jobs-aurora.md)
        "debug": _queue(
            "debug", (1, 2), 1, note="1 job per user", job_arrays=False, one_job_per_user=True
        ),
        "debug-scaling": _queue(
            "debug-scaling",
            (2, 256),
            1,
            note="1 job per user",
            job_arrays=False,
            one_job_per_user=True,
        ),
        "prod": Queue(
            "prod",
            (
                _exec("small", (256, 1024), 12),
                _exec("medium", (1025, 1999), 18),
                _exec("large", (2000, 10624), 24),
            ),
            routing=True,
            note="routing queue (min 256 nodes since Feb 2026); 10 running / 100 queued per project",
        ),
        "capacity": _queue("capacity", (1, 16), 168, note="5 queued, 2 running per user"),
        "visualization": _queue("visualization", (1, 32), 8, by_request=True),
    },
    filesystems=frozenset({"home", "flare", "daos_user_fs", "daos_perf_fs"}),
    default_filesystems=("home", "flare"),
    deprecated_filesystems={
        "daos_user": "renamed `daos_user_fs`",
        "daos_perf": "renamed `daos_perf_fs`",
    },
    # No extra DAOS resource: `-l daos=daos_user` was dropped from the DAOS page in May 2025;
    # it uses only `-l filesystems=flare:daos_user_fs`
    # (UG:aurora/data-management/daos/daos-overview.md).
    filesystem_resources={},
    select_system=None,
    stacks=(
        ModuleStack(
            modules=("frameworks/2025.3.1",),
            builds={
                "pytorch": FrameworkBuild("2.10.0a0", frozenset({"ddp", "deepspeed"}), "xccl"),
            },
            note="torch 2.10, DeepSpeed 0.18.5; Horovod for PyTorch removed; IPEX deprecated",
        ),
        ModuleStack(
            modules=("tensorflow/2025.2.0", "mpich/opt/develop-git.6037a7a"),
            builds={"tensorflow": FrameworkBuild("2.15.1+itex", frozenset({"horovod"}))},
            note="TF 2.15.1 + ITEX, Intel Optimization for Horovod",
        ),
    ),
    cpu_bind="list",
    cores_per_rank=_AURORA_CORES_PER_RANK,
    bind_from_core=_AURORA_BIND_FROM_CORE,
    gpu_affinity="in-app",
    local_rank_var="PALS_LOCAL_RANKID",
    rank_vars=("PALS_RANKID", "PALS_LOCAL_RANKID", "PALS_LOCAL_SIZE", "PMIX_RANK"),
    hsn_suffix=".hsn.cm.aurora.alcf.anl.gov",
    master_port=2345,
    env=_AURORA_ENV,
    comm_env=_ONECCL_ENV,
    comm_note=_ONECCL_NOTE,
    deepspeed_launcher_refused=_NO_PDSH,
)

# ----------------------------------------------------------------------------------------------
# Sunspot: Aurora's test and development system (public docs removed Jan 2025)

SUNSPOT = System(
    name="sunspot",
    title="Sunspot",
    scheduler="pbs",
    description="Sunspot (Aurora test and development system, PBS Pro)",
    node=_AURORA_NODE,
    queues={
        "workq": Queue(
            "workq",
            (_exec("workq", (1, 128), 24),),
            verified=False,
            note="limits are not public (?): select=36 and 24h jobs were observed; "
            "check with `qstat -Qf workq`",
        ),
    },
    filesystems=frozenset({"home", "tegu"}),
    default_filesystems=("home", "tegu"),
    deprecated_filesystems={
        "gila": "Sunspot's old Lustre filesystem (2023–24 scripts); now `tegu`",
    },
    select_system=None,
    stacks=(
        ModuleStack(
            modules=("frameworks/2026.1.0",),
            builds={"pytorch": FrameworkBuild("(?)", frozenset({"ddp", "deepspeed"}), "xccl")},
            note="a bare `module load frameworks` silently loads nothing on Sunspot: pin it (?)",
        ),
    ),
    cpu_bind="list",
    cores_per_rank=_AURORA_CORES_PER_RANK,
    bind_from_core=_AURORA_BIND_FROM_CORE,
    gpu_affinity="in-app",
    local_rank_var="PALS_LOCAL_RANKID",
    rank_vars=AURORA.rank_vars,
    # The nodefile's names already end in `-hsn0` (ezpz docs: "On Sunspot the hostfile already
    # contains -hsn0 suffixes"; ../shared/reference/alcf-pbs.md, section 5 corrections).
    hsn_suffix=".hsn.cm.sunspot.alcf.anl.gov",
    hsn_host_suffix="-hsn0",
    master_port=2345,
    env=_AURORA_ENV,
    comm_env=_ONECCL_ENV,
    comm_note=_ONECCL_NOTE,
    deepspeed_launcher_refused=_NO_PDSH,
)

# ----------------------------------------------------------------------------------------------
# local: this machine, through the job directory's run-local.sh

LOCAL = System(
    name="local",
    title="local",
    scheduler="local",
    description="this machine (the job directory's run-local.sh)",
    node=NodeShape("cpu", 1, sockets=1, cores_per_socket=1, threads_per_core=1),
    stacks=(
        ModuleStack(
            modules=("(the current Python environment)",),
            module_paths=(),
            builds={
                "pytorch": FrameworkBuild("", frozenset({"ddp", "horovod", "deepspeed"}), "gloo"),
                "tensorflow": FrameworkBuild("", frozenset({"horovod"})),
            },
        ),
    ),
)

SYSTEMS: dict[str, System] = {s.name: s for s in (POLARIS, AURORA, SUNSPOT, LOCAL)}
"""Every system a spec may name in ``job <system> { … }``."""


def get(name: str) -> System | None:
    return SYSTEMS.get(name)


def cpu_bind_list(system: System, ranks_per_node: int) -> list[list[int]]:
    """Per-rank physical cores for an explicit ``--cpu-bind=list:…``.

    Ranks are spread evenly over the sockets (rank r on socket ``r * sockets // ppn``, so ranks
    0–5 sit next to tiles 0–5 on socket 0 with 12 ranks), and each gets ``cores_per_rank``
    consecutive cores (fewer if the socket is crowded) from the socket's ``bind_from_core`` on,
    leaving out the reserved cores and the collective library's worker cores. With 12 ranks on
    Aurora this is the framework pages' ``4-7:8-11:…:24-27:56-59:…:76-79``.
    """
    node = system.node
    per_socket = [0] * node.sockets
    for rank in range(ranks_per_node):
        per_socket[rank * node.sockets // ranks_per_node] += 1
    ranges: list[list[int]] = []
    for socket, count in enumerate(per_socket):
        if count == 0:
            continue
        first = socket * node.cores_per_socket
        avoid = (*node.reserved_cores, *node.comm_worker_cores)
        usable = [
            c
            for c in range(first + system.bind_from_core, first + node.cores_per_socket)
            if c not in avoid
        ]
        width = max(1, min(system.cores_per_rank, len(usable) // count))
        for i in range(count):
            chunk = usable[i * width : (i + 1) * width]
            if not chunk:  # more ranks than cores: share from the start (CCS oversubscription)
                chunk = [usable[(i * width) % len(usable)]]
            ranges.append(chunk)
    return ranges


def format_cpu_list(cores: list[int]) -> str:
    """``[1, 2, 3, 5]`` → ``"1-3,5"`` (mpiexec's list syntax within one rank)."""
    parts: list[str] = []
    start = prev = cores[0]
    for c in [*cores[1:], None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return ",".join(parts)
