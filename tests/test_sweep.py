"""Sweeps: expansion counts, order and names; the sweep directory and its record; the PBS job
array (or one script per point where the queue takes no arrays); `--point`; and a diff
between two points shows exactly the varied fields."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from targets_helpers import shellcheck

from l2hmcc import cli, driver, irdiff, manifest, sweep, systems
from l2hmcc.source import Source
from l2hmcc.syntax import parse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples/sweep.l2h"

CLUSTER = """
experiment polsweep {{ seed = 1 }}
lattice {{ group = U1  shape = [8, 8]  beta = sweep(4.0, 5.0) }}
dynamics {{ leapfrog = sweep(4, 8) }}
distributed ddp {{}}
job {system} {{ account = "MyProj"  queue = {queue}  nodes = {nodes}  walltime = 1h
    filesystems = {filesystems} }}
"""


def write(tmp_path: Path, text: str, name: str = "s.l2h") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def cluster_spec(
    tmp_path: Path,
    *,
    system: str = "polaris",
    queue: str = "prod",
    nodes: str = "10",
    filesystems: str = "[home, eagle]",
) -> Path:
    text = CLUSTER.format(system=system, queue=queue, nodes=nodes, filesystems=filesystems)
    return write(tmp_path, text, f"{system}-{queue}.l2h")


def directives(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#PBS ")]


# --- expansion ---------------------------------------------------------------------------------


def test_expansion_counts_order_and_names(tmp_path: Path) -> None:
    outcome = driver.build(str(EXAMPLE), "pytorch")
    assert outcome.ok, outcome.diagnostics
    names = [p.name for p in outcome.points]
    # 3 betas × 2 leapfrogs × 2 learning rates, the first swept key varying slowest
    assert len(names) == 12 == len(set(names))
    assert names[:5] == [
        "u1_sweep-beta3.0-leapfrog4-lr1e-3",
        "u1_sweep-beta3.0-leapfrog4-lr3e-4",
        "u1_sweep-beta3.0-leapfrog8-lr1e-3",
        "u1_sweep-beta3.0-leapfrog8-lr3e-4",
        "u1_sweep-beta4.0-leapfrog4-lr1e-3",
    ]
    assert names[-1] == "u1_sweep-beta_linear3.0-5.0-leapfrog8-lr3e-4"
    assert all(sweep.POINT_NAME_RE.match(n) for n in names)
    assert [p.index for p in outcome.points] == list(range(12))
    assert outcome.points[9].values == (
        ("lattice.beta", "linear(3.0, 5.0)"),
        ("dynamics.leapfrog", "4"),
        ("train.lr", "3e-4"),
    )


def _points(text: str) -> list[sweep.Point]:
    from l2hmcc.lower import lower

    tree = parse(Source("t.l2h", text)).tree
    assert tree is not None
    result = lower(tree, "t.l2h")
    assert result.spec is not None, result.diagnostics
    return sweep.points(result.spec.experiment.name, result.sweeps)


LATTICE = "lattice { group = U1  shape = [4, 4]  beta = 1.0 }\n"


def test_point_names_are_safe_unique_and_name_what_varies() -> None:
    pts = _points(
        'experiment e { description = sweep("a b/c", "a_b_c") }\n'
        + LATTICE
        + "train { chains = sweep(4, 8) }  evaluate { chains = sweep(2, 3) }\n"
        + "network { hidden = sweep([8, 8], [16]) }\n"
    )
    assert len(pts) == 2 * 2 * 2 * 2
    names = [p.name for p in pts]
    assert len(set(names)) == len(names)
    assert all(sweep.POINT_NAME_RE.match(n) for n in names)
    # keys sharing a last segment are named by their whole path; lists become 8x8
    assert names[0] == "e-description_a_b_c-train_chains4-evaluate_chains2-hidden8x8"
    # "a b/c" and "a_b_c" sanitize alike: the second gets its index
    assert names[8] == "e-description_a_b_c-train_chains4-evaluate_chains2-hidden8x8-8"


def test_a_single_value_sweep_is_one_point() -> None:
    pts = _points(LATTICE.replace("1.0", "sweep(1.0)"))
    assert [p.name for p in pts] == ["t-beta1.0"]


# --- the sweep directory -----------------------------------------------------------------------


def test_local_sweep_directory_and_record(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    outcome = driver.compile(str(EXAMPLE), "pytorch", out)
    assert outcome.ok and outcome.out_dir == out
    record = manifest.SweepManifest.model_validate_json((out / "sweep.json").read_text())
    assert [p.name for p in record.points] == [p.name for p in outcome.points]
    assert [a.path for a in record.axes] == ["lattice.beta", "dynamics.leapfrog", "train.lr"]
    assert record.axes[0].values == ("3.0", "4.0", "linear(3.0, 5.0)")
    assert record.submission.mode == "local"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(p.name for p in record.points), "sweep.json", "submit-all.sh"]
    )
    for i, p in enumerate(record.points):
        m = manifest.Manifest.model_validate_json((out / p.name / "manifest.json").read_bytes())
        assert m.point is not None and (m.point.index, m.point.count) == (i, 12)
        assert m.point.values == p.values and m.ir.sweeps == ()
        assert (out / p.name / "spec.l2h").read_bytes() == EXAMPLE.read_bytes()
    # the sweep's files list every point file with its digest
    listed = {f.path for f in record.files}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {
        "sweep.json"
    }
    assert listed == on_disk
    ir5 = manifest.Manifest.model_validate_json(
        (out / record.points[5].name / "manifest.json").read_bytes()
    ).ir
    assert (ir5.lattice.beta.kind, ir5.dynamics.leapfrog, ir5.train.lr) == ("constant", 4, 3e-4)
    shellcheck(out / "submit-all.sh")
    assert '(cd "$point" && ./job.pbs "$@")' in (out / "submit-all.sh").read_text()


def test_job_array_when_the_queue_takes_arrays(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    outcome = driver.compile(str(cluster_spec(tmp_path)), "pytorch-ddp", out)
    assert outcome.ok, outcome.diagnostics
    record = json.loads((out / "sweep.json").read_text())
    assert record["submission"]["mode"] == "array"
    array = (out / "array.pbs").read_text()
    first = (out / outcome.points[0].name / "job.pbs").read_text()
    # the array asks for what every point's job.pbs asks for, plus -J over the points
    # both are required for arrays (UG:running-jobs/example-job-scripts.md)
    assert directives(array) == [*directives(first), "#PBS -r y", "#PBS -J 0-3"]
    for p in outcome.points:
        assert directives((out / p.name / "job.pbs").read_text()) == directives(first)
        assert f"    {p.name}\n" in array
    assert array.startswith("#!/bin/bash -l\n#PBS -A MyProj\n")
    assert "\n    qsub array.pbs\n" in (out / "submit-all.sh").read_text()
    assert os.access(out / "array.pbs", os.X_OK) and os.access(out / "submit-all.sh", os.X_OK)
    shellcheck(out / "array.pbs", out / "submit-all.sh")


def test_array_subjobs_run_their_points_job_pbs(tmp_path: Path) -> None:
    """array.pbs as PBS runs it: subjob i changes into point i and runs its job.pbs there
    (with PBS_O_WORKDIR the point's directory, where job.pbs goes in a batch job)."""
    out = tmp_path / "sw"
    assert driver.compile(str(cluster_spec(tmp_path)), "pytorch-ddp", out).ok
    names = [p["name"] for p in json.loads((out / "sweep.json").read_text())["points"]]
    for name in names:  # stand-ins for the cluster scripts, which need Polaris' modules
        stub = out / name / "job.pbs"
        stub.write_text('#!/bin/bash\necho "$PWD $PBS_O_WORKDIR $*" > ran.txt\n')
    env = {**os.environ, "PBS_ENVIRONMENT": "PBS_BATCH", "PBS_O_WORKDIR": str(out)}
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    for i in (0, 3):
        subprocess.run(
            ["bash", str(out / "array.pbs"), "--resume"],
            cwd=elsewhere,
            env={**env, "PBS_ARRAY_INDEX": str(i)},
            check=True,
        )
        point = out / names[i]
        assert (point / "ran.txt").read_text() == f"{point} {point} --resume\n"
    assert not (out / names[1] / "ran.txt").exists()
    bad = subprocess.run(
        ["bash", str(out / "array.pbs")],
        cwd=out,
        env={**env, "PBS_ARRAY_INDEX": "4"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a point index (0-3)" in bad.stderr


@pytest.mark.parametrize(("system", "queue", "fs"), [("polaris", "debug", "[home, eagle]")])
def test_no_array_in_debug_queues(tmp_path: Path, system: str, queue: str, fs: str) -> None:
    assert systems.get(system).queues[queue].job_arrays is False  # type: ignore[union-attr]
    out = tmp_path / "sw"
    spec = cluster_spec(tmp_path, system=system, queue=queue, nodes="1", filesystems=fs)
    outcome = driver.compile(str(spec), "pytorch-ddp", out)
    assert outcome.ok, outcome.diagnostics
    record = json.loads((out / "sweep.json").read_text())
    assert record["submission"]["mode"] == "scripts"
    assert f"`{queue}` queue takes no job arrays" in record["submission"]["reason"]
    assert not (out / "array.pbs").exists()
    submit = (out / "submit-all.sh").read_text()
    assert '(cd "$point" && qsub job.pbs)' in submit
    shellcheck(out / "submit-all.sh")


def test_points_asking_for_different_resources_get_one_script_each(tmp_path: Path) -> None:
    spec = cluster_spec(tmp_path, nodes="sweep(10, 12)")
    outcome = driver.compile(str(spec), "pytorch-ddp", tmp_path / "sw")
    assert outcome.ok, outcome.diagnostics
    assert (
        len(outcome.points) == 8 and outcome.points[1].name == "polsweep-beta4.0-leapfrog4-nodes12"
    )
    record = json.loads((tmp_path / "sw/sweep.json").read_text())
    assert record["submission"]["mode"] == "scripts"
    assert "different resources" in record["submission"]["reason"]


def test_a_point_the_checks_reject_stops_the_compile(tmp_path: Path) -> None:
    spec = cluster_spec(tmp_path, queue="sweep(prod, debug)")
    outcome = driver.compile(str(spec), "pytorch-ddp", tmp_path / "sw")
    assert not outcome.ok and not (tmp_path / "sw").exists()
    [d] = [d for d in outcome.diagnostics if d.is_error]
    assert d.code == "E326" and d.primary.span.file == str(spec)  # debug takes ≤ 2 nodes


# --- one point -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["u1_sweep-beta4.0-leapfrog8-lr1e-3", "6"])
def test_compile_one_point(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["compile", str(EXAMPLE), "-t", "pytorch", "--point", key])
    assert rc == 0, capsys.readouterr().err
    job = tmp_path / "jobs/u1_sweep-beta4.0-leapfrog8-lr1e-3-pytorch"
    m = manifest.Manifest.model_validate_json((job / "manifest.json").read_bytes())
    assert m.point is not None and (m.point.index, m.point.count) == (6, 12)
    assert m.ir.lattice.beta.model_dump() == {"kind": "constant", "value": 4.0}
    assert m.ir.dynamics.leapfrog == 8


def test_unknown_points(tmp_path: Path) -> None:
    o = driver.compile(str(EXAMPLE), "pytorch", tmp_path / "x", point="u1_sweep-beta4.0-leapfrog8")
    [d] = o.diagnostics
    assert d.code == "E303" and "did you mean `u1_sweep-beta4.0-leapfrog8-lr" in (d.help or "")
    o = driver.compile(str(EXAMPLE), "pytorch", tmp_path / "x", point="12")
    assert [d.code for d in o.diagnostics] == ["E303"]
    o = driver.compile(str(ROOT / "specs/u1-smoke.l2h"), "pytorch", tmp_path / "x", point="0")
    assert [(d.code, "has no sweeps" in d.message) for d in o.diagnostics] == [("E303", True)]
    assert not (tmp_path / "x").exists()


# --- diff between points -------------------------------------------------------------------------


def test_diff_between_two_points_shows_exactly_the_varied_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sw"
    outcome = driver.compile(str(EXAMPLE), "pytorch", out)
    assert outcome.ok
    a, b = out / outcome.points[0].name, out / outcome.points[7].name  # beta 3→4, lf 4→8, lr
    changes = irdiff.diff(irdiff.load_side(str(a), None), irdiff.load_side(str(b), None))
    assert [(c.path, c.old, c.new) for c in changes] == [
        ("lattice.beta.value", 3.0, 4.0),
        ("dynamics.leapfrog", 4, 8),
        ("train.lr", 0.001, 0.0003),
    ]
    # each side's location is the sweep argument in that point's spec copy
    text = EXAMPLE.read_text().splitlines()
    for c in changes:
        for side, at in ((a, c.old_at), (b, c.new_at)):
            assert at is not None and at.file == str(side / "spec.l2h")
            assert "sweep(" in text[at.line - 1]
    assert str(changes[0].old_at).endswith(f"spec.l2h:{changes[0].old_at.line}:18")  # type: ignore[union-attr]
    rc = cli.main(["diff", str(a), str(out / outcome.points[1].name)])
    assert rc == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("train.lr: 0.001 → 0.0003") and lines[-1] == "1 field differs"
    assert re.match(r"    \S+/spec\.l2h:\d+:\d+ → \S+/spec\.l2h:\d+:\d+$", lines[3])


# --- end to end ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_local_sweep_runs_through_submit_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two points of the smoke spec, compiled as a sweep and run for real (a few steps each)
    by submit-all.sh; afterwards `show` reports both runs and `verify` still passes (run
    outputs are not part of the record)."""
    import sys

    from l2hmcc import verify

    out = tmp_path / "sw"
    outcome = driver.compile(
        str(ROOT / "specs/u1-smoke.l2h"),
        "pytorch",
        out,
        overrides=("dynamics.leapfrog=sweep(1, 2)",),
    )
    assert outcome.ok, outcome.diagnostics
    assert [p.name for p in outcome.points] == ["u1_smoke-leapfrog1", "u1_smoke-leapfrog2"]
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    proc = subprocess.run(
        ["./submit-all.sh", "--train-steps", "2", "--eval-steps", "2", "--hmc-steps", "2"],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for p in outcome.points:
        summary = json.loads((out / p.name / "output/summary.json").read_text())
        assert summary["train"]["step_sizes"] and len(summary["train"]["step_sizes"]) == int(
            p.name[-1]
        )
    assert cli.main(["show", str(out), "--no-spec"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line[:1].isdigit()]
    assert [r[2:4] for r in rows] == [["1", "finished"], ["2", "finished"]]  # leapfrog, state
    report = verify.verify(out)
    assert report.ok, verify.render_text(report)


def test_a_sweep_too_large_is_refused(tmp_path: Path) -> None:
    values = ", ".join(str(i) for i in range(1, 12))
    spec = write(
        tmp_path,
        LATTICE
        + f"dynamics {{ leapfrog = sweep({values}) }}\n"
        + f"train {{ chains = sweep({values})  steps = sweep({values}) }}\n",
    )
    outcome = driver.compile(str(spec), "pytorch", tmp_path / "sw")
    [d] = outcome.diagnostics
    assert d.code == "E306" and "1331 points" in d.message and len(d.secondary) == 2
    assert d.primary.message == "11 × 11 × 11 points"
    assert not (tmp_path / "sw").exists()


def test_compile_submit_runs_submit_all_where_qsub_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "qsub.log"
    qsub = bin_dir / "qsub"  # a stand-in for PBS's qsub: records where and what it submits
    qsub.write_text(f'#!/bin/bash\necho "$PWD $*" >> {log}\necho 4242.polaris-pbs-01\n')
    qsub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    out = tmp_path / "array"
    spec = cluster_spec(tmp_path)
    assert cli.main(["compile", str(spec), "-t", "pytorch-ddp", "-o", str(out), "--submit"]) == 0
    assert log.read_text() == f"{out} array.pbs\n"
    log.unlink()
    out = tmp_path / "scripts"
    spec = cluster_spec(tmp_path, queue="debug", nodes="1")
    assert cli.main(["compile", str(spec), "-t", "pytorch-ddp", "-o", str(out), "--submit"]) == 0
    names = [p["name"] for p in json.loads((out / "sweep.json").read_text())["points"]]
    assert log.read_text().splitlines() == [f"{out / n} job.pbs" for n in names]
    capsys.readouterr()
    assert (
        cli.main(["compile", str(EXAMPLE), "-t", "pytorch", "-o", str(tmp_path / "l"), "--submit"])
        == 0
    )
    assert "`job local` is not a PBS system" in capsys.readouterr().out
