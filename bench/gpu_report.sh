#!/usr/bin/env bash
# The l2hmcc report on a GPU node (H100 / H200 / A100): bench/report.py in full mode on CUDA.
#
#   bash bench/gpu_report.sh                 # smoke check on CUDA (about a minute), then full
#   SMOKE_FIRST=0 bash bench/gpu_report.sh   # straight to the full report
#   bash bench/gpu_report.sh --sections throughput,physics     # extra report.py options
#   DEVICE=cpu MODE=smoke bash bench/gpu_report.sh             # dry run of this script on a CPU
#
# Full mode (bench/report.py, MODES["full"]): throughput with larger batches and lattices
# (L2HMC U(1) 16×16 seed network at 1024 chains, SU(3) 4⁴ at 64 chains; HMC U(1) 64×64 and
# SU(3) 8⁴), eager vs torch.compile on CUDA, fp32 vs fp64, plus fp32 links with bf16 networks
# (autocast); the U(1) physics of specs/u1-report.l2h with a larger budget; SU(3) 8⁴.
# Output: bench/results/DATE-full-gpu/ (report.md, report.json, PNGs, nvidia-smi.txt, log.txt).
#
# Environment: PYTHON (default .venv/bin/python, else python3), DEVICE (cuda), MODE (full),
# SMOKE_FIRST (1), OUT (output directory), OMP_NUM_THREADS (default 8: the host side of the
# CUDA runs; the frontend section times single processes regardless), TORCHINDUCTOR_CACHE_DIR
# (default: a cache next to the results, so a rerun measures warm compilation).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DEVICE="${DEVICE:-cuda}"
MODE="${MODE:-full}"
SMOKE_FIRST="${SMOKE_FIRST:-1}"
stamp="$(date +%Y-%m-%d-%H%M)"
OUT="${OUT:-bench/results/${stamp}-${MODE}-gpu}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}"
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-$repo/bench/results/inductor-cache}"
mkdir -p "$OUT" "$TORCHINDUCTOR_CACHE_DIR"

echo "python: $PYTHON ($("$PYTHON" --version 2>&1)); device: $DEVICE; mode: $MODE; out: $OUT"

# torch must see the device, and the compiler's and the plots' packages must import, before
# anything long starts. A fresh node: `scripts/setup.sh --minimal` (PyPI's Linux torch wheel is
# the CUDA build), or PYTHON=... pointing at an environment with torch (CUDA), numpy,
# matplotlib and l2hmcc's dependencies (lark, jinja2, pydantic, rich; `pip install -e .`).
"$PYTHON" - "$DEVICE" <<'EOF'
import sys

missing = []
for name in ("numpy", "matplotlib", "lark", "jinja2", "pydantic", "rich"):
    try:
        __import__(name)
    except ImportError:
        missing.append(name)
if missing:
    sys.exit(
        f"gpu_report.sh: {sys.executable} lacks {', '.join(missing)}: run scripts/setup.sh "
        "--minimal, or pip install -e . numpy matplotlib"
    )
import torch

device = sys.argv[1]
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuda available: {torch.cuda.is_available()}")
if device.startswith("cuda"):
    if not torch.cuda.is_available():
        sys.exit("gpu_report.sh: torch sees no CUDA device (use DEVICE=cpu for a dry run)")
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"  cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}")
    if not torch.cuda.is_bf16_supported():
        print("  warning: no bf16 support: the bf16-network variant will run in fp32")
EOF

if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
fi

mode_flag="--$MODE"
if [[ "$SMOKE_FIRST" == "1" && "$MODE" != "smoke" ]]; then
    echo "== smoke run on $DEVICE (fails fast if something is broken) =="
    "$PYTHON" bench/report.py --smoke --device "$DEVICE" --out "$OUT/smoke" "$@" \
        2>&1 | tee "$OUT/smoke-log.txt"
fi

echo "== $MODE report on $DEVICE =="
set +e
"$PYTHON" bench/report.py "$mode_flag" --device "$DEVICE" --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
status="${PIPESTATUS[0]}"
set -e
echo "report: $OUT/report.md (exit status $status)"
exit "$status"
