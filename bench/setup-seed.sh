#!/usr/bin/env bash
# Install the seed (PyPI l2hmc 0.13.0) into its own venv, bench/.seed-venv, for the side-by-side
# section of bench/bench_cost.py (bench/seed_runner.py runs in it). Idempotent: a second run
# only checks. Outside the project's .venv, so the project's dependencies stay its own.
#
# Only what the seed's PyTorch U(1)/SU(3) dynamics, networks and loss import is installed
# (the package's declared dependencies pull Horovod, Weights & Biases, aim, neovim, ...,
# which its trainer needs and the runner does not), plus one fix its code needs on
# Python >= 3.11: configs.py gives dataclass fields dataclass-instance defaults, which 3.11
# refuses; they become field(default_factory=...). The seed's code is otherwise unchanged.
#
#   bench/setup-seed.sh            # then: .venv/bin/python bench/bench_cost.py
#   SEED_VENV=/elsewhere bench/setup-seed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SEED_VENV:-bench/.seed-venv}
PY=${PYTHON:-$(.venv/bin/python -c 'import sys; print(sys._base_executable)' 2>/dev/null || command -v python3)}

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
if ! "$VENV/bin/python" -c 'import l2hmc, torch, tensorflow, hydra, scipy' 2>/dev/null; then
    # torch first and pinned: an open requirement may pull a multi-GB CUDA build
    pip install torch==2.13.0
    pip install numpy scipy hydra-core omegaconf tensorflow-cpu
    pip install --no-deps l2hmc==0.13.0
fi

CONFIGS=$("$VENV/bin/python" - <<'EOF'
import importlib.util
print(importlib.util.find_spec("l2hmc").submodule_search_locations[0] + "/configs.py")
EOF
)
"$VENV/bin/python" - "$CONFIGS" <<'EOF'
import re
import sys
from pathlib import Path

path = Path(sys.argv[1])
text = path.read_text()
# `x: NetWeight = NetWeight(1., 1., 1.)` -> `x: NetWeight = field(default_factory=lambda: ...)`
fixed = re.sub(
    r"^(\s+\w+: (\w+) = )(\2\(.*\))$",
    r"\1field(default_factory=lambda: \3)",
    text,
    flags=re.M,
)
if "from dataclasses import field" not in fixed:
    fixed = fixed.replace("from dataclasses import", "from dataclasses import field\nfrom dataclasses import", 1)
if fixed != text:
    path.write_text(fixed)
    print(f"patched {path}")
EOF
# the seed restores any checkpoint under its own package directory: keep none there
"$VENV/bin/python" - <<'EOF'
import importlib.util
import shutil
from pathlib import Path

pkg = Path(importlib.util.find_spec("l2hmc").submodule_search_locations[0])
shutil.rmtree(pkg / "checkpoints", ignore_errors=True)
EOF
"$VENV/bin/python" -c 'import l2hmc.dynamics.pytorch.dynamics, l2hmc.loss.pytorch.loss' \
    && echo "seed ready: $VENV (l2hmc 0.13.0)"
