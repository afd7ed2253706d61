"""Sweeps: ``key = sweep(a, b, ...)`` values expanded into one job per point.

The points are the cartesian product of every sweep in the (composed) spec, in spec order,
the first swept key varying slowest. Point ``i`` is the spec with each swept attribute's
value replaced by its chosen argument (`point_tree`), so every span still points at the
spec's text. A point is named after what varies: the experiment, then ``KEYVALUE`` per swept
key (``u1-beta4.0-leapfrog8``), in characters safe for file systems and PBS
(`POINT_NAME_RE`).

`plan_submission` decides how the points are submitted: one PBS job array (``array.pbs``,
``#PBS -J 0-N`` with ``-r y``) when the queue takes arrays (`l2hmcc.systems.Queue.job_arrays`)
and every point asks for the same resources; in a queue that holds one job per user (a second
``qsub`` is refused, even with ``-W depend``), one job (``sequence.pbs``) that runs the
points one after another; otherwise each point's own ``job.pbs``; on ``job local`` the points
run one after the other. ``submit-all.sh`` does either, and ``submit-all.sh --unfinished``
submits again, with ``--resume``, only the points whose ``output/run.json`` does not say
``completed``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from l2hmcc.fmt import format_value
from l2hmcc.lower import SweepSite, replace_values
from l2hmcc.syntax import Call, ListValue, SpecFile, String, Value

ARRAY_SCRIPT = "array.pbs"
SEQUENCE_SCRIPT = "sequence.pbs"
SUBMIT_ALL = "submit-all.sh"

POINT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""Point names: a directory name and a PBS-safe word."""

POINT_NAME_MAX = 100

MAX_POINTS = 1024
"""More points than this is almost certainly a mistake (and a directory of that many jobs)."""


@dataclass(frozen=True)
class Point:
    index: int
    name: str
    choice: tuple[int, ...]
    """Index of the chosen value of each sweep site."""
    values: tuple[tuple[str, str], ...]
    """(key path, value as written) per sweep site."""


def value_label(v: Value) -> str:
    """A value as it appears in a point name: ``4.0``, ``8x8`` for ``[8, 8]``,
    ``linear3.0-5.0`` for ``linear(3.0, 5.0)``, a string without its quotes."""
    if isinstance(v, ListValue):
        return "x".join(value_label(x) for x in v.items)
    if isinstance(v, Call):
        return v.name.text + "-".join(value_label(a) for a in v.args)
    if isinstance(v, String):
        return v.value
    return format_value(v)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _part(key: str, value: str) -> str:
    """``beta4.0``, ``leapfrog8``; a value that starts with a letter gets a ``_``
    (``activation_swish``, ``beta_linear3.0-5.0``)."""
    return f"{key}_{value}" if value[:1].isalpha() else f"{key}{value}"


def key_labels(sites: Sequence[SweepSite]) -> list[str]:
    """The last segment of each swept key path (``beta``), or the whole path with ``_``
    (``train_chains``) where two swept keys share a last segment."""
    last = [s.path.rsplit(".", 1)[-1] for s in sites]
    return [
        s.path.replace(".", "_") if last.count(name) > 1 else name
        for s, name in zip(sites, last, strict=True)
    ]


def points(experiment: str, sites: Sequence[SweepSite]) -> list[Point]:
    """Every point of the sweep, in array-index order, with unique names."""
    labels = key_labels(sites)
    out: list[Point] = []
    taken: set[str] = set()
    ranges = [range(len(s.call.args)) for s in sites]
    for index, choice in enumerate(itertools.product(*ranges)):
        args = [s.call.args[k] for s, k in zip(sites, choice, strict=True)]
        parts = [
            experiment,
            *(_part(lab, value_label(a)) for lab, a in zip(labels, args, strict=True)),
        ]
        name = _safe("-".join(parts)).lstrip("_.-")[:POINT_NAME_MAX].rstrip("_.-") or "point"
        if name in taken:
            name = f"{name[: POINT_NAME_MAX - 8]}-{index}"
        taken.add(name)
        values = tuple((s.path, format_value(a)) for s, a in zip(sites, args, strict=True))
        out.append(Point(index, name, tuple(choice), values))
    return out


def point_tree(tree: SpecFile, sites: Sequence[SweepSite], point: Point) -> SpecFile:
    """The spec of one point: each swept attribute holds the point's value."""
    return replace_values(
        tree, {id(s.attribute): s.call.args[k] for s, k in zip(sites, point.choice, strict=True)}
    )


def find_point(pts: Sequence[Point], key: str) -> Point | None:
    """A point by name or 0-based index."""
    for p in pts:
        if p.name == key or (key.isdigit() and int(key) == p.index):
            return p
    return None


# ---------------------------------------------------------------------------------------------
# Submission


@dataclass(frozen=True)
class SubmissionPlan:
    mode: str
    """``array``, ``sequence``, ``scripts`` or ``local`` (`l2hmcc.manifest.Submission`)."""
    reason: str
    directives: tuple[tuple[str, str], ...] = ()
    """The array's or the sequence's directives (``array`` and ``sequence`` only)."""
    one_at_a_time: bool = False
    """``scripts`` into a one-job-per-user queue: each run of submit-all.sh submits one point."""


