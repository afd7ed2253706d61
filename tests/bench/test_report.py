"""bench/report.py runs end to end in its smoke mode (4×4 U(1), 2⁴ SU(3), a handful of steps):
every section is in the markdown, the figures exist, and the numbers are finite. No wall time
is asserted (the report is a benchmark; the machine may be loaded)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from reportlib import references, render  # noqa: E402
from reportlib.render import SECTIONS  # noqa: E402


def _numbers(value: Any, path: str = "") -> list[tuple[str, float]]:
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _numbers(v, f"{path}[{i}]")]
    if isinstance(value, float | int) and not isinstance(value, bool):
        return [(path, float(value))]
    return []


@pytest.fixture(scope="module")
def report(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("report")
    proc = subprocess.run(
        [sys.executable, "bench/report.py", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    return out, proc


@pytest.mark.slow
def test_smoke_report_has_every_section(report: tuple[Path, Any]) -> None:
    out, proc = report
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = (out / "report.md").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"\n## {section}\n" in text, section
    assert "## Failures" not in text
    assert "Not run." not in text
    for png in ("compile-latency", "throughput", "tau-and-cost", "charge-history", "training"):
        assert (out / f"{png}.png").stat().st_size > 1000, png
        assert f"]({png}.png)" in text


@pytest.mark.slow
def test_smoke_report_numbers_are_finite(report: tuple[Path, Any]) -> None:
    out, proc = report
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    for path, x in _numbers(data):
        assert math.isfinite(x), path
    # the figures the report is about are present and finite (None would mean inf/nan)
    for r in data["physics"]["results"]:
        for key in ("l2hmc", "leapfrog", "hmc", "hmc_long"):
            s = r[key]
            assert 0.0 <= s["acceptance"] <= 1.0
            assert -1.0 <= s["plaquette"]["mean"] <= 1.0
            assert s["plaquette"]["err"] is not None and s["q2"]["exact"] > 0
            assert s["tau_q"]["value"] is not None and s["tau_q"]["value"] >= 0.0
        assert r["l2hmc"]["cost_s"] > 0 and r["hmc"]["cost_s"] > 0
        assert r["l2hmc"]["cost_per_eff_s"] > 0 and r["hmc"]["cost_per_eff_s"] > 0
    kinds = {(r["kind"], r["workload"]) for r in data["throughput"]["results"]}
    assert kinds == {("l2hmc", "u1"), ("l2hmc", "su3"), ("hmc", "u1"), ("hmc", "su3")}
    for r in data["throughput"]["results"]:
        assert r["traj"]["cpu_s"] > 0 and r["traj"]["wall_s"] > 0
    for r in data["su3"]["results"]:
        assert r["reference"]["value"] > 0
        for key in ("hmc", "l2hmc"):
            assert 0.0 <= r[key]["acceptance"] <= 1.0
    assert all(r["check"] and r["compile"] for r in data["frontend"]["specs"])


@pytest.mark.slow
def test_rerender_rewrites_the_report_from_its_json(report: tuple[Path, Any]) -> None:
    out, proc = report
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out / "report.md").unlink()
    (out / "tau-and-cost.png").unlink()
    r = subprocess.run(
        [sys.executable, "bench/report.py", "--rerender", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    text = (out / "report.md").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"\n## {section}\n" in text, section
    assert (out / "tau-and-cost.png").stat().st_size > 1000
    assert (out / "charge-history.png").stat().st_size > 1000  # from physics-series.npz


@pytest.mark.slow
def test_su3_prose_quotes_the_reference_data(
    report: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SU(3) section's prose reads the published β = 6 value and its source from
    ``references`` instead of repeating them."""
    out, proc = report
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    monkeypatch.setitem(references.PUBLISHED_SU3_PLAQUETTE, 6.0, (0.61234, None, "made-up source"))
    text = render._su3(data["su3"])
    assert "0.61234 (made-up source)" in text and "above 0.6123 by" in text
    assert "0.5937" not in text.split("**Volume dependence.**")[1]
