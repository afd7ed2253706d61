"""The job driver's framework-neutral parts: summary.json from histories, the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from l2hmcc.results import Summary
from l2hmcc.runtime.common import exact
from l2hmcc.runtime.common.config import DynamicsConfig
from l2hmcc.runtime.common.history import History
from l2hmcc.runtime.common.run import (
    Experiment,
    build_summary,
    format_report,
    improvement,
    n_plaquettes,
    parse_args,
    sampler_rate,
    sampler_summary,
    with_costs,
)

EXPERIMENT = Experiment("e", "", 1, "specs/e.l2h", "ab" * 32, "pytorch", "0.1.0")


def _history(n: int, chains: int, rng: np.random.Generator, *, step_time: float = 0.5) -> History:
    h = History()
    q = np.zeros(chains)
    for i in range(n):
        q = q + rng.integers(-1, 2, size=chains) * (rng.random(chains) < 0.3)
        h.append(
            {
                "accept_prob": rng.random(chains),
                "plaquette": 0.7 + 0.01 * rng.standard_normal(chains),
                "charge": q.copy(),
                "time_s": 10.0 if i == 0 else step_time,  # the first step holds a compile
            }
        )
    return h


def test_n_plaquettes() -> None:
    assert n_plaquettes((4, 4)) == 16
    assert n_plaquettes((2, 2, 2, 2)) == 16 * 6


def test_rate_drops_the_warm_up_record() -> None:
    h = _history(11, 4, np.random.default_rng(0))
    assert sampler_rate(h, 4, phase_time_s=99.0) == pytest.approx(10 * 4 / (10 * 0.5))
    bare = History()
    for _ in range(5):
        bare.append({"accept_prob": np.ones(2)})
    assert sampler_rate(bare, 2, phase_time_s=2.0) == pytest.approx(5 * 2 / 2.0)


def test_sampler_summary_u1_exact_values_and_schema() -> None:
    rng = np.random.default_rng(1)
    h = _history(200, 8, rng)
    s = sampler_summary(h, group="U1", shape=(4, 4), beta=2.0, chains=8, time_s=120.0, burn_in=20)
    assert s["trajectories"] == 200 and s["burn_in"] == 20
    assert s["plaquette"]["exact"] == pytest.approx(exact.u1_plaquette(2.0))
    assert s["plaquette"]["exact_finite_volume"] == pytest.approx(exact.u1_plaquette(2.0, 16))
    assert s["q2"]["exact"] == pytest.approx(exact.u1_q2(2.0, 16))
    assert s["plaquette"]["mean"] == pytest.approx(0.7, abs=0.01)
    assert s["tau_int_q"]["value"] is not None and s["tau_int_q"]["value"] > 0.5  # a random walk
    su3 = sampler_summary(h, group="SU3", shape=(2, 2, 2, 2), beta=6.0, chains=8, time_s=1.0)
    assert su3["plaquette"]["exact"] is None and su3["q2"]["exact"] is None
    summary = build_summary(EXPERIMENT, world_size=2, beta=2.0, train=_train(), l2hmc=s, hmc=None)
    Summary.model_validate(summary)  # the published schema
    assert summary["improvement"] is None
    assert "e (pytorch, 2 rank(s))" in format_report(summary)


def test_the_terminal_report_says_whether_each_record_is_trustworthy() -> None:
    """Every sampler line says whether its record was in equilibrium and, when the τ window did
    not converge, says that beside τ_int(Q)."""
    h = _history(200, 8, np.random.default_rng(1))
    s = sampler_summary(h, group="U1", shape=(4, 4), beta=2.0, chains=8, time_s=1.0)
    summary = build_summary(EXPERIMENT, world_size=1, beta=2.0, train=_train(), l2hmc=s, hmc=None)
    line = next(x for x in format_report(summary).splitlines() if x.lstrip().startswith("L2HMC"))
    assert line.endswith(f"equilibrated {'yes' if s['equilibrated'] else 'NO'}")
    s = {**s, "equilibrated": False, "tau_int_q": {**s["tau_int_q"], "converged": False}}
    summary = build_summary(EXPERIMENT, world_size=1, beta=2.0, train=_train(), l2hmc=s, hmc=None)
    text = format_report(summary)
    assert "(window not converged)" in text and "equilibrated NO" in text
    assert "WARNING: L2HMC is not in equilibrium" in text


def _train() -> dict[str, object]:
    return {
        "steps": 1,
        "total_steps": 1,
        "chains": 8,
        "time_s": 1.0,
        "resumed_from_step": None,
        "final_loss": 0.5,
        "step_sizes": [0.1],
    }


def test_improvement_is_cost_per_independent_charge() -> None:
    def block(tau: float | None, rate: float | None) -> dict[str, object]:
        return {"tau_int_q": {"value": tau, "err": None}, "trajectories_per_s": rate}

    # HMC: τ = 10 at 100 traj/s (0.1 s per independent Q); L2HMC: τ = 2 at 40 traj/s (0.05 s)
    assert improvement(block(2.0, 40.0), block(10.0, 100.0)) == pytest.approx(2.0)
    assert improvement(block(None, 40.0), block(10.0, 100.0)) is None


def test_forces_per_trajectory_of_each_direction_scheme() -> None:
    """Merged ``B^N ∘ flip ∘ F^N`` passes through 2N + 1 states, one direction N + 1."""
    assert DynamicsConfig(leapfrog=8).forces_per_trajectory == 17
    assert DynamicsConfig(leapfrog=8, directions="random").forces_per_trajectory == 9
    assert DynamicsConfig(leapfrog=1).forces_per_trajectory == 3


def test_each_sampler_reports_tau_per_force_and_per_second_beside_per_trajectory() -> None:
    h = _history(200, 8, np.random.default_rng(1))
    s = sampler_summary(h, group="U1", shape=(4, 4), beta=2.0, chains=8, time_s=1.0)
    tau, rate = s["tau_int_q"]["value"], s["trajectories_per_s"]
    assert rate == pytest.approx(199 * 8 / (199 * 0.5))
    costed = with_costs(s, 17)
    assert costed["forces_per_trajectory"] == 17
    assert costed["tau_int_q_forces"] == pytest.approx(17 * tau)
    assert costed["tau_int_q_seconds"] == pytest.approx(tau / rate)
    ablation = {**costed, "equilibrated": False}
    summary = build_summary(
        EXPERIMENT,
        world_size=1,
        beta=2.0,
        train=_train(),
        l2hmc=costed,
        hmc=None,
        ablation={**ablation, "train": _train()},
    )
    Summary.model_validate(summary)
    text = format_report(summary)
    line = next(x for x in text.splitlines() if x.lstrip().startswith("L2HMC"))
    assert f"(= {17 * tau:.3g} forces, {tau / rate:.3g} s)" in line
    assert "WARNING: no-NN is not in equilibrium" in text
    none = with_costs({**s, "tau_int_q": {**s["tau_int_q"], "value": None}}, 9)
    assert none["tau_int_q_forces"] is None and none["tau_int_q_seconds"] is None


def test_parse_args_defaults_and_overrides(tmp_path: Path) -> None:
    a = parse_args([], job_dir=tmp_path)
    assert a.out == tmp_path / "output" and not a.resume and a.compile is None
    b = parse_args(
        ["--out", "x", "--resume", "--train-steps", "3", "--no-compile", "--local_rank=1"],
        job_dir=tmp_path,
    )
    assert (b.out, b.resume, b.train_steps, b.compile, b.local_rank) == (
        Path("x"),
        True,
        3,
        False,
        1,
    )
    with pytest.raises(SystemExit):
        parse_args(["--train-steps", "-1"], job_dir=tmp_path)
