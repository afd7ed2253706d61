#!/usr/bin/env bash
# Build Horovod 0.28.1 (the latest release) from its PyPI sdist, for the torch and TensorFlow
# installed in $PYTHON's environment, with Gloo and without MPI, and install it.
#
# Horovod 0.28.1 as released does not build against torch >= 2.1 or TF >= 2.16: it compiles with
# C++14 while their headers need C++17, and TF wheels lack the headers of the XLA-only source
# xla_mpi_ops.cc. Two edits fix both (see ../shared/reference/dependencies.md):
#   1. CMAKE_CXX_STANDARD 14 -> 17 in the top-level and torch CMakeLists.txt;
#   2. drop xla_mpi_ops.cc from the TensorFlow sources.
# The wheel is cached in ${L2HMCC_CACHE:-~/.cache/l2hmcc}/wheels, keyed by torch and TF versions.
set -euo pipefail
PY=${PYTHON:-python3}
CACHE=${L2HMCC_CACHE:-$HOME/.cache/l2hmcc}/wheels
mkdir -p "$CACHE"
key=$("$PY" - <<'PYEOF'
import sys
import importlib.metadata as md

def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "none"

tf = version("tensorflow-cpu")
if tf == "none":
    tf = version("tensorflow")
print(f"py{sys.version_info[0]}{sys.version_info[1]}-torch{version('torch')}-tf{tf}")
PYEOF
)
wheel_dir="$CACHE/horovod-0.28.1-$key"
if ! ls "$wheel_dir"/horovod-*.whl >/dev/null 2>&1; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$PY" -m pip download -q --no-deps --no-binary :all: -d "$work" horovod==0.28.1
    tar -xzf "$work"/horovod-0.28.1.tar.gz -C "$work"
    src="$work/horovod-0.28.1"
    sed -i 's/CMAKE_CXX_STANDARD 14/CMAKE_CXX_STANDARD 17/' "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"
    sed -i '/xla_mpi_ops.cc/d' "$src/horovod/tensorflow/CMakeLists.txt"
    grep -q 'CMAKE_CXX_STANDARD 17' "$src/CMakeLists.txt"
    ! grep -q 'xla_mpi_ops.cc' "$src/horovod/tensorflow/CMakeLists.txt"
    "$PY" -m pip install -q cmake packaging >/dev/null
    mkdir -p "$wheel_dir.tmp"
    HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_MXNET=1 \
    HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_TENSORFLOW=1 HOROVOD_CPU_OPERATIONS=GLOO \
    MAKEFLAGS="-j$(nproc)" \
        "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$wheel_dir.tmp" "$src"
    rm -rf "$wheel_dir" && mv "$wheel_dir.tmp" "$wheel_dir"
fi
"$PY" -m pip install -q --no-deps "$wheel_dir"/horovod-*.whl
"$PY" -m pip install -q cloudpickle psutil pyyaml packaging "cffi>=1.4.0"
"$PY" -c 'import horovod.torch, horovod.tensorflow; print("horovod", horovod.__version__)'