def _walltime_min(value: str) -> int:
    """``walltime=HH:MM:SS`` → minutes."""
    hours, minutes, _ = value.split("=", 1)[1].split(":")
    return int(hours) * 60 + int(minutes)


def _sequence(
    queue_title: str, queue_max_min: int, plans: Sequence[tuple[tuple[str, str], ...]]
) -> SubmissionPlan:
    """The points one after another in one job of the queue (which holds one job per user)."""
    is_walltime = [[f == "-l" and v.startswith("walltime=") for f, v in p] for p in plans]
    rest = [
        tuple(d for d, w in zip(p, ws, strict=True) if not w)
        for p, ws in zip(plans, is_walltime, strict=True)
    ]
    if any(r != rest[0] for r in rest[1:]):
        return SubmissionPlan(
            "scripts",
            f"{queue_title} holds one job per user (running or queued: a second qsub is"
            " refused, even with -W depend) and the points ask for different resources, so"
            " each run of submit-all.sh submits the next unfinished point's job.pbs",
            one_at_a_time=True,
        )
    total = sum(
        _walltime_min(v) for p in plans for f, v in p if f == "-l" and v.startswith("walltime=")
    )
    minutes = min(total, queue_max_min)
    from l2hmcc.pbs import format_walltime

    directives = tuple(
        ("-l", f"walltime={format_walltime(minutes)}") if w else d
        for d, w in zip(plans[0], is_walltime[0], strict=True)
    )
    fits = (
        ""
        if total <= queue_max_min
        else (
            f"; their walltimes add up to {total} min, over the queue's {queue_max_min}: run"
            " ./submit-all.sh --unfinished again for the points left"
        )
    )
    return SubmissionPlan(
        "sequence",
        f"{queue_title} holds one job per user (running or queued: a second qsub is refused,"
        f" even with -W depend), so one job ({SEQUENCE_SCRIPT}) runs the {len(plans)} points one"
        f" after another{fits}",
        directives,
    )


def plan_submission(
    system_name: str, plans: Sequence[tuple[tuple[str, str], ...]]
) -> SubmissionPlan:
    """How to submit points whose job scripts have the ``plans`` directives (one tuple of
    ``(flag, value)`` per point, empty for local points)."""
    from l2hmcc import systems

    system = systems.get(system_name)
    if system is None or not system.is_cluster:
        return SubmissionPlan("local", "`job local`: the points run one after the other here")
    if len(plans) < 2:
        return SubmissionPlan("scripts", "one point: its job.pbs is submitted on its own")
    queue_name = next((v for flag, v in plans[0] if flag == "-q"), "")
    queue = system.queues.get(queue_name)
    if queue is not None and queue.one_job_per_user:
        return _sequence(f"{system.title}'s `{queue_name}` queue", queue.walltime_min.hi, plans)
    if any(p != plans[0] for p in plans[1:]):
        return SubmissionPlan(
            "scripts",
            "the points ask for different resources (queue, nodes, walltime, ...); a PBS job"
            " array needs one request for all, so each point's job.pbs is submitted on its own",
        )
    if queue is not None and not queue.job_arrays:
        return SubmissionPlan(
            "scripts",
            f"{system.title}'s `{queue_name}` queue takes no job arrays"
            f" ({queue.job_arrays_note or 'l2hmcc/systems.py'}); each point's job.pbs is"
            " submitted on its own",
        )
    # "There are two required options for job arrays in PBS: -r and -J"
    # (UG:running-jobs/example-job-scripts.md, job array example).
    rerun = () if ("-r", "y") in plans[0] else (("-r", "y"),)
    directives = (*plans[0], *rerun, ("-J", f"0-{len(plans) - 1}"))
    return SubmissionPlan(
        "array",
        f"one PBS job array of {len(plans)} subjobs in the `{queue_name}` queue",
        directives,
    )


def array_script(
    plan: SubmissionPlan, point_names: Sequence[str], *, header: str, axes: str
) -> str:
    """``array.pbs`` (``array`` mode) or ``sequence.pbs`` (``sequence`` mode)."""
    from l2hmcc import render

    return render.render(
        f"sweep/{plan.mode}.pbs.j2",
        plan=plan,
        directive_lines=[f"#PBS {flag} {value}" for flag, value in plan.directives],
        header=header,
        points=point_names,
        axes=axes,
        array_script=ARRAY_SCRIPT,
        sequence_script=SEQUENCE_SCRIPT,
    )


def submit_all_script(
    plan: SubmissionPlan, point_names: Sequence[str], *, header: str, axes: str
) -> str:
    from l2hmcc import render

    return render.render(
        "sweep/submit-all.sh.j2",
        plan=plan,
        header=header,
        points=point_names,
        axes=axes,
        array_script=ARRAY_SCRIPT,
        sequence_script=SEQUENCE_SCRIPT,
    )
