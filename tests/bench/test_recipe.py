"""bench/recipe.py runs end to end on a tiny budget and writes what docs/recipe.md reads: per
sampler τ_int(Q) per trajectory, force and CPU second, the sine-charge jumps against integer
tunnelling, training curves and gradients at initialisation (no figure is asserted beyond
consistency: 30 trajectories say nothing about τ)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_recipe_runs_and_reports_every_sampler(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    cmd = [sys.executable, "bench/recipe.py", "--beta", "3", "--train-steps", "4"]
    cmd += ["--trajectories", "30", "--block", "10", "--grad-batches", "1", "--out", str(out)]
    cmd += ["zero-eps10"]
    r = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    v = res["variants"]["zero-eps10"]
    assert v["overrides"] == ["network.head_init=0", "train.step_size_lr_factor=10"]
    # zero heads: the networks' gradient is all in the heads, the step sizes' is the ablation's
    g, g0 = v["grads_at_init"], res["eps_only"]["grads_at_init"]
    assert g["charge_eps"] == pytest.approx(g0["charge_eps"], rel=1e-5)
    assert g["charge_nets"] > 0 and g0["charge_nets"] == 0
    for rec in (v, res["eps_only"], res["hmc"]):
        m = rec["measure"]
        assert m["trajectories"] == 28  # the start and 30 trajectories, minus 3 of burn-in
        j = m["jumps"]
        assert 0 <= j["tunnel_rate"] <= 1 and j["dQsin2"] >= 0
        if m["tau_q"]["value"] is not None:
            assert m["tau_forces"] == pytest.approx(m["tau_q"]["value"] * m["forces_per_traj"])
    assert res["hmc"]["measure"]["forces_per_traj"] == res["hmc"]["leapfrog_steps"] + 1
    assert v["measure"]["forces_per_traj"] == 17  # 8 merged layers: 2N + 1
    tables = subprocess.run(
        [sys.executable, "bench/recipe.py", "--tables", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "| zero-eps10 |" in tables and "| hmc |" in tables
