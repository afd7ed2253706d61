"""bench/bench_cost_gpu.py (the CUDA counterpart of bench_cost.py) dry-runs on a CPU: every
section produces its rows with finite figures, in bench_cost.py's layout; asking for CUDA where
torch sees none stops with a message, not a traceback. No time is asserted."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bench/bench_cost_gpu.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "TORCHINDUCTOR_CACHE_DIR": str(tmp / "ind")},
    )


@pytest.mark.slow
def test_dry_run_on_cpu_has_every_section(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    proc = _run("--device", "cpu", "--dry-run", "--json", str(out), tmp=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [r["section"] for r in rows] == ["peak", "cost", "su3"]
    cost, su3 = rows[1], rows[2]
    assert cost["chains"] == 64 and cost["precision"] == "fp32" and cost["time"] == "CPU s"
    assert set(cost["traj_ms"]) == {"hmc", "none", "hidden16", "local"}
    for key in ("hmc_ms_per_force", "l2hmc_ms_per_force", "net_floor_ms", "net_over_floor"):
        assert math.isfinite(cost[key]) and cost[key] > 0, key
    assert su3["shape"] == [2, 2, 2, 2] and su3["precision"] == "fp64"
    for key in ("trajectory_eager_s", "trajectory_compiled_s", "train_eager_s", "train_speedup"):
        assert math.isfinite(su3[key]) and su3[key] > 0, key
    assert "per force: L2HMC" in proc.stdout and "eager / compiled" in proc.stdout


def test_cuda_without_a_device_is_a_message(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = _run("--device", "cuda", "--quick", tmp=tmp_path)
    assert proc.returncode != 0
    assert "torch sees no CUDA device" in proc.stderr
    assert "Traceback" not in proc.stderr
