#!/usr/bin/env bash
# The l2hmcc report on a GPU node (H100 / H200 / A100): bench/report.py in full mode on CUDA.
#
#   bash bench/gpu_report.sh                 # smoke check on CUDA (about a minute), then full
#   SMOKE_FIRST=0 bash bench/gpu_report.sh   # straight to the full report
#   bash bench/gpu_report.sh --sections throughput,physics     # extra report.py options
#   DEVICE=cpu MODE=smoke bash bench/gpu_report.sh             # dry run of this script on a CPU
#   COST_ONLY=1 bash bench/gpu_report.sh     # only the cost figures (bench/bench_cost_gpu.py)
#
# First, before any device minute is spent measuring, `train.py --dry-run` of every job the
# report runs (l2hmcc/runtime/pt/dryrun.py: one train step, one L2HMC and one HMC trajectory
# on a fake device): a device mistake, or a peak memory per rank above the GPU's, stops the
# script there with the dry run's message (DRY_RUN=0 skips it; DRY_RUN=only stops after it,
# e.g. `DEVICE=cpu DRY_RUN=only bash bench/gpu_report.sh` on a login node). The jobs: specs/u1-report.l2h
# at the full mode's chains (128 train, 256 eval/HMC); specs/su3-smoke.l2h at 8⁴, 4 layers,
# 16 chains; the throughput workloads as jobs: specs/u1-seed.l2h at 1024 chains (fp32 and bf16
# networks), specs/su3-smoke.l2h at 4⁴ with 64 chains (fp64 and fp32).
#
# Full mode (bench/report.py, MODES["full"]) then produces exactly these figures:
# * throughput (report.md section 3, report.json "throughput"): L2HMC train steps/s and
#   trajectories/s of U(1) 16×16 with the seed network at 1024 chains and of SU(3) 4⁴ at 64
#   chains; HMC trajectories/s of U(1) 64×64 and SU(3) 8⁴; each eager and torch.compile, fp32
#   and fp64, plus fp32 links with bf16 networks (autocast), wall and process CPU seconds;
# * U(1) 16×16 physics of specs/u1-report.l2h (20000 train steps, 10000 trajectories of 256
#   chains for L2HMC and for HMC): acceptance, plaquette and <Q^2> against the exact values,
#   tunneling rate, tau_int(Q), cost per effective sample (section 5);
# * SU(3) 8⁴: HMC and L2HMC plaquette and acceptance against strong coupling and the β = 6
#   value (section 6); compile latency of every shipped spec (section 2);
# * the cost figures of bench/bench_cost.py on CUDA (bench/bench_cost_gpu.py, also in the
#   throughput section): L2HMC per force evaluation against the compiled HMC integrator (U(1)
#   16×16, 8 layers, `network none`, 64 and 1024 chains, fp32 and fp64), `hidden = [16]`
#   networks against their FLOP floor at the GPU's matmul peak (also fp32 links with bf16 and
#   fp16 networks), SU(3) 4⁴ and 8⁴ L2HMC compiled against eager (fp32, fp64), first calls;
#   COST_ONLY=1 runs just these (minutes, for a short device lease: cost.json, cost-log.txt);
# * the dry run's peak memory per rank of each job above (dry-run/*.json) beside the GPU's.
# Output: bench/results/DATE-full-gpu/ (report.md, report.json, PNGs, nvidia-smi.txt, log.txt,
# dry-run/).
#
# Environment: PYTHON (default .venv/bin/python, else python3), DEVICE (cuda), MODE (full),
# SMOKE_FIRST (1), DRY_RUN (1), COST_ONLY (0), OUT (output directory), OMP_NUM_THREADS (default 8: the host side of the
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
DRY_RUN="${DRY_RUN:-1}"
COST_ONLY="${COST_ONLY:-0}"
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

