"""The case that made a job report a wrong plaquette without a word: 4D SU(3) on 4⁴ at β = 6,
hot start, a short training. Run as generated PyTorch jobs, it gives either the right plaquette
or ``equilibrated: false`` with a printed warning: without thermalization the evaluation climbs
from the hot start the whole time and the flag fires; with it, the flag clears and the plaquette
is the equilibrium value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jobs_helpers import run_job

from l2hmcc import driver
from l2hmcc.results import RunRecord, Summary

pytestmark = pytest.mark.slow

SPEC = """\
experiment su3_hot {{
    seed = 11
}}
lattice {{
    group = SU3
    shape = [4, 4, 4, 4]
    beta = 6.0
    start = hot
}}
dynamics {{
    leapfrog = 2
    step_size = 0.05
}}
network {{
    hidden = [8]
}}
train {{
    steps = 4
    chains = 4
    compile = false
    checkpoint_every = 0
}}
evaluate {{
    steps = 30
}}
hmc {{
    steps = 0
    step_size = 0.1
}}
thermalize {{
    max_trajectories = {cap}
}}
"""

#: ⟨Re tr U_P⟩/3 of SU(3) at β = 6 (4⁴ and larger lattices agree to the digits quoted here).
PLAQUETTE_BETA_6 = 0.597


def job(tmp_path: Path, cap: int) -> Path:
    spec = tmp_path / "su3-hot.l2h"
    spec.write_text(SPEC.format(cap=cap))
    outcome = driver.compile(str(spec), "pytorch", tmp_path / "job")
    assert outcome.ok, outcome.diagnostics
    return tmp_path / "job"


def test_an_unthermalized_evaluation_is_flagged(tmp_path: Path) -> None:
    out = run_job(job(tmp_path, cap=0), "--no-plots").stdout
    s = Summary.model_validate_json((tmp_path / "job/output/summary.json").read_text())
    assert s.l2hmc.equilibrated is False
    assert s.l2hmc.equilibrium is not None and s.l2hmc.equilibrium.reason is not None
    assert "drifts from" in s.l2hmc.equilibrium.reason
    assert "WARNING: L2HMC is not in equilibrium at beta = 6" in out
    assert s.l2hmc.plaquette.mean is not None and s.l2hmc.plaquette.mean < PLAQUETTE_BETA_6 - 0.05
    assert s.improvement is None and s.improvement_note is not None
    record = json.loads((tmp_path / "job/output/run.json").read_text())
    assert record["thermalization"] == []


def test_thermalization_clears_the_flag_with_the_right_plaquette(tmp_path: Path) -> None:
    out = run_job(job(tmp_path, cap=300), "--no-plots").stdout
    s = Summary.model_validate_json((tmp_path / "job/output/summary.json").read_text())
    assert s.l2hmc.equilibrated is True, s.l2hmc.equilibrium
    assert "WARNING" not in out
    plaq = s.l2hmc.plaquette
    assert plaq.mean is not None and plaq.err is not None
    # within 4σ of the equilibrium value (σ ≈ 0.002 here), and 0.01 for the quoted digits
    assert abs(plaq.mean - PLAQUETTE_BETA_6) < 4 * plaq.err + 0.01
    record = RunRecord.model_validate_json((tmp_path / "job/output/run.json").read_text())
    assert [t.before for t in record.thermalization] == ["training", "measuring"]
    assert all(t.converged and not t.tuned for t in record.thermalization)
    assert record.thermalization[0].plaquette_first_window < PLAQUETTE_BETA_6 - 0.05
    assert "thermalized at beta = 6" in out
