"""Cluster checks: queue limits at every boundary, names, filesystems, ranks, backends."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from l2hmcc import checks, diagnostics, pbs
from l2hmcc.checks import system as system_checks
from l2hmcc.codes import CODES, explain
from l2hmcc.diagnostics import Diagnostic
from l2hmcc.ir import Spec
from l2hmcc.lower import lower
from l2hmcc.source import Source
from l2hmcc.spanmap import SpanMap
from l2hmcc.syntax import parse

LATTICE = "lattice { group = U1  shape = [8, 8]  beta = 2.0 }\n"


@dataclass(frozen=True)
class Target:
    name: str
    framework: str
    backend: str


TARGETS = {
    "pytorch": Target("pytorch", "pytorch", "none"),
    "pytorch-ddp": Target("pytorch-ddp", "pytorch", "ddp"),
    "pytorch-horovod": Target("pytorch-horovod", "pytorch", "horovod"),
    "pytorch-deepspeed": Target("pytorch-deepspeed", "pytorch", "deepspeed"),
    "tensorflow": Target("tensorflow", "tensorflow", "none"),
    "tensorflow-horovod": Target("tensorflow-horovod", "tensorflow", "horovod"),
}


def lower_text(text: str) -> tuple[Spec, SpanMap, Source]:
    source = Source("t.l2h", text)
    parsed = parse(source)
    assert parsed.tree is not None, parsed.diagnostics
    result = lower(parsed.tree, "t.l2h")
    assert result.spec is not None, [d.message for d in result.diagnostics]
    assert not diagnostics.has_errors(result.diagnostics), [d.message for d in result.diagnostics]
    return result.spec, result.spans, source


def run(text: str, target: str | None = None) -> list[Diagnostic]:
    spec, spans, _ = lower_text(text)
    found = checks.check(spec, spans, TARGETS[target] if target else None)
    return [d for d in found if d.code[1] == "3"]  # the cluster checks only


def job(system: str, body: str, backend: str = "ddp") -> str:
    dist = f"distributed {backend} {{}}\n" if backend else ""
    return f"{LATTICE}{dist}job {system} {{\n{body}\n}}\n"


def codes(found: list[Diagnostic]) -> list[str]:
    return [d.code for d in found]


def cluster(system: str, queue: str, nodes: int, minutes: int, fs: str) -> str:
    return job(
        system,
        f'account = "proj"  queue = {queue}  nodes = {nodes}  walltime = {minutes}m\n'
        f"filesystems = [{fs}]",
    )


FS = {"polaris": "home, eagle", "aurora": "home, flare", "sunspot": "home, tegu"}

# Every queue limit from ../shared/reference/alcf-pbs.md (§1, §2, §5), inside, at and just
# outside: (system, queue, nodes, walltime in minutes, the expected cluster codes).
BOUNDARIES = [
    # Polaris
    ("polaris", "debug", 1, 5, []),
    ("polaris", "debug", 1, 4, ["E325"]),
    ("polaris", "debug", 2, 60, []),
    ("polaris", "debug", 3, 60, ["E326"]),
    ("polaris", "debug", 2, 61, ["E327"]),
    ("polaris", "debug-scaling", 10, 60, []),
    ("polaris", "debug-scaling", 11, 60, ["E326"]),
    ("polaris", "debug-scaling", 10, 61, ["E327"]),
    ("polaris", "prod", 9, 60, ["E326"]),
    ("polaris", "prod", 10, 180, []),
    ("polaris", "prod", 10, 181, ["E327"]),
    ("polaris", "prod", 24, 180, []),
    ("polaris", "prod", 24, 181, ["E327"]),
    ("polaris", "prod", 25, 181, []),
    ("polaris", "prod", 25, 360, []),
    ("polaris", "prod", 99, 361, ["E327"]),
    ("polaris", "prod", 100, 361, []),
    ("polaris", "prod", 100, 1440, []),
    ("polaris", "prod", 100, 1441, ["E327"]),
    ("polaris", "prod", 496, 1440, []),
    ("polaris", "prod", 497, 60, ["E326"]),
    ("polaris", "preemptable", 10, 4320, []),
    ("polaris", "preemptable", 11, 60, ["E326"]),
    ("polaris", "preemptable", 10, 4321, ["E327"]),
    ("polaris", "demand", 56, 60, ["W324"]),
    ("polaris", "demand", 57, 60, ["W324", "E326"]),
    ("polaris", "demand", 56, 61, ["W324", "E327"]),
    ("polaris", "capacity", 4, 10080, []),
    ("polaris", "capacity", 5, 60, ["E326"]),
    # Aurora (table of 2026-02-18; capacity of 2026-06-29)
    ("aurora", "debug", 2, 60, []),
    ("aurora", "debug", 3, 60, ["E326"]),
    ("aurora", "debug", 2, 61, ["E327"]),
    ("aurora", "debug-scaling", 1, 60, ["E326"]),
    ("aurora", "debug-scaling", 2, 60, []),
    ("aurora", "debug-scaling", 256, 60, []),
    ("aurora", "debug-scaling", 257, 60, ["E326"]),
    ("aurora", "debug-scaling", 256, 61, ["E327"]),
    ("aurora", "prod", 255, 60, ["E326"]),
    ("aurora", "prod", 256, 720, []),
    ("aurora", "prod", 1024, 720, []),
    ("aurora", "prod", 1024, 721, ["E327"]),
    ("aurora", "prod", 1025, 1080, []),
    ("aurora", "prod", 1999, 1080, []),
    ("aurora", "prod", 1999, 1081, ["E327"]),
    ("aurora", "prod", 2000, 1440, []),
    ("aurora", "prod", 10624, 1440, []),
    ("aurora", "prod", 10624, 1441, ["E327"]),
    ("aurora", "prod", 10625, 60, ["E326"]),
    ("aurora", "capacity", 16, 10080, []),
    ("aurora", "capacity", 17, 60, ["E326"]),
    ("aurora", "visualization", 32, 480, ["W324"]),
    ("aurora", "visualization", 33, 60, ["W324", "E326"]),
    ("aurora", "visualization", 32, 481, ["W324", "E327"]),
    # Sunspot: limits not public, so only warnings
    ("sunspot", "workq", 128, 1440, []),
    ("sunspot", "workq", 129, 60, ["W325"]),
    ("sunspot", "workq", 128, 1441, ["W326"]),
]


@pytest.mark.parametrize(("system", "queue", "nodes", "minutes", "expected"), BOUNDARIES)
def test_queue_boundaries(
    system: str, queue: str, nodes: int, minutes: int, expected: list[str]
) -> None:
    found = run(cluster(system, queue, nodes, minutes, FS[system]))
    assert sorted(codes(found)) == sorted(expected), [d.message for d in found]


def test_prod_on_aurora_explains_which_queue_fits() -> None:
    (d,) = run(cluster("aurora", "prod", 16, 60, FS["aurora"]))
    assert d.code == "E326" and d.is_error
    assert d.message == "`prod` needs ≥ 256 nodes on Aurora, got 16"
    assert d.help is not None
    assert d.help.startswith("`debug-scaling` takes 16 nodes for ≤ 1h; `capacity` takes 16")
    assert (d.primary.span.line, d.primary.message) == (4, "outside 256–10624")
    assert d.secondary[0].message == "queue `prod`"


def test_routed_walltime_names_the_execution_queue() -> None:
    (d,) = run(cluster("polaris", "prod", 20, 360, FS["polaris"]))
    assert d.code == "E327"
    assert d.message == "`prod` routes 20 nodes to `small`, which allows ≤ 3h; got 6h"
    assert d.help is not None and "use ≥ 25 nodes for up to 6h (`medium`)" in d.help
    assert d.primary.span.line == 4


def test_unknown_queue_and_execution_queue_names() -> None:
    (d,) = run(cluster("polaris", "debg", 1, 30, FS["polaris"]))
    assert d.code == "E324" and d.help is not None and d.help.startswith("did you mean `debug`?")
    (d,) = run(cluster("aurora", "small", 300, 60, FS["aurora"]))
    assert d.code == "E324"
    assert d.help is not None and "routing queue `prod`" in d.help
    (d,) = run(cluster("aurora", "tiny", 300, 60, FS["aurora"]))  # removed Feb 2026
    assert d.code == "E324"


def test_no_queue_named() -> None:
    text = job("aurora", 'account = "p"  nodes = 300  walltime = 13h  filesystems = [home, flare]')
    (d,) = run(text)
    assert d.code == "E323"
    ok = job("aurora", 'account = "p"  nodes = 8  walltime = 2h  filesystems = [home, flare]')
    assert run(ok) == []


def test_no_queue_for_a_chained_job_names_the_follow_on() -> None:
    """Polaris 8 nodes for 1 h fits only debug-scaling, which holds one job per user: a job
    that submits its own follow-on (`continue`) cannot go there, and E323 says why."""
    body = 'account = "p"  nodes = 8  walltime = 1h  filesystems = [home, eagle]'
    assert run(job("polaris", body)) == []
    (d,) = run(job("polaris", body + "  continue = 2"))
    assert d.code == "E323" and "follow-on" in d.message and "`continue = 2`" in d.message
    assert d.help is not None and "`debug-scaling`" in d.help and "one job per user" in d.help
    assert "drop `continue`" in d.help
    (plain,) = run(
        job("polaris", 'account = "p"  nodes = 8  walltime = 13h  filesystems = [home, eagle]')
    )
    assert plain.code == "E323" and "follow-on" not in plain.message


def test_filesystems() -> None:
    (d,) = run(cluster("polaris", "debug", 1, 30, "home, eagel"))
    assert d.code == "E322" and d.help is not None and d.help.startswith("did you mean `eagle`?")
    (d,) = run(cluster("polaris", "debug", 1, 30, "home, grand"))
    assert d.code == "W322" and not d.is_error and "Grand" in (d.help or "")
    (d,) = run(cluster("aurora", "debug", 1, 30, "home, eagle"))  # eagle is Polaris only
    assert d.code == "E322"
    (d,) = run(cluster("sunspot", "workq", 1, 30, "home, flare"))  # "flare is not valid here"
    assert d.code == "E322"
    assert codes(run(cluster("aurora", "debug", 1, 30, "home, daos_user"))) == ["W322"]
    text = job("polaris", 'account = "p"  queue = debug  walltime = 30m')
    (d,) = run(text)
    assert d.code == "W321" and "home:eagle" in d.message


def test_account_walltime_and_names() -> None:
    (d,) = run(job("polaris", "queue = debug  walltime = 30m  filesystems = [home, eagle]"))
    assert d.code == "E320" and d.primary.span.line == 3  # the job block
    (d,) = run(job("polaris", 'account = "p"  queue = debug  filesystems = [home, eagle]'))
    assert d.code == "W323"
    base = "queue = debug  walltime = 30m  filesystems = [home, eagle]  "
    (d,) = run(job("polaris", base + 'account = "my project"'))
    assert d.code == "E321"
    (d,) = run(job("polaris", base + 'account = "p"  name = "#PBS -q prod"'))
    assert d.code == "E321" and "#PBS -q prod" in d.message
    (d,) = run(job("polaris", base + 'account = "p"  name = "a_really_long_job_name"'))
    assert d.code == "W320" and "a_really_long_j" in d.primary.message


def test_ranks_modules_env_launcher() -> None:
    base = 'account = "p"  queue = debug  walltime = 30m  filesystems = [home, eagle]\n'
    (d,) = run(job("polaris", base + "ranks_per_node = 8"))
    assert d.code == "E328" and "4 GPUs" in d.message
    (d,) = run(job("aurora", base.replace("eagle", "flare") + "ranks_per_node = 13"))
    assert d.code == "E328" and "12 GPU tiles" in d.message
    assert run(job("aurora", base.replace("eagle", "flare") + "ranks_per_node = 12")) == []
    (d,) = run(job("polaris", base + 'modules = ["ok/1", "bad name"]'))
    assert d.code == "E329" and d.primary.span.col == 20  # the second item
    found = run(job("polaris", base + 'env { A = "x\\ny"  B = "tab\\there"  C = "$(ok) `ok`" }'))
    assert codes(found) == ["E330", "E330"]
    text = f"{LATTICE}distributed ddp {{ launcher = torchrun }}\njob polaris {{ {base} }}\n"
    (d,) = run(text)
    assert d.code == "E331" and d.primary.span.line == 2


@pytest.mark.parametrize(
    ("system", "backend", "modules", "target", "expected"),
    [
        # loads conda/2024-04-29, announced for removal: W327 says what to do without it
        ("polaris", "horovod", "", "pytorch-horovod", ["W327"]),
        ("polaris", "horovod", '"conda/2025-09-25"', "pytorch-horovod", ["E333"]),
        ("polaris", "horovod", '"conda/2024-04-29"', "tensorflow-horovod", ["W327"]),
        ("polaris", "deepspeed", "", "pytorch-deepspeed", []),
        ("aurora", "horovod", "", "pytorch-horovod", ["E332"]),
        ("aurora", "horovod", "", "tensorflow-horovod", []),
        ("aurora", "ddp", '"frameworks/2024.2.1_u1"', "pytorch-ddp", []),
        ("sunspot", "", "", "tensorflow", ["E332"]),
        ("sunspot", "deepspeed", "", "pytorch-deepspeed", []),
        ("local", "horovod", "", "pytorch-horovod", []),
    ],
)
def test_backend_available_on_the_system(
    system: str, backend: str, modules: str, target: str, expected: list[str]
) -> None:
    fs = {"polaris": "home, eagle", "aurora": "home, flare", "sunspot": "home, tegu", "local": ""}
    queue = "workq" if system == "sunspot" else "debug"
    body = f'account = "p"  queue = {queue}  walltime = 30m  filesystems = [{fs[system]}]'
    if system == "local":
        body = "nodes = 1"
    if modules:
        body += f"  modules = [{modules}]"
    found = run(job(system, body, backend), target)
    assert codes(found) == expected, [d.message for d in found]


def test_local_jobs_are_not_checked_against_clusters() -> None:
    assert run(job("local", "nodes = 1  ranks_per_node = 64")) == []


def test_every_code_is_registered_and_explained() -> None:
    for code in system_checks.CODES_USED:
        assert code in CODES, code
        assert explain(code)


# --- a checked spec always renders ---------------------------------------------------------

NASTY = [
    "plain",
    "it's",
    'say \\"hi\\"',
    "$HOME",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a; touch PWNED",
    "#PBS -q prod",
    "line\\nbreak",
    "tab\\there",
    "back\\\\slash",
    "unicodé λ",
    "",
]


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("field", ["account", "name", "modules", "env"])
def test_checks_and_planner_agree(field: str, value: str) -> None:
    base = {
        "account": '"proj"',
        "name": None,
        "modules": None,
        "env": None,
    }
    base[field] = f'"{value}"'
    body = "queue = debug  walltime = 30m  filesystems = [home, eagle]\n"
    body += f"account = {base['account']}\n"
    if base["name"]:
        body += f"name = {base['name']}\n"
    if base["modules"]:
        body += f"modules = [{base['modules']}]\n"
    if base["env"]:
        body += f"env {{ V = {base['env']} }}\n"
    spec, spans, _ = lower_text(job("polaris", body))
    found = checks.check(spec, spans, TARGETS["pytorch-ddp"])
    refused = diagnostics.has_errors(found)
    try:
        pbs.render_pbs(spec, target="pytorch-ddp", spec_name="t.l2h", spec_sha256="0" * 64)
    except pbs.PlanError:
        assert refused, f"the planner refused {field}={value!r} but no check did"
    else:
        assert not refused, f"a check refused {field}={value!r} that renders"


def test_local_jobs_run_on_one_machine() -> None:
    (d,) = run(job("local", "nodes = 2"))
    assert d.code == "E334" and d.primary.span.line == 4
