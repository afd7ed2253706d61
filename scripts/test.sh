#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set up (idempotent), lint, type-check, test.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/test_syntax.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_NUM_INTRAOP_THREADS=1
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$PWD/.venv/inductor-cache}
V=.venv/bin
# Generated jobs and launchers call `python`, `torchrun`, `deepspeed`, `horovodrun`: use the venv's.
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
echo "== ruff" && $V/ruff check . && $V/ruff format --check .
echo "== mypy" && $V/mypy
echo "== pytest"
set +e
$V/python -m pytest -n "${PYTEST_WORKERS:-2}" --durations=30 "$@"
rc=$?
set -e
if [[ $rc == 5 ]]; then
    echo "pytest collected no tests"
    rc=0
fi
exit $rc
