"""Cluster checks: the `job` block against the ALCF system database (`l2hmcc.systems`).

A script that qsub rejects, or that the `prod` routing queue accepts and then silently drops,
costs a day; these checks say so at compile time, with the span of the offending value and a
help that names what would fit. Limits are those of the *execution* queues.

Every string that reaches a `#PBS` directive (account, job name) or a `module load` line is
held to the character set the planner (`l2hmcc.pbs`) accepts, so a checked spec always
renders. Codes: E320–E336 and W320–W328 (explanations in `l2hmcc.codes.CODES`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from l2hmcc import systems
from l2hmcc.diagnostics import Diagnostic, Label, error
from l2hmcc.ir import Spec
from l2hmcc.spanmap import SpanMap
from l2hmcc.systems import Queue, System, format_minutes

if TYPE_CHECKING:
    from l2hmcc.checks import TargetFacts

CODES_USED = (
    *(f"E{n}" for n in range(320, 337)),
    *(f"W{n}" for n in range(320, 329)),
)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`? " if close else ""


def _names(items: Iterable[str]) -> str:
    return ", ".join(f"`{x}`" for x in sorted(items))


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in text)


def _upto(minutes: int) -> str:
    return f"≤ {format_minutes(minutes)}"


def _show(text: str) -> str:
    """A spec string as shown in a message: as written, or escaped if it is not printable."""
    return text if text.isprintable() else repr(text)[1:-1]


def _fits_help(system: System, nodes: int, walltime_min: int, *, exclude: str = "") -> str:
    """The queues that would take this job, then those that take its node count for less time
    (open queues before by-request ones); all queues if none takes the node count."""
    queues = [q for q in system.queues.values() if q.name != exclude and nodes in q.nodes]
    queues.sort(key=lambda q: (q.by_request, q.route(nodes, walltime_min) is None))
    parts = []
    for q in queues[:3]:
        limit = q.max_walltime_for(nodes)
        assert limit is not None
        extra = " (by request only)" if q.by_request else ""
        parts.append(f"`{q.name}` takes {nodes} nodes for {_upto(limit)}{extra}")
    if parts:
        return "; ".join(parts)
    return f"queues on {system.title}: " + "; ".join(
        f"`{q.name}` {q.describe()}" for q in system.queues.values()
    )


def check_system(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    """Every cluster check that needs only the spec."""
    system = systems.get(spec.job.system)
    if system is None:
        return []
    if not system.is_cluster:
        # run-local.sh loads the same modules and exports the same env as job.pbs would
        return (
            _local(spec, spans)
            + _modules(spec, spans)
            + _env(spec, spans)
            + _continue_local(spec, spans)
        )
    found: list[Diagnostic] = []
    found += _account(spec, spans)
    found += _job_name(spec, spans)
    found += _filesystems(spec, spans, system)
    found += _queue_and_limits(spec, spans, system)
    found += _ranks_per_node(spec, spans, system)
    found += _modules(spec, spans)
    found += _env(spec, spans)
    found += _launcher(spec, spans, system)
    found += _continue(spec, spans, system)
    return found


def _local(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    if spec.job.nodes == 1:
        return []
    return [
        error(
            "E334",
            f"`job local` runs on this machine, not on {spec.job.nodes} nodes",
            spans.value("job.nodes"),
            "one machine",
            help="use `nodes = 1` and `ranks_per_node = N` for N local processes",
        )
    ]


# --- account and job name -----------------------------------------------------------------


def _account(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    from l2hmcc import pbs  # imported where needed: `check` stays light

    account = spec.job.account
    system = spec.job.system
    if account is None:
        return [
            error(
                "E320",
                f"`job {system}` needs an account (the ALCF project to charge)",
                spans.key("job"),
                "no `account`",
                help='add `account = "YourProject"` to the job block (PBS -A)',
            )
        ]
    if not pbs.ACCOUNT_RE.match(account):
        return [
            error(
                "E321",
                f"account `{_show(account)}` cannot appear in a #PBS directive",
                spans.value("job.account"),
                "not a project name",
                help="ALCF project names use letters, digits, `_`, `.` and `-` (≤ 64)",
            )
        ]
    return []


def _job_name(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    from l2hmcc import pbs  # imported where needed: `check` stays light

    name = spec.job.name
    if name is None:
        return []
    if not pbs.JOB_NAME_RE.match(name):
        return [
            error(
                "E321",
                f"job name `{_show(name)}` cannot appear in a #PBS directive",
                spans.value("job.name"),
                "not a PBS job name",
                help="PBS job names use letters, digits, `_`, `.`, `+` and `-`, starting with"
                f" a letter or digit, e.g. `{pbs.sanitize_job_name(name)}`",
            )
        ]
    if len(name) > pbs.JOB_NAME_MAX:
        return [
            error(
                "W320",
                f"job name `{name}` is {len(name)} characters; qstat shows {pbs.JOB_NAME_MAX}",
                spans.value("job.name"),
                f"cut to `{name[: pbs.JOB_NAME_MAX]}`",
                help=f"the script uses `-N {name[: pbs.JOB_NAME_MAX]}`; pick a shorter name to"
                " choose what qstat shows",
            )
        ]
    return []


# --- filesystems ----------------------------------------------------------------------------


def _filesystems(spec: Spec, spans: SpanMap, system: System) -> list[Diagnostic]:
    found = []
    if not spec.job.filesystems:
        return [
            error(
                "W321",
                f"no filesystems given; the job asks for `{':'.join(system.default_filesystems)}`",
                spans.key("job"),
                "no `filesystems`",
                help="PBS needs `-l filesystems=…` on ALCF systems; name the ones the job reads"
                f" and writes, e.g. `filesystems = [{', '.join(system.default_filesystems)}]`",
            )
        ]
    for i, fs in enumerate(spec.job.filesystems):
        span = spans.value(f"job.filesystems.{i}")
        if fs in system.deprecated_filesystems:
            found.append(
                error(
                    "W322",
                    f"filesystem `{fs}` is deprecated on {system.title}",
                    span,
                    "deprecated",
                    help=system.deprecated_filesystems[fs],
                )
            )
        elif fs not in system.filesystems:
            found.append(
                error(
                    "E322",
                    f"`{fs}` is not a filesystem of {system.title}",
                    span,
                    "unknown filesystem",
                    help=f"{_did_you_mean(fs, system.filesystems)}valid on {system.title}: "
                    f"{_names(system.filesystems)}",
                )
            )
    return found


# --- queue, nodes, walltime -------------------------------------------------------------------


def _no_queue(spec: Spec, spans: SpanMap, system: System) -> Diagnostic:
    """E323: no queue takes the job; for a chained job (``continue``) whose only fitting
    queues hold one job per user, say that it is the follow-on they refuse."""
    job = spec.job
    nodes, minutes = job.nodes, job.walltime_min
    what = f"{nodes} node{'s' * (nodes != 1)} for {format_minutes(minutes)}"
    single = system.default_queue(nodes, minutes) if job.continue_jobs else None
    if single is None:
        return error(
            "E323",
            f"no queue on {system.title} takes {what}",
            spans.value("job.nodes"),
            "no queue fits",
            help=_fits_help(system, nodes, minutes),
        )
    return error(
        "E323",
        f"no queue on {system.title} takes {what} with a follow-on job "
        f"(`continue = {job.continue_jobs}`)",
        spans.value("job.nodes"),
        "no queue fits a chained job",
        secondary=[Label(spans.value("job.continue_jobs"), "submits a follow-on")],
        help=f"`{single.name}` takes {what} but holds one job per user, and the follow-on is"
        " submitted while this job still runs; name another queue with `queue = …` ("
        + _fits_help(system, nodes, minutes, exclude=single.name)
        + "), change `nodes` or `walltime`, or drop `continue`",
    )


def _queue_and_limits(spec: Spec, spans: SpanMap, system: System) -> list[Diagnostic]:
    job = spec.job
    nodes, minutes = job.nodes, job.walltime_min
    found: list[Diagnostic] = []
    if not spans.written("job.walltime_min"):
        found.append(
            error(
                "W323",
                f"no walltime given; the job asks for {format_minutes(minutes)}",
                spans.key("job"),
                "no `walltime`",
                help="PBS needs `-l walltime=…` on ALCF systems; set e.g. `walltime = 1h`",
            )
        )
    if minutes < systems.MIN_WALLTIME_MIN:
        found.append(
            error(
                "E325",
                f"walltime {format_minutes(minutes)} is below ALCF's minimum of "
                f"{systems.MIN_WALLTIME_MIN} minutes",
                spans.value("job.walltime_min"),
                "too short",
                help=f"use `walltime = {systems.MIN_WALLTIME_MIN}m` or more",
            )
        )
        return found
    if job.queue is None:
        if system.default_queue(nodes, minutes, chained=job.continue_jobs > 0) is None:
            found.append(_no_queue(spec, spans, system))
        return found
    queue = system.queues.get(job.queue)
    if queue is None:
        return [*found, _unknown_queue(job.queue, spans, system)]
    if queue.by_request:
        found.append(
            error(
                "W324",
                f"queue `{queue.name}` on {system.title} is by request only",
                spans.value("job.queue"),
                "by request",
                help="ALCF support must grant the project access first",
            )
        )
    found += _limits(queue, nodes, minutes, spans, system)
    return found


def _unknown_queue(name: str, spans: SpanMap, system: System) -> Diagnostic:
    routed_by = [
        q for q in system.queues.values() if q.routing and name in {e.name for e in q.execution}
    ]
    if routed_by:
        help = (
            f"`{name}` is an execution queue behind the routing queue `{routed_by[0].name}`;"
            f" submit to `queue = {routed_by[0].name}`"
        )
    else:
        help = (
            f"{_did_you_mean(name, system.queues)}queues on {system.title}: {_names(system.queues)}"
        )
    return error(
        "E324",
        f"`{name}` is not a queue on {system.title}",
        spans.value("job.queue"),
        "unknown queue",
        help=help,
    )


def _limits(
    queue: Queue, nodes: int, minutes: int, spans: SpanMap, system: System
) -> list[Diagnostic]:
    if queue.route(nodes, minutes) is not None:
        return []
    code_nodes, code_time = ("W325", "W326") if not queue.verified else ("E326", "E327")
    unverified = f" ({queue.note})" if not queue.verified else ""
    queue_span = Label(spans.value("job.queue"), f"queue `{queue.name}`")
    if nodes not in queue.nodes:
        if nodes < queue.nodes.lo:
            what = f"`{queue.name}` needs ≥ {queue.nodes.lo} nodes on {system.title}"
        else:
            what = f"`{queue.name}` takes at most {queue.nodes.hi} nodes on {system.title}"
        return [
            error(
                code_nodes,
                f"{what}, got {nodes}{unverified}",
                spans.value("job.nodes"),
                f"outside {queue.nodes}",
                secondary=[queue_span],
                help=_fits_help(system, nodes, minutes, exclude=queue.name),
            )
        ]
    limit = queue.max_walltime_for(nodes)
    assert limit is not None
    if queue.routing:
        ex = next(e for e in queue.execution if nodes in e.nodes)
        what = (
            f"`{queue.name}` routes {nodes} nodes to `{ex.name}`, which allows {_upto(limit)};"
            f" got {format_minutes(minutes)}"
        )
        longer = [e for e in queue.execution if e.walltime_min.hi >= minutes]
        hint = (
            f"use ≥ {longer[0].nodes.lo} nodes for up to {format_minutes(longer[0].walltime_min.hi)}"
            f" (`{longer[0].name}`), or shorten the walltime"
            if longer
            else "shorten the walltime"
        )
        other = _fits_help(system, nodes, minutes, exclude=queue.name)
        help = f"{hint}; {other}"
    else:
        what = (
            f"`{queue.name}` allows {_upto(limit)} on {system.title}, got {format_minutes(minutes)}"
        )
        help = _fits_help(system, nodes, minutes, exclude=queue.name)
    return [
        error(
            code_time,
            what + unverified,
            spans.value("job.walltime_min"),
            f"over {format_minutes(limit)}",
            secondary=[queue_span],
            help=help,
        )
    ]


# --- ranks, modules, env, launcher ------------------------------------------------------------


def _ranks_per_node(spec: Spec, spans: SpanMap, system: System) -> list[Diagnostic]:
    rpn = spec.job.ranks_per_node
    devices = system.node.devices_per_node
    if rpn is None or rpn <= devices:
        return []
    unit = "GPU tiles" if "tile" in system.node.accelerator else "GPUs"
    return [
        error(
            "E328",
            f"{rpn} ranks per node, but {system.title} nodes have {devices} {unit}",
            spans.value("job.ranks_per_node"),
            f"more than {devices}",
            help=f"l2hmcc places one rank per device: use `ranks_per_node = {devices}` (or"
            " leave it out) and more nodes",
        )
    ]


def _modules(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    from l2hmcc import pbs  # imported where needed: `check` stays light

    return [
        error(
            "E329",
            f"`{_show(module)}` is not a module name",
            spans.value(f"job.modules.{i}"),
            "not a module",
            help="module names use letters, digits and `_ . + / @ : -`, e.g. `conda/2024-04-29`",
        )
        for i, module in enumerate(spec.job.modules)
        if not pbs.MODULE_RE.match(module)
    ]


def _env(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    return [
        error(
            "E330",
            f"the value of `{key}` contains a control character (newline, tab, …)",
            spans.value(f"job.env.{key}"),
            "control character",
            help="environment values for job scripts are single-line text",
        )
        for key, value in spec.job.env.items()
        if _has_control(value)
    ]


def _launcher(spec: Spec, spans: SpanMap, system: System) -> list[Diagnostic]:
    from l2hmcc import pbs  # imported where needed: `check` stays light

    launcher = pbs.cluster_launcher(spec)
    if launcher == "deepspeed" and system.deepspeed_launcher_refused:
        return [
            error(
                "E335",
                f"`launcher = deepspeed` cannot start ranks on {system.title}",
                spans.value("distributed.launcher"),
                "pdsh launcher",
                help=f"{system.deepspeed_launcher_refused}; use `launcher = mpiexec` (or"
                " `auto`): the ranks start with mpiexec and call deepspeed.init_distributed",
            )
        ]
    if launcher in ("mpiexec", "deepspeed"):
        return []
    return [
        error(
            "E331",
            f"launcher `{launcher}` cannot start ranks in a {system.title} PBS job",
            spans.value("distributed.launcher"),
            "local launcher",
            help="on ALCF systems ranks start with mpiexec: use `launcher = mpiexec` or `auto`",
        )
    ]


def _continue(spec: Spec, spans: SpanMap, system: System) -> list[Diagnostic]:
    """E336: a job that continues itself cannot queue its follow-on in a one-job queue."""
    job = spec.job
    if job.continue_jobs == 0:
        return []
    queue = system.queues.get(job.queue) if job.queue else None
    if queue is None and job.queue is None:
        queue = system.default_queue(job.nodes, job.walltime_min, chained=True)
    if queue is None or not queue.one_job_per_user:
        return []
    others = [
        q.name
        for q, _ in system.fitting_queues(job.nodes, job.walltime_min)
        if not q.one_job_per_user and not q.by_request
    ]
    return [
        error(
            "E336",
            f"`continue = {job.continue_jobs}` in {system.title}'s `{queue.name}` queue, which"
            " holds one job per user",
            spans.value("job.continue_jobs"),
            "follow-on refused",
            secondary=[Label(spans.value("job.queue"), "one job per user")]
            if spans.written("job.queue")
            else [],
            help="the follow-on is submitted while this job still runs, and qsub refuses a"
            " second job in this queue; "
            + (f"use queue {_names(others)}" if others else "drop `continue`")
            + " (or resubmit by hand with `qsub -v L2HMCC_RESUME=1 job.pbs`)",
        )
    ]


def _continue_local(spec: Spec, spans: SpanMap) -> list[Diagnostic]:
    if spec.job.continue_jobs == 0:
        return []
    return [
        error(
            "W328",
            "`continue` has no effect on `job local`: nothing stops the run at a walltime",
            spans.value("job.continue_jobs"),
            "ignored",
            help="continue a stopped local run with `./run-local.sh --resume`",
        )
    ]


# --- with the target ----------------------------------------------------------------------------


def check_system_target(spec: Spec, spans: SpanMap, target: TargetFacts) -> list[Diagnostic]:
    """E332/E333: the target's framework and backend exist in the system's module stacks."""
    system = systems.get(spec.job.system)
    if system is None or not system.is_cluster:
        return []
    framework, backend = target.framework, target.backend
    if framework not in ("pytorch", "tensorflow"):
        return []
    stack, _ = system.resolve_stack(framework, backend, spec.job.modules)
    what = framework if backend == "none" else f"{framework} with {backend}"
    if stack is None:
        others = [s for s in system.stacks if framework in s.builds]
        help = (
            f"{system.title}'s stacks ship {framework} with: "
            + "; ".join(
                f"`{s.name}`: {', '.join(sorted(s.builds[framework].backends)) or 'no backend'}"
                for s in others
            )
            if others
            else f"no {framework} module stack is known on {system.title}; "
            f"systems with one: {_names(n for n, s in systems.SYSTEMS.items() if s.is_cluster and s.stack_for(framework, backend))}"
        )
        return [
            error(
                "E332",
                f"{system.title} has no module stack with {what} (target `{target.name}`)",
                spans.key("job"),
                f"job on {system.title}",
                help=help,
            )
        ]
    build = stack.builds.get(framework)
    if build is None or (backend != "none" and backend not in build.backends):
        ships = [
            s.name
            for s in system.stacks
            if s.builds.get(framework) and backend in s.builds[framework].backends
        ]
        return [
            error(
                "E333",
                f"module `{stack.name}` has no {what} (target `{target.name}`)",
                spans.value("job.modules"),
                f"no {backend}",
                help=(
                    f'{what} ships in `{ships[0]}`: use `modules = ["{ships[0]}"]`'
                    + _retiring_help(system, ships[0])
                    if ships
                    else f"no stack on {system.title} ships {what}"
                ),
            )
        ]
    if stack.retiring and backend != "none" and not _others_ship(system, stack, framework, backend):
        return [
            error(
                "W327",
                f"the only {system.title} stack with {what}, `{stack.name}`, is announced for"
                " removal",
                spans.value("job.modules") if spans.written("job.modules") else spans.key("job"),
                "retiring module",
                help=stack.retiring,
            )
        ]
    return []


def _others_ship(system: System, stack: systems.ModuleStack, framework: str, backend: str) -> bool:
    return any(
        s is not stack and s.builds.get(framework) and backend in s.builds[framework].backends
        for s in system.stacks
    )


def _retiring_help(system: System, module: str) -> str:
    stack = system.stack_named(module)
    return f"; {stack.retiring}" if stack is not None and stack.retiring else ""
