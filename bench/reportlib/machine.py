"""What the report ran on: CPU, cores, load, memory, GPU, versions, git state, commands."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def git_state() -> dict[str, Any]:
    def run(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    status = run("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": run("rev-parse", "HEAD") or None,
        "describe": run("log", "-1", "--format=%h %s") or None,
        "modified_tracked_files": len(status.splitlines()),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "numpy", "matplotlib", "l2hmcc"):
        try:
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "?"))
        except ImportError:
            out[name] = None
    return out


def gpu() -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "count": torch.cuda.device_count(),
        "memory_gib": round(props.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
        "capability": f"{props.major}.{props.minor}",
    }


def describe(argv: list[str]) -> dict[str, Any]:
    """Everything the report's header states about the machine and the run."""
    import torch

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "memory_gib": memory_gib(),
        "load_average_start": load_average(),
        "platform": platform.platform(),
        "gpu": gpu(),
        "versions": versions(),
        "git": git_state(),
        "torch_threads": torch.get_num_threads(),
        "env": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "TORCHINDUCTOR_CACHE_DIR", "CUDA_VISIBLE_DEVICES")
        },
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *argv]),
    }
