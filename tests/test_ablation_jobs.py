"""The ablation switch, run for real: ``evaluate { ablation = true }`` (or ``train.py
--ablation``) also trains the spec without networks and evaluates it beside the trained
sampler; ``summary.json`` gets an ``ablation`` block (validated against ``l2hmcc.results``) and
``l2hmcc show`` a column, and the trained sampler's and HMC's records are the same as without
the ablation.  Budget: 4×4 U(1), tens of steps, a few seconds per PyTorch run (TensorFlow:
its import, ~20 s).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from jobs_helpers import require, run_job

from l2hmcc import driver, show
from l2hmcc.results import Summary

SPEC = """experiment abl {{ seed = 5 }}
lattice {{ group = U1  shape = [4, 4]  beta = 2.0 }}
dynamics {{ leapfrog = 2  step_size = 0.1 }}
network {{ hidden = [8] }}
train {{ steps = 8  chains = 4  lr = 0.01  step_size_lr_factor = 5  compile = false
        checkpoint_every = 0 }}
evaluate {{ steps = 6{ablation} }}
hmc {{ steps = 6  step_size = 0.2 }}
"""


def _job(tmp_path: Path, name: str, target: str, ablation: bool) -> Path:
    spec = tmp_path / f"{name}.l2h"
    spec.write_text(SPEC.format(ablation="  ablation = true" if ablation else ""))
    d = tmp_path / name
    outcome = driver.compile(str(spec), target, d)
    assert outcome.ok, outcome.diagnostics
    return d


def _summary(out: Path) -> Summary:
    return Summary.model_validate(json.loads((out / "summary.json").read_text()))


def test_spec_ablation_trains_without_networks_and_leaves_the_sampler_alone(
    tmp_path: Path,
) -> None:
    with_ab = _job(tmp_path, "with", "pytorch", ablation=True)
    without = _job(tmp_path, "without", "pytorch", ablation=False)
    assert "ablation=True" in (with_ab / "train.py").read_text()
    assert "step_size_lr_factor=5.0" in (with_ab / "train.py").read_text()
    proc = run_job(with_ab, "--no-plots")
    run_job(without, "--no-plots")
    assert "networks' gain" in proc.stdout
    s = _summary(with_ab / "output")
    ab = s.ablation
    assert ab is not None and _summary(without / "output").ablation is None
    assert ab.trajectories == 6 and ab.train.steps == 8 and ab.chains == 4
    # the ablation learned its step sizes (they moved from ε₀ = 0.1), and has no networks
    assert all(not math.isclose(e, 0.1, rel_tol=1e-6) for e in ab.train.step_sizes)
    assert ab.train.step_sizes != s.train.step_sizes
    hist = with_ab / "output" / "history"
    assert (hist / "ablation-train.npz").is_file() and (hist / "ablation-eval.npz").is_file()
    # the trained sampler's evaluation and HMC are those of the run without the ablation
    for name in ("train", "eval", "hmc"):
        a, b = np.load(hist / f"{name}.npz"), np.load(without / "output/history" / f"{name}.npz")
        for key in ("plaquette", "charge", "accept_prob"):
            if key in b.files:
                assert np.array_equal(a[key], b[key]), (name, key)
    # `l2hmcc show` has a column for it and the networks' gain
    text = show.render_plain(show.report(with_ab), with_spec=False)
    assert "no networks" in text and "networks' gain" in text


@pytest.mark.tf
def test_tensorflow_ablation_option(tmp_path: Path) -> None:
    require("tensorflow", "the TensorFlow runtime")
    d = _job(tmp_path, "tf", "tensorflow", ablation=False)
    run_job(d, "--ablation", "--no-plots", timeout=600)
    ab = _summary(d / "output").ablation
    assert ab is not None and ab.train.steps == 8 and ab.trajectories == 6
    assert all(not math.isclose(e, 0.1, rel_tol=1e-6) for e in ab.train.step_sizes)


def test_the_ablation_keeps_the_fourier_filter(tmp_path: Path) -> None:
    """`dynamics.fourier` belongs to the dynamics: the ablation removes the networks and keeps
    the filter, whose masses it trains with its step sizes (`train.fourier_masses`); and
    `hmc { fourier }` runs the Fourier-accelerated HMC baseline."""
    spec = tmp_path / "fa.l2h"
    spec.write_text(
        SPEC.format(ablation="  ablation = true")
        .replace("step_size = 0.1 }", "step_size = 0.1  fourier = 0.7 }")
        .replace("network { hidden = [8] }", "network local { hidden = [4] }")
        .replace("step_size = 0.2 }", "step_size = 0.2  fourier = 0.5 }")
    )
    d = tmp_path / "fa"
    outcome = driver.compile(str(spec), "pytorch", d)
    assert outcome.ok, outcome.diagnostics
    train_py = (d / "train.py").read_text()
    assert "fourier=0.7" in train_py and "fourier=0.5" in train_py  # dynamics, hmc
    run_job(d, "--no-plots")
    s = _summary(d / "output")
    assert s.ablation is not None
    for masses in (s.train.fourier_masses, s.ablation.train.fourier_masses):
        assert masses is not None and len(masses) == 2
        assert all(not math.isclose(m, 0.7, rel_tol=1e-6) for m in masses)  # learned
    assert s.ablation.train.fourier_masses != s.train.fourier_masses
    # the HMC baseline ran Fourier-accelerated (fixed mass², ε = 0.2)
    assert s.hmc is not None and s.hmc.trajectories == 6 and s.hmc.fourier == 0.5
    assert s.hmc.acceptance is not None and 0 < s.hmc.acceptance <= 1
