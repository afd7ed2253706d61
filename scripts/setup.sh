#!/usr/bin/env bash
# Idempotent set-up of the development environment in .venv:
#   python venv, l2hmcc (editable) with torch, tensorflow-cpu, deepspeed and the dev tools,
#   the patched Horovod build (scripts/build-horovod.sh), and shellcheck.
# Each step is skipped when it is already done, so a second run takes seconds.
# Usage: scripts/setup.sh [--minimal]   (--minimal: compiler + torch + dev tools only)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${L2HMCC_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
MINIMAL=0
[[ "${1:-}" == "--minimal" ]] && MINIMAL=1

log() { printf '[setup] %s\n' "$*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

extras="dev,torch"
[[ $MINIMAL == 0 ]] && extras="dev,torch,tf,deepspeed"
stamp="$VENV/.l2hmcc-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$extras"
if [[ ! -f "$stamp" ]]; then
    log "installing l2hmcc[$extras] (first time: a few minutes)"
    "$VPY" -m pip install -q --upgrade pip setuptools wheel
    # DeepSpeed: no JIT-compiled C++ ops at install time (CPU machine, no CUDA toolkit needed).
    DS_BUILD_OPS=0 "$VPY" -m pip install -q -e ".[$extras]"
    touch "$stamp"
else
    log "python packages up to date"
fi

if [[ $MINIMAL == 0 ]]; then
    if ! "$VPY" -c "import horovod.torch, horovod.tensorflow" >/dev/null 2>&1; then
        log "building Horovod 0.28.1 (first time: 5-10 minutes; the wheel is cached)"
        PYTHON="$VPY" bash scripts/build-horovod.sh
    else
        log "horovod present"
    fi
fi

if ! command -v shellcheck >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        log "installing shellcheck (Debian package)"
        (apt-get install -y -q shellcheck >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q shellcheck >/dev/null 2>&1; }) || log "shellcheck could not be installed"
    else
        log "shellcheck not found and cannot be installed here"
    fi
fi
log "ready: $VENV"
