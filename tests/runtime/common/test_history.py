"""History recording, atomic .npz round trip, rank-0 writes; figures and summaries from it."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from l2hmcc.runtime.common import exact
from l2hmcc.runtime.common.history import History, process_rank
from l2hmcc.runtime.common.plots import plot_history
from l2hmcc.runtime.common.summary import format_summary, summarize, write_summary


def _history(n: int = 200, chains: int = 4, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    h = History()
    q = np.zeros(chains)
    for step in range(n):
        q = q + (rng.random(chains) < 0.1) * rng.choice([-1.0, 1.0], chains)
        h.append(
            accept_prob=rng.random(chains),
            plaquette=0.7 + 0.01 * rng.standard_normal(chains),
            charge=q.copy(),
            sin_charge=q + 0.1 * rng.standard_normal(chains),
            dH=0.1 * rng.standard_normal(chains),
            time_s=0.01,
        )
        if step % 10 == 0:
            h.append({"loss": float(step)}, step=step)
    return h


def test_append_and_read_back() -> None:
    h = _history(50)
    assert len(h) == 50
    assert h["plaquette"].shape == (50, 4) and h["plaquette"].dtype == np.float32
    assert h["loss"].shape == (5,)
    np.testing.assert_array_equal(h.steps("loss"), np.arange(0, 50, 10))
    assert h.mean("time_s") == pytest.approx(0.01)
    with pytest.raises(ValueError, match="shape"):
        h.append(plaquette=np.zeros(3))
    with pytest.raises(KeyError):
        h["nope"]


def test_tensors_are_accepted_without_importing_torch_here() -> None:
    class FakeTensor:  # the duck type History relies on (torch: .detach().cpu().numpy())
        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return np.array([1.0, 2.0], dtype=np.float64)

    h = History(np.float64)
    h.append(x=FakeTensor())
    assert h["x"].dtype == np.float64 and h["x"].tolist() == [[1.0, 2.0]]


def test_save_load_round_trip_is_atomic(tmp_path: Path) -> None:
    h = _history(30)
    path = h.save(tmp_path / "hist.npz", rank=0)
    assert path == tmp_path / "hist.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hist.npz"]  # no temporary left
    g = History.load(path)
    assert g.keys() == h.keys() and len(g) == len(h)
    for k in h:
        np.testing.assert_array_equal(g[k], h[k])
        np.testing.assert_array_equal(g.steps(k), h.steps(k))
    g.append(plaquette=np.zeros(4))  # a loaded history keeps growing
    assert len(g) == 31
    e = History()
    e.extend(h)
    np.testing.assert_array_equal(e["loss"], h["loss"])


def test_only_rank_zero_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = _history(5)
    assert h.save(tmp_path / "a.npz", rank=1) is None
    for var in ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "PALS_RANKID", "HOROVOD_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert process_rank() == 0
    monkeypatch.setenv("PMI_RANK", "3")
    assert process_rank() == 3
    assert h.save(tmp_path / "b.npz") is None
    assert write_summary(tmp_path / "s.json", {"a": 1}) is None
    assert list(tmp_path.iterdir()) == []


def test_plots_are_written(tmp_path: Path) -> None:
    files = plot_history(_history(60), tmp_path / "figs", exact_plaquette=0.7)
    names = sorted(p.name for p in files)
    assert names == ["acceptance.png", "charge.png", "dq.png", "loss.png", "plaquette.png"]
    for p in files:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == names


def test_summary_figures(tmp_path: Path) -> None:
    h = _history(400, seed=1)
    s = summarize(h, beta=2.0, group="U1", dims=2, volume=64, burn_in=10)
    assert s["n_records"] == 390
    assert s["acceptance"]["mean"] == pytest.approx(0.5, abs=0.05)
    assert s["plaquette"]["exact"] == pytest.approx(exact.u1_plaquette(2.0, 64))
    assert s["plaquette"]["exact_kind"] == "finite volume"
    assert s["charge"]["mean_abs_dq"] == pytest.approx(0.1, abs=0.03)
    assert s["charge"]["tau_int"] > 1.0  # a random walk is strongly correlated
    assert s["charge"]["q2"]["exact"] == pytest.approx(exact.u1_q2(2.0, 64))
    assert s["time_s"] == pytest.approx(3.9)
    assert s["dH"]["exp_minus_dH"]["mean"] == pytest.approx(math.exp(0.005), abs=0.01)
    path = write_summary(tmp_path / "summary.json", s, rank=0)
    assert json.loads(path.read_text()) == json.loads(json.dumps(s))
    text = format_summary(s)
    assert "plaquette: 0.70" in text and "charge: τ_int" in text


def test_common_imports_neither_torch_nor_matplotlib() -> None:
    code = (
        "import sys\n"
        "import l2hmcc.runtime, l2hmcc.runtime.common.autocorr, l2hmcc.runtime.common.exact\n"
        "import l2hmcc.runtime.common.history, l2hmcc.runtime.common.plots\n"
        "import l2hmcc.runtime.common.loop, l2hmcc.runtime.common.summary\n"
        "bad = {'torch', 'tensorflow', 'matplotlib', 'scipy', 'lark', 'jinja2', 'pydantic'}\n"
        "print(sorted(bad & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
