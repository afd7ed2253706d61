"""PBS Pro job scripts: a pure planner (IR → `PbsPlan`) and the renderer (`render_pbs`).

Every decision is made here in Python: the directive values, module stack, environment,
rank counts, CPU/GPU binding and the launch line. The template ``templates/pbs/job.pbs.j2``
only substitutes, and every string that came from the spec crosses into the script through
``shquote``. Values that end up inside ``#PBS`` directives cannot be quoted (PBS parses those
lines itself), so the planner accepts only a safe character set there and raises `PlanError`
otherwise; the checks in `l2hmcc.checks.system` report the same problems with spans first, so
a checked spec never reaches that error.

Facts (queues, binding, modules …) come from `l2hmcc.systems` only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from l2hmcc import ir, systems
from l2hmcc.bundle import Bundle
from l2hmcc.systems import System

JOB_SCRIPT = "job.pbs"
"""The file name of the job script in every job directory (for `local` too)."""

LOCAL_LAUNCHER = "run-local.sh"
"""The job directory's local launcher (written by the targets): ``./run-local.sh [--nproc N]``."""

JOB_NAME_MAX = 15
"""qstat shows 15 characters of a job name; PBS Pro itself accepts up to 236."""

ACCOUNT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""ALCF project names (``-A``): letters, digits, ``_``, ``.``, ``-``."""
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
"""PBS Pro job names: alphanumerics, ``_ . + -``; we also require an alphanumeric first."""
MODULE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+/@:-]*$")
"""Module names as Lmod spells them (``conda/2025-09-25``, ``mpich/opt/develop-git.6037a7a``)."""
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIRECTIVE_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:=+-]+$")


class PlanError(ValueError):
    """The spec cannot become a job script (a check should have said so first)."""


@dataclass(frozen=True)
class JobRequest:
    """What the planner needs from a spec: the ``job`` and ``distributed`` blocks, flattened.

    `request_from_spec` builds it from the IR; tests build it directly.
    """

    system: str
    experiment: str = "l2hmc"
    account: str | None = None
    queue: str | None = None
    nodes: int = 1
    walltime_min: int | None = None
    filesystems: tuple[str, ...] = ()
    ranks_per_node: int | None = None
    modules: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    preemptable: bool = False
    name: str | None = None
    launcher: Literal["mpiexec", "deepspeed"] = "mpiexec"
    continue_jobs: int = 0
    """``job { continue = N }``: follow-on submissions after a walltime stop."""


@dataclass(frozen=True)
class Export:
    """``export NAME=VALUE`` with a literal value (shquoted by the template)."""

    name: str
    value: str

    @property
    def looks_like_expansion(self) -> bool:
        """The literal value holds ``$`` or a backtick: shellcheck's SC2016 would ask whether
        it was meant to expand. It was not (spec values are literal), so the line is annotated."""
        return "$" in self.value or "`" in self.value


@dataclass(frozen=True)
class Launch:
    """How ranks are started. ``argv`` words are literal (shquoted by the template)."""

    kind: Literal["mpiexec", "deepspeed", "local"]
    argv: tuple[str, ...] = ()
    """mpiexec options after the rank counts (CPU binding); ``--envall --hostfile`` follow."""
    wrapper: tuple[str, ...] = ()
    """A per-rank command prefix (Polaris GPU affinity), literal words."""
    wrapper_note: tuple[str, ...] = ()
    deepspeed_env: tuple[str, ...] = ()
    """Variables copied into ``.deepspeed_env`` for the ranks DeepSpeed starts over ssh."""


@dataclass(frozen=True)
class Chain:
    """A job that continues itself: stopped ``stop_after_s`` seconds into its walltime (or by
    the scheduler's SIGTERM), it checkpoints and submits a follow-on that runs ``--resume``
    once it has ended (``qsub -W depend=afterany:$PBS_JOBID``), at most ``max_follow_ons``
    times in all. Nothing is resubmitted when training finished or the run failed."""

    max_follow_ons: int
    stop_after_s: int


def stop_after_s(walltime_min: int) -> int:
    """When a continuing job stops itself: a tenth of the walltime before its end (at least a
    minute, at most five), so the checkpoint and the follow-on's ``qsub`` finish before PBS
    kills the job at its walltime."""
    walltime_s = walltime_min * 60
    return walltime_s - max(60, min(300, walltime_s // 10))


@dataclass(frozen=True)
class PbsPlan:
    """Every decision of a job script, ready to substitute."""

    system: str
    target: str
    header: str
    notes: tuple[str, ...]
    """Comment lines explaining the choices (no spec strings in them)."""
    directives: tuple[tuple[str, str], ...] = ()
    """``(flag, value)`` → ``#PBS flag value``, in order."""
    module_paths: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    conda_env: str | None = None
    env: tuple[Export, ...] = ()
    """System and communication settings, then the spec's ``env``; literal values."""
    ld_library_path: tuple[str, ...] = ()
    """Prepended to LD_LIBRARY_PATH."""
    ranks_per_node: int = 1
    distributed: bool = False
    master_addr_suffix: str = ""
    master_host_suffix: str = ""
    """Stripped from the nodefile's first name, then put back once (Sunspot ``-hsn0``)."""
    master_port: int = 0
    omp_threads: int = 0
    """OMP_NUM_THREADS when the environment sets none: the cores bound to each rank."""
    chain: Chain | None = None
    """Walltime chaining (``job { continue = N }``)."""
    launch: Launch = field(default_factory=lambda: Launch("local"))
    script_args: tuple[str, ...] = ()
    """Arguments before the user's "$@" (local: ``--nproc N``)."""

    @property
    def is_cluster(self) -> bool:
        return self.launch.kind != "local"

    @property
    def directive_lines(self) -> list[str]:
        return [
            f"#PBS {flag} {value}" if value else f"#PBS {flag}" for flag, value in self.directives
        ]


def format_walltime(minutes: int) -> str:
    """Minutes → PBS ``HH:MM:SS`` (hours may exceed 24: ``168:00:00``)."""
    if minutes <= 0:
        raise PlanError(f"walltime must be positive, got {minutes} min")
    hours, mins = divmod(minutes, 60)
    return f"{hours:02d}:{mins:02d}:00"


def sanitize_job_name(text: str) -> str:
    """A PBS ``-N`` value from any text: disallowed characters become ``_``, the first character
    is alphanumeric, at most `JOB_NAME_MAX` characters (what qstat shows)."""
    name = re.sub(r"[^A-Za-z0-9_.+-]", "_", text)
    name = name.lstrip("_.+-")
    name = name[:JOB_NAME_MAX].rstrip("_.+-") or "l2hmc"
    return name


def _directive_value(what: str, value: str) -> str:
    if not _DIRECTIVE_VALUE_RE.match(value):
        raise PlanError(f"{what} {value!r} cannot appear in a #PBS directive")
    return value


def _check_words(what: str, values: Sequence[str], pattern: re.Pattern[str]) -> None:
    for v in values:
        if not pattern.match(v):
            raise PlanError(f"{what} {v!r} is not a valid name")


def _check_env(env: Sequence[tuple[str, str]]) -> None:
    for key, value in env:
        if not ENV_NAME_RE.match(key):
            raise PlanError(f"environment variable name {key!r} is not a shell identifier")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise PlanError(f"environment variable {key} has a control character in its value")


def dist_backend(system: System, stack: systems.ModuleStack | None) -> str | None:
    """The torch.distributed backend for PyTorch jobs on this system and stack."""
    if stack is None:
        return None
    by_version = systems.torch_dist_backend_for_frameworks(stack.name)
    if by_version is not None:
        return by_version
    build = stack.builds.get("pytorch")
    return build.dist_backend if build is not None else None


def plan_request(req: JobRequest, *, target: str, spec_name: str, spec_sha256: str) -> PbsPlan:
    """Decide everything about the job script for ``req`` and ``target``."""
    if target not in systems.TARGETS:
        raise PlanError(f"unknown target {target!r}; known: {', '.join(systems.TARGETS)}")
    framework, backend = systems.TARGETS[target]
    system = systems.get(req.system)
    if system is None:
        raise PlanError(f"unknown system {req.system!r}")
    from l2hmcc import render  # Jinja: only when a script is made (the checks import this module)

    header = render.generated_header(spec_name, spec_sha256)
    _check_words("module", req.modules, MODULE_RE)
    _check_env(req.env)
    distributed = backend != "none"
    ranks_per_node = req.ranks_per_node or (
        system.node.devices_per_node if distributed and system.is_cluster else 1
    )
    if not distributed and req.nodes * ranks_per_node > 1:
        raise PlanError(f"target {target} runs one process, not {req.nodes}×{ranks_per_node}")
    if not system.is_cluster:
        nproc = req.nodes * ranks_per_node
        return PbsPlan(
            system=system.name,
            target=target,
            header=header,
            notes=(
                f"Runs the job on this machine through ./{LOCAL_LAUNCHER} ({nproc} process"
                f"{'es' if nproc > 1 else ''}); the cluster systems get a PBS script here.",
            ),
            env=tuple(Export(k, v) for k, v in req.env),
            ranks_per_node=nproc,
            distributed=distributed,
            launch=Launch("local"),
            script_args=("--nproc", str(nproc)) if nproc > 1 else (),
        )
    return _plan_cluster(req, system, target, framework, backend, ranks_per_node, header)


def _plan_cluster(
    req: JobRequest,
    system: System,
    target: str,
    framework: str,
    backend: str,
    ranks_per_node: int,
    header: str,
) -> PbsPlan:
    if req.account is None or req.walltime_min is None:
        raise PlanError(f"{system.name} jobs need job.account and job.walltime")
    if req.queue is None:
        queue = system.default_queue(req.nodes, req.walltime_min, chained=req.continue_jobs > 0)
        if queue is None:
            raise PlanError(f"no queue on {system.name} takes {req.nodes} nodes")
    else:
        queue = system.queues.get(req.queue)
        if queue is None:
            raise PlanError(f"unknown queue {req.queue!r} on {system.name}")
    filesystems = req.filesystems or system.default_filesystems
    for fs in filesystems:
        if fs not in system.filesystems and fs not in system.deprecated_filesystems:
            raise PlanError(f"unknown filesystem {fs!r} on {system.name}")
    if ranks_per_node > system.node.devices_per_node:
        raise PlanError(f"{ranks_per_node} ranks per node exceed {system.name}'s node")
    account = req.account
    if not ACCOUNT_RE.match(account):
        raise PlanError(f"account {account!r} cannot appear in a #PBS directive")
    if req.name is not None:
        if not JOB_NAME_RE.match(req.name):
            raise PlanError(f"job name {req.name!r} cannot appear in a #PBS directive")
        job_name = req.name[:JOB_NAME_MAX]
    else:
        job_name = sanitize_job_name(req.experiment)

    stack, extra_modules = system.resolve_stack(framework, backend, req.modules)
    if stack is None:
        raise PlanError(f"no module stack on {system.name} ships {framework} with {backend}")
    build = stack.builds.get(framework)
    if build is None or (backend != "none" and backend not in build.backends):
        raise PlanError(f"{stack.name} on {system.name} has no {framework} {backend}")

    select = (
        f"{req.nodes}:system={system.select_system}" if system.select_system else str(req.nodes)
    )
    directives: list[tuple[str, str]] = [
        ("-A", _directive_value("account", account)),
        ("-q", _directive_value("queue", queue.name)),
        ("-l", _directive_value("select", f"select={select}")),
        ("-l", "place=scatter"),
        ("-l", f"walltime={format_walltime(req.walltime_min)}"),
        ("-l", _directive_value("filesystems", "filesystems=" + ":".join(filesystems))),
        *(
            ("-l", res)
            for res in dict.fromkeys(
                system.filesystem_resources[fs]
                for fs in filesystems
                if fs in system.filesystem_resources
            )
        ),
        ("-N", _directive_value("job name", job_name)),
        ("-j", "oe"),
        ("-k", "doe"),
    ]
    if req.preemptable or queue.rerunnable:
        directives.append(("-r", "y"))
    if req.launcher == "deepspeed" and backend == "deepspeed" and system.deepspeed_launcher_refused:
        raise PlanError(f"launcher deepspeed on {system.name}: {system.deepspeed_launcher_refused}")
    chain = None
    if req.continue_jobs > 0:
        if queue.one_job_per_user:
            raise PlanError(f"queue {queue.name} holds one job per user: no follow-on can queue")
        chain = Chain(req.continue_jobs, stop_after_s(req.walltime_min))

    notes = [
        f"{system.description}: {req.nodes} node{'s' * (req.nodes != 1)} × {ranks_per_node} "
        f"rank{'s' * (ranks_per_node != 1)}, queue {queue.name}"
        + (
            f" (routed to {r.name})"
            if queue.routing and (r := queue.route(req.nodes, req.walltime_min))
            else ""
        )
        + ".",
        f"Module stack {stack.name}: {stack.note}."
        if stack.note
        else f"Module stack {stack.name}.",
        "Submit from the job directory: outputs (output/, the PBS log) are written there.",
        f"System facts checked {systems.FACTS_CHECKED.isoformat()} (l2hmcc/systems.py).",
    ]

    env: list[tuple[str, str]] = list(system.env)
    ld_library_path: tuple[str, ...] = ()
    torch_backend = dist_backend(system, stack) if framework == "pytorch" else None
    distributed = backend != "none"
    if distributed:
        env.extend(system.comm_env)
        ld_library_path = system.comm_ld_library_path
        if system.comm_note:
            notes.append(system.comm_note)
        if torch_backend is not None:
            env.append(("L2HMCC_DIST_BACKEND", torch_backend))
    cpu_lists: list[list[int]] = []
    if system.cpu_bind == "list":
        cpu_lists = systems.cpu_bind_list(system, ranks_per_node)
        if backend == "horovod":
            env.append(("HOROVOD_THREAD_AFFINITY", ",".join(str(c[0]) for c in cpu_lists)))
        omp_threads = min(len(c) for c in cpu_lists)
    elif system.cpu_bind == "depth":
        omp_threads = system.cores_per_rank
    else:
        omp_threads = max(1, system.node.cores // ranks_per_node)
    env.extend(req.env)

    launch = _launch(system, req.launcher if backend == "deepspeed" else "mpiexec", cpu_lists, env)
    return PbsPlan(
        system=system.name,
        target=target,
        header=header,
        notes=tuple(notes),
        directives=tuple(directives),
        module_paths=stack.module_paths,
        modules=(*stack.modules, *extra_modules),
        conda_env=stack.activate,
        env=tuple(Export(k, v) for k, v in env),
        ld_library_path=ld_library_path,
        ranks_per_node=ranks_per_node,
        distributed=distributed,
        master_addr_suffix=system.hsn_suffix if distributed else "",
        master_host_suffix=system.hsn_host_suffix if distributed else "",
        master_port=system.master_port if distributed else 0,
        omp_threads=omp_threads,
        chain=chain,
        launch=launch,
    )


def _launch(
    system: System, launcher: str, cpu_lists: list[list[int]], env: list[tuple[str, str]]
) -> Launch:
    if launcher == "deepspeed":
        names = ("PATH", "LD_LIBRARY_PATH", *dict.fromkeys(k for k, _ in env))
        return Launch("deepspeed", deepspeed_env=tuple(names))
    argv: list[str] = []
    wrapper: tuple[str, ...] = ()
    note: tuple[str, ...] = ()
    if system.cpu_bind == "depth":
        argv += [f"--depth={system.cores_per_rank}", "--cpu-bind", "depth"]
    elif system.cpu_bind == "list":
        bind = ":".join(systems.format_cpu_list(c) for c in cpu_lists)
        argv.append(f"--cpu-bind=verbose,list:{bind}")
    if system.gpu_affinity == "cuda-reversed":
        last = system.node.devices_per_node - 1
        n = system.node.devices_per_node
        wrapper = (
            "bash",
            "-c",
            f'export CUDA_VISIBLE_DEVICES=$(({last} - {system.local_rank_var} % {n})); exec "$@"',
            "gpu-affinity",
        )
        note = (
            f"GPU affinity is reversed on {system.title}: local rank r runs on cores "
            f"{system.cores_per_rank}r…{system.cores_per_rank}r+{system.cores_per_rank - 1},",
            f"next to GPU {last}-r, so it sees only that GPU (ALCF set_affinity_gpu_polaris.sh).",
        )
    return Launch("mpiexec", argv=tuple(argv), wrapper=wrapper, wrapper_note=note)


# ----------------------------------------------------------------------------------------------
# From the IR


def cluster_launcher(spec: ir.Spec) -> str:
    """``mpiexec`` or ``deepspeed``: how a cluster job starts its ranks (``auto`` → mpiexec).
    Other launchers (torchrun, horovodrun) are for local runs; the checks refuse them here."""
    launcher = getattr(spec.distributed, "launcher", "auto")
    return "mpiexec" if launcher == "auto" else str(launcher)


def request_from_spec(spec: ir.Spec) -> JobRequest:
    """Flatten the IR's ``job`` and ``distributed`` blocks into a `JobRequest`."""
    job = spec.job
    launcher = cluster_launcher(spec)
    if launcher not in ("mpiexec", "deepspeed"):
        raise PlanError(f"launcher {launcher!r} cannot start ranks in a PBS job")
    return JobRequest(
        system=job.system,
        experiment=spec.experiment.name,
        account=job.account,
        queue=job.queue,
        nodes=job.nodes,
        walltime_min=job.walltime_min,
        filesystems=tuple(job.filesystems),
        ranks_per_node=job.ranks_per_node,
        modules=tuple(job.modules),
        env=tuple(job.env.items()),
        preemptable=job.preemptable,
        name=job.name,
        launcher="deepspeed" if launcher == "deepspeed" else "mpiexec",
        continue_jobs=job.continue_jobs,
    )


def plan(spec: ir.Spec, *, target: str, spec_name: str, spec_sha256: str) -> PbsPlan:
    """IR → `PbsPlan` (pure: no I/O)."""
    return plan_request(
        request_from_spec(spec), target=target, spec_name=spec_name, spec_sha256=spec_sha256
    )


def render_plan(p: PbsPlan) -> str:
    """The script text: a PBS job script for cluster systems, a bash script for `local`."""
    template = "pbs/job.pbs.j2" if p.is_cluster else "pbs/local.sh.j2"
    from l2hmcc import render

    return render.render(template, plan=p, job_script=JOB_SCRIPT, local_launcher=LOCAL_LAUNCHER)


def render_pbs(spec: ir.Spec, *, target: str, spec_name: str, spec_sha256: str) -> str:
    """The text of ``job.pbs`` for ``spec`` compiled for ``target``."""
    return render_plan(plan(spec, target=target, spec_name=spec_name, spec_sha256=spec_sha256))


def add_job_script(
    bundle: Bundle, spec: ir.Spec, *, target: str, spec_name: str, spec_sha256: str
) -> None:
    """Add the executable ``job.pbs`` to a target's bundle (what every target calls)."""
    text = render_pbs(spec, target=target, spec_name=spec_name, spec_sha256=spec_sha256)
    bundle.add(JOB_SCRIPT, text, executable=True)


# ----------------------------------------------------------------------------------------------
# --submit


@dataclass(frozen=True)
class SubmitResult:
    submitted: bool
    message: str
    job_id: str | None = None
    attempted: bool = False
    """qsub ran (and, if not ``submitted``, failed)."""


def submit(job_dir: Path, system: str, *, env: Mapping[str, str] | None = None) -> SubmitResult:
    """Run ``qsub job.pbs`` in ``job_dir`` when qsub exists; otherwise say what to do.

    qsub runs in the job directory, so PBS_O_WORKDIR (where the script changes to and where
    PBS writes its log) is the job directory.
    """
    script = job_dir / JOB_SCRIPT
    sys_ = systems.get(system)
    if sys_ is None or not sys_.is_cluster:
        return SubmitResult(
            False,
            f"`job {system}` is not a PBS system; run the job here: "
            f"`cd {job_dir} && ./{JOB_SCRIPT}`",
        )
    if not script.is_file():
        return SubmitResult(False, f"{script} does not exist; the target wrote no job script")
    path = env.get("PATH") if env is not None else None
    qsub = shutil.which("qsub", path=path)
    if qsub is None and Path("/opt/pbs/bin/qsub").is_file():  # Sunspot over plain ssh
        qsub = "/opt/pbs/bin/qsub"
    if qsub is None:
        return SubmitResult(
            False,
            f"qsub is not on PATH here, so the job was not submitted. Copy {job_dir} to a "
            f"{sys_.title} login node (into your project directory, not $HOME) and run "
            f"`cd {job_dir.name} && qsub {JOB_SCRIPT}` there.",
        )
    proc = subprocess.run(
        [qsub, script.name],
        cwd=job_dir,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        return SubmitResult(
            False, f"qsub failed (exit {proc.returncode}): {detail}", attempted=True
        )
    job_id = proc.stdout.strip()
    return SubmitResult(True, f"submitted {job_id}", job_id, attempted=True)