if [[ "$DRY_RUN" != "0" ]]; then
    fake="${DEVICE%%:*}"
    [[ "$fake" == "cpu" ]] && fake=cuda
    echo "== dry run of the report's jobs on a fake $fake device (stops here on a mistake) =="
    dry="$OUT/dry-run"
    mkdir -p "$dry"
    # name|spec|--set overrides: the jobs the report runs, as generated train.py jobs
    while IFS='|' read -r name spec sets; do
        args=()
        for s in $sets; do args+=(--set "$s"); done
        if ! "$PYTHON" -m l2hmcc compile "$spec" --target pytorch -o "$dry/$name" --force \
            "${args[@]}" >"$dry/$name.compile.txt" 2>&1; then
            cat "$dry/$name.compile.txt"
            echo "gpu_report.sh: $spec did not compile; stopping before the report" >&2
            exit 1
        fi
        if ! "$PYTHON" "$dry/$name/train.py" --dry-run --device "$fake" \
            --json "$dry/$name.json" >"$dry/$name.txt" 2>&1; then
            cat "$dry/$name.txt"
            echo "gpu_report.sh: the dry run of $name failed (above); stopping before the report" >&2
            exit 1
        fi
        grep -E "peak memory per rank|note:" "$dry/$name.txt" | sed "s/^/  $name: /"
    done <<'JOBS'
u1-report|specs/u1-report.l2h|train.chains=128 evaluate.chains=256 hmc.chains=256
su3-8x4|specs/su3-smoke.l2h|lattice.shape=[8,8,8,8] dynamics.leapfrog=4 train.chains=16 evaluate.chains=16 hmc.chains=16
u1-seed-1024|specs/u1-seed.l2h|train.chains=1024 evaluate.chains=1024 hmc.chains=1024
u1-seed-1024-bf16|specs/u1-seed.l2h|train.chains=1024 evaluate.chains=1024 hmc.chains=1024 train.network_precision=bf16
su3-4x4-64|specs/su3-smoke.l2h|lattice.shape=[4,4,4,4] train.chains=64 evaluate.chains=64 hmc.chains=64
su3-4x4-64-fp32|specs/su3-smoke.l2h|lattice.shape=[4,4,4,4] train.chains=64 evaluate.chains=64 hmc.chains=64 train.precision=fp32
JOBS
    # every job's peak per rank must fit the device the report runs on
    "$PYTHON" - "$DEVICE" "$dry" <<'EOF'
import json
import sys
from pathlib import Path

device, dry = sys.argv[1], Path(sys.argv[2])
total = None
if device.startswith("cuda"):
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
for f in sorted(dry.glob("*.json")):
    peak = json.loads(f.read_text())["peak_bytes_per_rank"]
    print(f"  {f.stem:<20} peak per rank {peak / 2**30:7.2f} GiB"
          + (f" of the device's {total / 2**30:.1f} GiB" if total else ""))
    if total and peak > total:
        sys.exit(f"gpu_report.sh: {f.stem} needs {peak / 2**30:.1f} GiB per rank, more than "
                 f"the device's {total / 2**30:.1f} GiB; stopping before the report")
EOF
    # the cost benchmark's machinery on the CPU with torch.compile off (seconds; no figures)
    if ! "$PYTHON" bench/bench_cost_gpu.py --device cpu --dry-run --json "$dry/cost.json" \
        >"$dry/cost.txt" 2>&1; then
        cat "$dry/cost.txt"
        echo "gpu_report.sh: the dry run of bench/bench_cost_gpu.py failed (above); stopping" >&2
        exit 1
    fi
    echo "  bench_cost_gpu.py: dry run passed"
    if [[ "$DRY_RUN" == "only" ]]; then
        echo "dry run passed: $dry"
        exit 0
    fi
fi

if [[ "$COST_ONLY" == "1" ]]; then
    echo "== cost figures on $DEVICE (bench/bench_cost_gpu.py) =="
    cost_flags=()
    if [[ "$MODE" == "smoke" ]]; then
        # a smoke run on a CPU is the benchmark's dry run (torch.compile off, seconds)
        if [[ "$DEVICE" == "cpu" ]]; then cost_flags+=(--dry-run); else cost_flags+=(--quick); fi
    fi
    set +e
    "$PYTHON" bench/bench_cost_gpu.py --device "$DEVICE" "${cost_flags[@]}" \
        --json "$OUT/cost.json" 2>&1 | tee "$OUT/cost-log.txt"
    status="${PIPESTATUS[0]}"
    set -e
    echo "cost: $OUT/cost.json (exit status $status)"
    exit "$status"
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
