"""Sweep campaigns: `l2hmcc show SWEEPDIR` with every point's state and the comparison table,
``--format json|csv``, ``--plot METRIC`` (a PNG), and ``submit-all.sh --unfinished``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_show import ROOT, finish

from l2hmcc import cli, driver, show

SPEC = """experiment camp { seed = 3 }
lattice { group = U1  shape = [4, 4]  beta = sweep(1.0, 2.0, 3.0) }
dynamics { leapfrog = sweep(2, 4) }
train { steps = 4  chains = 2 }
"""


@pytest.fixture
def campaign(tmp_path: Path) -> tuple[Path, list[str]]:
    """A local sweep of 6 points (β × leapfrog) in every state a point can be in."""
    spec = tmp_path / "camp.l2h"
    spec.write_text(SPEC)
    out = tmp_path / "camp"
    outcome = driver.compile(str(spec), "pytorch", out)
    assert outcome.ok, outcome.diagnostics
    names = [p.name for p in outcome.points]
    # 0 finished, 1 running, 2 stopped, 3 failed, 4 finished, 5 not started
    for i in (0, 4):
        finish(out / names[i], sha="ab" * 32)
    finish(out / names[1], sha="ab" * 32)
    for i, status in ((1, "running"), (2, "stopped"), (3, "failed")):
        run_json = out / names[1] / "output/run.json"
        record = json.loads(run_json.read_text())
        record["status"] = status
        (out / names[i] / "output").mkdir(exist_ok=True)
        (out / names[i] / "output/run.json").write_text(json.dumps(record))
    (out / names[1] / "output/summary.json").unlink()
    summary = json.loads((out / names[4] / "output/summary.json").read_text())
    summary["l2hmc"]["tau_int_q"]["value"] = 0.9
    summary["improvement"] = 2.5
    (out / names[4] / "output/summary.json").write_text(json.dumps(summary))
    return out, names


STATES = ["finished", "running", "stopped", "failed", "finished", "not started"]


def test_states_and_the_comparison_table(
    campaign: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, names = campaign
    assert cli.main(["show", str(out), "--no-spec"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("#  "))
    for column in ("beta", "leapfrog", "state", "acceptance", "plaquette", "exact", "<Q^2>"):
        assert column in header.split()
    assert "tau_int(Q)" in header and "traj/s" in header and "improvement" in header
    rows = {line.split()[1]: line for line in lines if line[:1].isdigit()}
    for name, state in zip(names, STATES, strict=True):
        assert f" {state} " in rows[name] + " ", (name, rows[name])
    row0 = rows[names[0]].split()
    assert row0[2:4] == ["1.0", "2"]  # beta, leapfrog of point 0
    assert row0[5] == "0.93"  # L2HMC acceptance
    assert "1.52" in rows[names[0]] and "2.5" in rows[names[4]]  # improvement


def test_json_has_each_points_state_and_metrics(
    campaign: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = campaign
    assert cli.main(["show", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["state"] for p in report["points"]] == STATES
    m = report["points"][0]["metrics"]
    assert m["acceptance"] == 0.93
    assert m["improvement"] == 1.52
    assert report["points"][5]["metrics"]["acceptance"] is None


def test_csv_is_one_row_per_point(
    campaign: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, names = campaign
    assert cli.main(["show", str(out), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in rows] == names
    assert [r["state"] for r in rows] == STATES
    assert [r["lattice.beta"] for r in rows] == ["1.0", "1.0", "2.0", "2.0", "3.0", "3.0"]
    assert [r["dynamics.leapfrog"] for r in rows] == ["2", "4"] * 3
    assert float(rows[4]["tau_int_q"]) == 0.9
    assert rows[5]["acceptance"] == ""  # not started: empty cells
    assert {"plaquette", "plaquette_err", "plaquette_exact", "q2", "trajectories_per_s"} <= set(
        rows[0]
    )


def test_plot_of_a_metric_against_the_swept_fields(
    campaign: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = campaign
    png = tmp_path / "tau.png"
    args = ["show", str(out), "--no-spec", "--plot", "tau_int_q", "--plot-out", str(png)]
    assert cli.main(args) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in capsys.readouterr().err
    assert cli.main(["show", str(out), "--plot", "speed", "--plot-out", str(png)]) == 2
    assert "unknown metric 'speed'" in capsys.readouterr().err


def test_plot_needs_a_finished_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "camp.l2h"
    spec.write_text(SPEC)
    out = tmp_path / "camp"
    assert driver.compile(str(spec), "pytorch", out).ok
    with pytest.raises(show.PlotError, match="none finished"):
        show.plot_metric(show.report(out), "acceptance", tmp_path / "x.png")


def test_show_imports_no_framework_and_matplotlib_only_to_plot(
    campaign: tuple[Path, list[str]], tmp_path: Path
) -> None:
    out, _ = campaign
    code = (
        "import sys\n"
        "from l2hmcc import cli\n"
        f"assert cli.main(['show', {str(out)!r}, '--format', 'csv']) == 0\n"
        f"assert cli.main(['show', {str(out)!r}, '--format', 'json']) == 0\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        f"assert cli.main(['show', {str(out)!r}, '--format', 'csv', '--plot', 'acceptance',"
        f" '--plot-out', {str(tmp_path / 'a.png')!r}]) == 0\n"
        "assert 'matplotlib' in sys.modules and 'torch' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr


def test_submit_all_unfinished_runs_only_what_did_not_finish(
    campaign: tuple[Path, list[str]],
) -> None:
    """A local campaign: --unfinished runs each point that did not complete, with --resume,
    except one that says `running` (it may be running: two runs would share its output)."""
    out, names = campaign
    for name in names:  # stand-ins that record how they were run
        (out / name / "job.pbs").write_text('#!/bin/bash\necho "$*" > ran\n')
    proc = subprocess.run(
        ["./submit-all.sh", "--unfinished", "--no-plots"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{names[1]}: its run.json says running" in proc.stderr
    for name, state in zip(names, STATES, strict=True):
        ran = out / name / "ran"
        if state in ("finished", "running"):
            assert not ran.exists()
        else:
            assert ran.read_text() == "--resume --no-plots\n"


def test_a_failing_run_records_failed(tmp_path: Path) -> None:
    """The runtime writes `failed` into run.json when the run ends with an exception (it was
    `running` forever before), so `show` tells a crashed point from a running one."""
    out = tmp_path / "job"
    assert driver.compile(str(ROOT / "specs/u1-smoke.l2h"), "pytorch", out).ok
    code = (
        "import runpy, sys\n"
        "sys.path.insert(0, '.')\n"
        "from l2hmcc_runtime.pt import trainer\n"
        "def broken(self):\n"
        "    raise RuntimeError('out of memory (a stand-in)')\n"
        "trainer.Trainer.train = broken\n"
        "sys.argv = ['train.py', '--device', 'cpu', '--no-plots']\n"
        "runpy.run_path('train.py', run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)},
    )
    assert proc.returncode != 0 and "out of memory (a stand-in)" in proc.stderr
    record = json.loads((out / "output/run.json").read_text())
    assert record["status"] == "failed" and record["ended_at"]
    assert show.point_state(show.report(out)["run"]) == "failed"


def test_plot_and_tables_of_a_hand_edited_record(
    campaign: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sweep.json someone edited: a spec name that is broken TeX (matplotlib's mathtext
    raised), a point value that is not among its axis's values (a KeyError), non-finite
    numbers in a summary (not JSON; the runtime writes null). Messages or a plot, exit 0."""
    out, names = campaign
    record = json.loads((out / "sweep.json").read_text())
    record["spec"]["name"] = "a$\\x^{$.l2h"
    record["points"][2]["values"][0]["value"] = "9.9"
    (out / "sweep.json").write_text(json.dumps(record))
    summary = out / names[4] / "output/summary.json"
    summary.write_text(summary.read_text().replace('"improvement": 2.5', '"improvement": NaN'))
    png = tmp_path / "a.png"
    args = ["show", str(out), "--no-spec", "--plot", "acceptance", "--plot-out", str(png)]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[1]: line.split() for line in lines if line[:1].isdigit()}
    assert rows[names[2]][2:4] == ["9.9", "2"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["show", str(out), "--format", "json"]) == 0
    text = capsys.readouterr().out
    assert ": NaN" not in text and ": Infinity" not in text
    assert json.loads(text)["points"][4]["summary"] == {
        "error": f"`{names[4]}/output/summary.json` is not valid JSON: it holds NaN or Infinity"
    }
