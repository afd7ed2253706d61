#!/usr/bin/env bash
# Set up (idempotent) and run the main job: check every shipped spec, compile each one for
# its target into jobs/, then train specs/u1-smoke.l2h locally on CPU (about half a minute)
# and print its summary.
# Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --minimal
L2HMCC=.venv/bin/l2hmcc

echo "== check"
$L2HMCC check specs/*.l2h examples/*.l2h
$L2HMCC fmt --check specs/*.l2h examples/*.l2h

echo "== compile"
compile() {  # spec target
    $L2HMCC compile "$1" --target "$2" -o "jobs/$(basename "$1" .l2h)-$2" --force
}
compile specs/u1-smoke.l2h pytorch
compile specs/su3-smoke.l2h pytorch
compile specs/u1.l2h pytorch
compile specs/u1-seed.l2h pytorch
compile specs/su3.l2h pytorch-deepspeed
compile specs/aurora.l2h pytorch-ddp

echo "== train specs/u1-smoke.l2h here (CPU): L2HMC vs tuned HMC, 4x4 U(1) at beta = 2"
PYTHON=$PWD/.venv/bin/python OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
    jobs/u1-smoke-pytorch/run-local.sh --train-steps 500 --eval-steps 500 --hmc-steps 500 \
    --log-every 100

echo "== what a mistake looks like"
printf 'lattice { group = U1  shape = [16, 16]  beta = 4.0 }\ndynamics { leapfrogs = 8 }\n' \
    > jobs/typo.l2h
$L2HMCC check jobs/typo.l2h || true
echo "demo finished: job directories are in jobs/; the trained job's outputs (summary.json,"
echo "run.json, histories, plots) are in jobs/u1-smoke-pytorch/output/"
