"""PBS job scripts: goldens, lint, the directive block, and running them under bash.

The scripts are run for real under bash in a temporary job directory. Only the cluster's own
commands are stand-ins, defined here as bash functions (``module``, ``conda``, ``mpiexec``,
``deepspeed``) or as tiny executables (``python``, ``qsub``): they record what they were asked
to do, and ``mpiexec`` starts the ranks one after another with the PALS/PMI rank variables set.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from targets_helpers import shellcheck

from l2hmcc import pbs, systems
from l2hmcc.ir import Spec
from l2hmcc.pbs import JobRequest, PlanError

SHA = "0123456789abcdef" * 4
TARGETS = list(systems.TARGETS)

# One representative job per system (the spec-based goldens come from the shipped specs).
REQUESTS: dict[str, JobRequest] = {
    "polaris": JobRequest(
        "polaris",
        experiment="su3_b6",
        account="LatticeQCD",
        queue="debug",
        nodes=2,
        walltime_min=60,
        filesystems=("home", "eagle"),
    ),
    "aurora": JobRequest(
        "aurora",
        experiment="su3 aurora run!",
        account="LatticeQCD_aesp",
        queue="debug-scaling",
        nodes=4,
        walltime_min=45,
        filesystems=("home", "flare"),
        env=(("OMP_NUM_THREADS", "4"),),
    ),
    "sunspot": JobRequest(
        "sunspot",
        experiment="u1",
        account="Aurora_deployment",
        queue="workq",
        nodes=2,
        walltime_min=90,
        filesystems=("tegu", "home"),
        name="u1-sunspot",
    ),
    "local": JobRequest("local", experiment="u1_smoke", nodes=1),
}

UNAVAILABLE = {
    ("aurora", "pytorch-horovod"),  # Horovod for PyTorch removed in frameworks/2025.3.1
    ("sunspot", "pytorch-horovod"),
    ("sunspot", "tensorflow"),  # no TensorFlow stack known on Sunspot
    ("sunspot", "tensorflow-horovod"),
}


def request_for(system: str, target: str) -> JobRequest:
    req = REQUESTS[system]
    if systems.TARGETS[target][1] == "none":
        return replace(req, nodes=1, ranks_per_node=1)
    if system == "local":
        return replace(req, ranks_per_node=2)
    return req


def plan(req: JobRequest, target: str) -> pbs.PbsPlan:
    return pbs.plan_request(req, target=target, spec_name="spec.l2h", spec_sha256=SHA)


def script(req: JobRequest, target: str) -> str:
    return pbs.render_plan(plan(req, target))


CASES = [
    (system, target)
    for system in REQUESTS
    for target in TARGETS
    if (system, target) not in UNAVAILABLE
]


@pytest.mark.parametrize(("system", "target"), CASES)
def test_golden(system: str, target: str, golden: Callable[[str, str], None]) -> None:
    golden(f"pbs/{system}-{target}.pbs", script(request_for(system, target), target))


@pytest.mark.parametrize(("system", "target"), sorted(UNAVAILABLE))
def test_unavailable_combinations_are_refused(system: str, target: str) -> None:
    with pytest.raises(PlanError, match=r"no module stack|has no"):
        plan(request_for(system, target), target)


# ----------------------------------------------------------------------------------------------
# bash -n and shellcheck over every generated script


def test_every_script_passes_bash_n_and_shellcheck(tmp_path: Path) -> None:
    paths = []
    for system, target in CASES:
        path = tmp_path / f"{system}-{target}.pbs"
        path.write_text(script(request_for(system, target), target))
        paths.append(path)
    for i, (req, target) in enumerate(VARIANTS):
        path = tmp_path / f"variant-{i}.pbs"
        path.write_text(script(req, target))
        paths.append(path)
    shellcheck(*paths)


VARIANTS: list[tuple[JobRequest, str]] = [
    # DeepSpeed's own launcher (hostfile + .deepspeed_env)
    (replace(REQUESTS["polaris"], launcher="deepspeed"), "pytorch-deepspeed"),
    # preemptable queue → rerunnable
    (replace(REQUESTS["polaris"], queue="preemptable", walltime_min=72 * 60), "pytorch-ddp"),
    # routed prod job, with extra modules and literal `$` in env values
    (
        replace(
            REQUESTS["aurora"],
            queue="prod",
            nodes=512,
            walltime_min=12 * 60,
            modules=("xpu-smi",),
            env=(("A", "$HOME"), ("B", "`x`")),
        ),
        "pytorch-ddp",
    ),
    # DAOS on Aurora: the filesystem only (`-l daos=…` was dropped from ALCF's DAOS page)
    (replace(REQUESTS["aurora"], filesystems=("home", "flare", "daos_user_fs")), "pytorch-ddp"),
    # older stack pinned by the spec; fewer ranks than devices; queue chosen by the planner
    (replace(REQUESTS["polaris"], modules=("conda/2024-04-29",)), "pytorch-horovod"),
    (replace(REQUESTS["aurora"], ranks_per_node=6), "pytorch-ddp"),
    (replace(REQUESTS["aurora"], queue=None, nodes=8, walltime_min=120), "pytorch-ddp"),
    # walltime chaining (continue = N), with mpiexec and with DeepSpeed's launcher
    (replace(REQUESTS["polaris"], queue="prod", nodes=10, continue_jobs=3), "pytorch-ddp"),
    (
        replace(REQUESTS["polaris"], queue="capacity", continue_jobs=1, launcher="deepspeed"),
        "pytorch-deepspeed",
    ),
    (replace(REQUESTS["sunspot"], continue_jobs=2), "pytorch-ddp"),
]


# ----------------------------------------------------------------------------------------------
# The directive block


def directive_block(text: str) -> tuple[list[str], list[str]]:
    """(the ``#PBS`` lines after the shebang, the rest of the script)."""
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash -l"
    block = []
    for line in lines[1:]:
        if not line.startswith("#PBS"):
            break
        block.append(line)
    return block, lines[1 + len(block) :]


def parse_directives(block: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in block:
        m = re.fullmatch(r"#PBS (-[A-Za-z]) (\S+)", line)
        assert m, f"malformed directive line {line!r}"
        out.setdefault(m.group(1), []).append(m.group(2))
    return out


@pytest.mark.parametrize(
    ("req", "target"),
    [(request_for(s, t), t) for s, t in CASES if s != "local"] + VARIANTS,
)
def test_directive_block_is_only_directives_and_matches_the_request(
    req: JobRequest, target: str
) -> None:
    text = script(req, target)
    block, rest = directive_block(text)
    # Nothing but directives inside the block; no directive (or PBS-looking line) after it.
    assert all(line.startswith("#PBS ") for line in block)
    assert not any(line.lstrip().upper().startswith("#PBS") for line in rest)
    assert rest[0].startswith("# generated by l2hmcc ")
    d = parse_directives(block)
    system = systems.SYSTEMS[req.system]
    assert d["-A"] == [req.account]
    assert d["-q"] == [req.queue or "capacity"]
    assert d["-j"] == ["oe"] and d["-k"] == ["doe"]
    resources = dict(v.split("=", 1) for v in d["-l"])
    assert "daos" not in resources
    expected_select = f"{req.nodes}:system=polaris" if req.system == "polaris" else str(req.nodes)
    assert resources["select"] == expected_select
    assert resources["place"] == "scatter"
    assert req.walltime_min is not None
    h, m, s = map(int, resources["walltime"].split(":"))
    assert (h * 60 + m, s) == (req.walltime_min, 0)
    assert resources["filesystems"].split(":") == list(req.filesystems)
    assert set(resources["filesystems"].split(":")) <= system.filesystems
    (name,) = d["-N"]
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,14}", name)
    if req.name is not None:
        assert name == req.name
    if req.queue is None:
        assert d["-q"] == ["capacity"]  # the first open queue that takes 8 nodes for 2h
    queue = system.queues[d["-q"][0]]
    assert ("-r" in d) == (queue.rerunnable or req.preemptable)
    if "-r" in d:
        assert d["-r"] == ["y"]


def test_walltime_and_job_name_formatting() -> None:
    assert pbs.format_walltime(5) == "00:05:00"
    assert pbs.format_walltime(90) == "01:30:00"
    assert pbs.format_walltime(168 * 60) == "168:00:00"
    with pytest.raises(PlanError):
        pbs.format_walltime(0)
    assert pbs.sanitize_job_name("su3 aurora run!") == "su3_aurora_run"
    assert pbs.sanitize_job_name("-#PBS -q prod\n") == "PBS_-q_prod"
    assert pbs.sanitize_job_name("λλλ") == "l2hmc"
    assert len(pbs.sanitize_job_name("x" * 100)) == 15


# ----------------------------------------------------------------------------------------------
# Running the scripts under bash with stand-ins for the cluster commands

STUBS = {
    # module/conda: record the call; an unknown module fails like Lmod does.
    "module": r"""() {
        printf 'module %s\n' "$*" >> "$STUB_OUT/calls"
        [[ "$1" != load || "$2" != missing/* ]]
    }""",
    "conda": r"""() { printf 'conda %s\n' "$*" >> "$STUB_OUT/calls"; }""",
    # mpiexec: parse the options this compiler emits, then run the command once per rank.
    "mpiexec": r"""() {
        printf '%s\0' "$@" > "$STUB_OUT/mpiexec.argv"
        local n=1 ppn=1
        while [[ $# -gt 0 && "$1" == -* ]]; do
            case "$1" in
                -n|--ppn|--cpu-bind|--hostfile|--depth)
                    [[ "$1" == -n ]] && n=$2
                    [[ "$1" == --ppn ]] && ppn=$2
                    shift 2 ;;
                *) shift ;;
            esac
        done
        local rank
        for ((rank = 0; rank < n; rank++)); do
            PMI_RANK=$rank PMI_SIZE=$n PMI_LOCAL_RANK=$((rank % ppn)) PMI_LOCAL_SIZE=$ppn \
            PALS_RANKID=$rank PALS_LOCAL_RANKID=$((rank % ppn)) PALS_LOCAL_SIZE=$ppn \
                "$@" || return
        done
    }""",
    "deepspeed": r"""() {
        printf '%s\0' "$@" > "$STUB_OUT/deepspeed.argv"
        cp hostfile .deepspeed_env "$STUB_OUT/"
        RANK=0 LOCAL_RANK=0 python "${@: -1}"
    }""",
}

PYTHON_STUB = """#!/bin/bash
# stand-in for python: record argv and environment of this rank
id=${PMI_RANK:-${RANK:-0}}
printf '%s\\0' "$@" > "$STUB_OUT/python.$id.argv"
env -0 > "$STUB_OUT/python.$id.env"
"""


def run_job(
    text: str, tmp_path: Path, *, nodes: int = 2, args: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run a job script's body under bash in a fresh job directory; return the result and the
    directory where the stand-ins wrote what they saw."""
    job = tmp_path / "job"
    out = tmp_path / "stub-out"
    bin_dir = tmp_path / "bin"
    for d in (job, out, bin_dir):
        d.mkdir()
    (job / "train.py").write_text("raise SystemExit('the stand-in python runs instead')\n")
    (job / "job.pbs").write_text(text)
    nodefile = tmp_path / "nodefile"
    nodefile.write_text(
        "".join(f"x3006c0s{i}b0n0.hsn.cm.polaris.alcf.anl.gov\n" for i in range(nodes))
    )
    python = bin_dir / "python"
    python.write_text(PYTHON_STUB)
    python.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PBS_ENVIRONMENT": "PBS_BATCH",
        "PBS_O_WORKDIR": str(job),
        "PBS_NODEFILE": str(nodefile),
        "STUB_OUT": str(out),
        "LANG": "C.UTF-8",
    }
    env.update({f"BASH_FUNC_{name}%%": body for name, body in STUBS.items()})
    proc = subprocess.run(
        ["bash", str(job / "job.pbs"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc, out


def read_nul(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8").split("\0")[:-1]


def read_env(path: Path) -> dict[str, str]:
    return dict(item.split("=", 1) for item in read_nul(path))


def test_polaris_ddp_runs_ranks_with_reversed_gpu_affinity(tmp_path: Path) -> None:
    req = REQUESTS["polaris"]
    proc, out = run_job(script(req, "pytorch-ddp"), tmp_path, nodes=2, args=("--steps", "3"))
    assert proc.returncode == 0, proc.stderr
    calls = (out / "calls").read_text().splitlines()
    assert calls == [
        "module use /soft/modulefiles",
        "module load conda/2025-09-25",
        "conda activate base",
    ]
    argv = read_nul(out / "mpiexec.argv")
    assert argv[:4] == ["-n", "8", "--ppn", "4"]
    assert "--depth=8" in argv and argv[argv.index("--cpu-bind") + 1] == "depth"
    assert argv[argv.index("--hostfile") + 1] == str(tmp_path / "nodefile")
    assert argv[-4:] == ["python", "train.py", "--steps", "3"]
    for rank in range(8):
        env = read_env(out / f"python.{rank}.env")
        assert env["CUDA_VISIBLE_DEVICES"] == str(3 - rank % 4)
        assert env["WORLD_SIZE"] == "8"
        assert env["MASTER_ADDR"] == "x3006c0s0b0n0.hsn.cm.polaris.alcf.anl.gov"
        assert env["MASTER_PORT"] == "29500"
        assert env["L2HMCC_DIST_BACKEND"] == "nccl"
        assert env["NCCL_NET"] == "AWS Libfabric"
        assert env["LD_LIBRARY_PATH"].startswith("/soft/libraries/aws-ofi-nccl/v1.9.1-aws/lib:")
        assert env["https_proxy"] == "http://proxy.alcf.anl.gov:3128"
        assert read_nul(out / f"python.{rank}.argv") == ["train.py", "--steps", "3"]


def test_aurora_ddp_binds_the_user_guide_core_list(tmp_path: Path) -> None:
    proc, out = run_job(script(REQUESTS["aurora"], "pytorch-ddp"), tmp_path, nodes=1)
    assert proc.returncode == 0, proc.stderr
    argv = read_nul(out / "mpiexec.argv")
    assert argv[:4] == ["-n", "12", "--ppn", "12"]
    # the framework pages' list, clear of oneCCL's worker cores 42-47 and 94-99
    assert (
        "--cpu-bind=verbose,list:4-7:8-11:12-15:16-19:20-23:24-27:56-59:60-63:64-67:68-71:72-75:76-79"
        in argv
    )
    env = read_env(out / "python.11.env")
    assert env["PALS_LOCAL_RANKID"] == "11"
    assert "CUDA_VISIBLE_DEVICES" not in env  # bound in the app: xpu:PALS_LOCAL_RANKID
    assert env["MASTER_ADDR"] == "x3006c0s0b0n0.hsn.cm.aurora.alcf.anl.gov"
    assert env["L2HMCC_DIST_BACKEND"] == "xccl"
    assert env["CCL_KVS_MODE"] == "mpi"
    assert env["OMP_NUM_THREADS"] == "4"


def test_single_process_target_runs_one_rank(tmp_path: Path) -> None:
    proc, out = run_job(script(request_for("aurora", "pytorch"), "pytorch"), tmp_path, nodes=1)
    assert proc.returncode == 0, proc.stderr
    assert read_nul(out / "mpiexec.argv")[:4] == ["-n", "1", "--ppn", "1"]
    env = read_env(out / "python.0.env")
    assert "MASTER_ADDR" not in env and "L2HMCC_DIST_BACKEND" not in env


def test_deepspeed_launcher_writes_hostfile_and_env(tmp_path: Path) -> None:
    req = replace(REQUESTS["polaris"], launcher="deepspeed", env=(("MY_VAR", "a b $c"),))
    proc, out = run_job(script(req, "pytorch-deepspeed"), tmp_path, nodes=2)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "mpiexec.argv").exists()
    argv = read_nul(out / "deepspeed.argv")
    assert argv == [
        "--hostfile=hostfile",
        "--master_addr=x3006c0s0b0n0.hsn.cm.polaris.alcf.anl.gov",
        "--master_port=29500",
        "train.py",
    ]
    assert (out / "hostfile").read_text().splitlines() == [
        "x3006c0s0b0n0.hsn.cm.polaris.alcf.anl.gov slots=4",
        "x3006c0s1b0n0.hsn.cm.polaris.alcf.anl.gov slots=4",
    ]
    ds_env = dict(line.split("=", 1) for line in (out / ".deepspeed_env").read_text().splitlines())
    assert ds_env["MY_VAR"] == "a b $c"
    assert ds_env["NCCL_NET"] == "AWS Libfabric"
    assert ds_env["PATH"].startswith(str(tmp_path / "bin"))


def test_failed_module_load_stops_the_job(tmp_path: Path) -> None:
    req = replace(REQUESTS["polaris"], modules=("missing/1.0",))
    proc, out = run_job(script(req, "pytorch-ddp"), tmp_path)
    assert proc.returncode == 1
    assert not (out / "mpiexec.argv").exists()


def test_job_directory_batch_and_by_hand(tmp_path: Path) -> None:
    proc, out = run_job(script(REQUESTS["polaris"], "pytorch-ddp"), tmp_path)
    assert proc.returncode == 0  # batch: ran in PBS_O_WORKDIR although started elsewhere
    job = tmp_path / "job"
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "PBS_NODEFILE": str(tmp_path / "nodefile"),
        "STUB_OUT": str(out),
        "PBS_O_WORKDIR": str(tmp_path),  # where `qsub -I` ran, not the job directory
        **{f"BASH_FUNC_{name}%%": body for name, body in STUBS.items()},
    }
    # by hand inside an interactive job: works in the current directory
    (out / "python.0.env").unlink()
    by_hand = subprocess.run(
        ["bash", "job.pbs"], cwd=job, env=env, capture_output=True, text=True, check=False
    )
    assert by_hand.returncode == 0, by_hand.stderr
    assert (out / "python.0.env").exists()
    # anywhere without train.py: refuses
    elsewhere = subprocess.run(
        ["bash", str(job / "job.pbs")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert elsewhere.returncode == 1
    assert "run it from the job directory" in elsewhere.stderr


# ----------------------------------------------------------------------------------------------
# Adversarial spec strings

NASTY = [
    "it's",
    'say "hi"',
    "$HOME",
    "${PATH}",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a; touch PWNED",
    "a && touch PWNED #",
    "#PBS -q prod",
    " #PBS -A evil",
    "\\",
    "x'\"'\"'y",
    "*",
    "!!",
    "unicodé λ 漢字 🚀",
    "a\u2028b",
    "",
]
CONTROL = ["line1\nline2", "\n#PBS -q prod", "a\rb", "tab\there", "nul\x00"]


def test_env_values_reach_the_ranks_verbatim_and_run_nothing(tmp_path: Path) -> None:
    env_pairs = tuple((f"V{i}", value) for i, value in enumerate(NASTY))
    req = replace(REQUESTS["aurora"], env=env_pairs, experiment="$(touch PWNED)`touch PWNED`")
    text = script(req, "pytorch-ddp")
    block, _ = directive_block(text)
    assert len(block) == 9
    proc, out = run_job(text, tmp_path, nodes=1)
    assert proc.returncode == 0, proc.stderr
    env = read_env(out / "python.0.env")
    for key, value in env_pairs:
        assert env[key] == value
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.parametrize("value", CONTROL)
def test_env_values_with_control_characters_are_refused(value: str) -> None:
    with pytest.raises(PlanError, match="control character"):
        plan(replace(REQUESTS["aurora"], env=(("V", value),)), "pytorch-ddp")


@pytest.mark.parametrize("key", ["1X", "A-B", "A B", "$(x)", "A;B", "", "Ä"])
def test_env_names_must_be_identifiers(key: str) -> None:
    with pytest.raises(PlanError, match="identifier"):
        plan(replace(REQUESTS["aurora"], env=((key, "v"),)), "pytorch-ddp")


@pytest.mark.parametrize("value", NASTY + CONTROL)
@pytest.mark.parametrize("field", ["account", "name", "module"])
def test_strings_that_would_reach_a_directive_or_module_line_are_refused(
    field: str, value: str
) -> None:
    base = REQUESTS["polaris"]
    req = {
        "account": replace(base, account=value),
        "name": replace(base, name=value),
        "module": replace(base, modules=(value,)),
    }[field]
    with pytest.raises(PlanError):
        plan(req, "pytorch-ddp")


@pytest.mark.parametrize("value", NASTY + CONTROL)
def test_experiment_names_become_safe_job_names(value: str) -> None:
    block, _ = directive_block(
        script(replace(REQUESTS["polaris"], experiment=value), "pytorch-ddp")
    )
    assert all(re.fullmatch(r"#PBS -[A-Za-z] [A-Za-z0-9_.:=+-]+", line) for line in block)


def test_spec_name_cannot_break_out_of_the_header() -> None:
    p = pbs.plan_request(
        REQUESTS["polaris"],
        target="pytorch-ddp",
        spec_name="x.l2h\nmpiexec evil\n#PBS -q prod",
        spec_sha256=SHA,
    )
    text = pbs.render_plan(p)
    assert "\nmpiexec evil" not in text
    _, rest = directive_block(text)
    assert not any("#PBS" in line for line in rest[1:])


# ----------------------------------------------------------------------------------------------
# The local system


def test_local_script_runs_run_local_sh(tmp_path: Path) -> None:
    req = replace(REQUESTS["local"], ranks_per_node=2, env=(("V", "$(touch PWNED) it's"),))
    text = script(req, "pytorch-ddp")
    assert text.startswith("#!/usr/bin/env bash\n# generated by l2hmcc")
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.pbs").write_text(text)
    (job / "job.pbs").chmod(0o755)
    launcher = job / pbs.LOCAL_LAUNCHER
    launcher.write_text('#!/bin/bash\nprintf "%s\\0" "$PWD" "$V" "$@" > "$OUT"\n')
    launcher.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "OUT": str(tmp_path / "argv")}
    # run from elsewhere: the script changes to its own directory
    subprocess.run([str(job / "job.pbs"), "--steps", "2"], cwd=tmp_path, env=env, check=True)
    assert read_nul(tmp_path / "argv") == [
        str(job),
        "$(touch PWNED) it's",
        "--nproc",
        "2",
        "--steps",
        "2",
    ]
    assert not list(tmp_path.rglob("PWNED"))


def test_local_single_process_passes_no_nproc() -> None:
    text = script(REQUESTS["local"], "pytorch")
    assert text.rstrip().endswith('exec ./run-local.sh "$@"')


# ----------------------------------------------------------------------------------------------
# --submit


def test_submit_explains_without_qsub(tmp_path: Path) -> None:
    if Path("/opt/pbs/bin/qsub").exists():  # pragma: no cover - only on a PBS login node
        pytest.skip("a real qsub is installed here")
    missing = pbs.submit(tmp_path, "polaris", env={"PATH": str(tmp_path / "empty")})
    assert not missing.submitted and not missing.attempted
    assert "no job script" in missing.message
    (tmp_path / "job.pbs").write_text("#!/bin/bash -l\n")
    result = pbs.submit(tmp_path, "polaris", env={"PATH": str(tmp_path / "empty")})
    assert not result.submitted and not result.attempted
    assert "qsub is not on PATH" in result.message and "qsub job.pbs" in result.message
    local = pbs.submit(tmp_path, "local")
    assert not local.submitted and "./job.pbs" in local.message


def test_submit_runs_qsub_in_the_job_directory(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qsub = bin_dir / "qsub"
    qsub.write_text('#!/bin/bash\necho "$PWD $*" > "$QSUB_LOG"\necho 4242.polaris-pbs-01\n')
    qsub.chmod(0o755)
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.pbs").write_text("#!/bin/bash -l\n")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "QSUB_LOG": str(tmp_path / "log")}
    result = pbs.submit(job, "polaris", env=env)
    assert result.submitted and result.job_id == "4242.polaris-pbs-01"
    assert (tmp_path / "log").read_text().split() == [str(job), "job.pbs"]
    qsub.write_text(
        "#!/bin/bash\necho 'qsub: Job rejected by all possible destinations' >&2\nexit 1\n"
    )
    failed = pbs.submit(job, "polaris", env=env)
    assert not failed.submitted and failed.attempted and "rejected" in failed.message


# ----------------------------------------------------------------------------------------------
# The shipped specs: every spec × target the checks accept

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted([*REPO.glob("specs/*.l2h"), *REPO.glob("examples/*.l2h")])


def shipped_scripts() -> list[tuple[str, str, str, Spec]]:
    """(spec stem, target, script, IR) for every shipped spec and target that checks clean."""
    import hashlib

    from l2hmcc import driver

    out = []
    for path in SHIPPED:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        for target in TARGETS:
            outcome = driver.check(str(path), target=target)
            if not outcome.ok or outcome.spec is None or outcome.spec.sweeps:
                continue
            text = pbs.render_pbs(outcome.spec, target=target, spec_name=path.name, spec_sha256=sha)
            out.append((f"{path.parent.name}-{path.stem}", target, text, outcome.spec))
    return out


def test_shipped_spec_goldens(golden: Callable[[str, str], None], tmp_path: Path) -> None:
    scripts = shipped_scripts()
    names = {(stem, target) for stem, target, _, _ in scripts}
    # the cluster specs compile for the targets they were written for
    assert ("specs-su3", "pytorch-deepspeed") in names
    assert ("specs-aurora", "pytorch-ddp") in names
    paths = []
    for stem, target, text, spec in scripts:
        golden(f"pbs/shipped/{stem}-{target}.pbs", text)
        path = tmp_path / f"{stem}-{target}.pbs"
        path.write_text(text)
        paths.append(path)
        if spec.job.system != "local":
            check_directives_against_ir(text, spec)
    shellcheck(*paths)


def check_directives_against_ir(text: str, spec: Spec) -> None:
    """The directive block holds only directives, and each value is the IR's."""
    job = spec.job
    block, rest = directive_block(text)
    assert not any(line.lstrip().startswith("#PBS") for line in rest)
    d = parse_directives(block)
    resources = dict(v.split("=", 1) for v in d["-l"])
    assert d["-A"] == [job.account]
    assert d["-q"] == [job.queue]
    select = f"{job.nodes}:system=polaris" if job.system == "polaris" else str(job.nodes)
    assert resources["select"] == select
    h, m, sec = map(int, resources["walltime"].split(":"))
    assert h * 60 + m == job.walltime_min and sec == 0
    assert resources["filesystems"] == ":".join(job.filesystems)
    assert d["-N"] == [job.name or spec.experiment.name[:15]]
    assert ("-r" in d) == job.preemptable
    ppn = re.search(r"^NRANKS_PER_NODE=(\d+)$", text, re.M)
    devices = systems.SYSTEMS[job.system].node.devices_per_node
    assert ppn is not None and int(ppn.group(1)) == (job.ranks_per_node or devices)


def test_add_job_script_to_a_bundle() -> None:
    from l2hmcc.bundle import Bundle

    spec = Spec.model_validate(
        {
            "experiment": {"name": "x"},
            "lattice": {"group": "U1", "shape": [4, 4], "beta": {"kind": "constant", "value": 1.0}},
        }
    )
    bundle = Bundle()
    pbs.add_job_script(bundle, spec, target="pytorch", spec_name="x.l2h", spec_sha256=SHA)
    f = bundle[pbs.JOB_SCRIPT]
    assert f.executable
    assert f.data.decode().endswith('exec ./run-local.sh "$@"\n')


def test_compile_submit_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from l2hmcc import cli

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qsub = bin_dir / "qsub"
    qsub.write_text("#!/bin/bash\necho 4242.polaris-pbs-01\n")
    qsub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    out = tmp_path / "job"
    rc = cli.main(
        [
            "compile",
            str(REPO / "specs/su3.l2h"),
            "-t",
            "pytorch-deepspeed",
            "-o",
            str(out),
            "--submit",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0
    if (out / "job.pbs").exists():  # once the target writes job.pbs
        assert "submitted 4242.polaris-pbs-01" in captured.out
    else:
        assert "wrote no job script" in captured.err


@pytest.mark.slow
def test_local_job_runs_end_to_end(tmp_path: Path) -> None:
    """The `local` job script of a compiled smoke spec trains through run-local.sh."""
    from l2hmcc import driver

    out = tmp_path / "job"
    outcome = driver.compile(str(REPO / "specs/u1-smoke.l2h"), "pytorch", out)
    assert outcome.ok, [d.message for d in outcome.diagnostics]
    assert os.access(out / pbs.LOCAL_LAUNCHER, os.X_OK)
    assert os.access(out / pbs.JOB_SCRIPT, os.X_OK)
    # The launcher runs `python`: the interpreter running the tests (and its torch) comes first.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": path}
    proc = subprocess.run(
        [str(out / pbs.JOB_SCRIPT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (out / "output" / "summary.json").is_file()
