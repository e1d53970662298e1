#!/usr/bin/env bash
# Builds everything and runs every test: the default build (unit tests, CUDA programs on the
# soft GPU, CLI checks) and the ASan+UBSan build (unit tests). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export PATH=/usr/local/cuda/bin:$PATH
jobs=$(nproc)

cmake --preset default
cmake --build --preset default -j"$jobs"
ctest --preset default -j"$jobs"

cmake --preset asan
cmake --build --preset asan -j"$jobs"
ctest --preset asan -j"$jobs"
