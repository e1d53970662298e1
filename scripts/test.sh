#!/usr/bin/env bash
# Builds everything and runs every test: the default build (unit tests, CUDA programs on the
# soft GPU, CLI checks, end-to-end tests on a local Kubernetes cluster) and the ASan+UBSan build
# (unit tests, and the tests labelled "sanitized": the preloaded limiter and the client stub
# inside sanitized driver-API programs, against the sanitized soft GPU and worker). Exits
# non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export PATH=/usr/local/cuda/bin:$PATH
jobs=$(nproc)

cmake --preset default
cmake --build --preset default -j"$jobs"
# The end-to-end tests run a real local cluster: its Kubernetes binaries are built once from
# Debian's source and cached outside the checkout (about 20 minutes the first time).
./scripts/k8s-build.sh >/dev/null
ctest --preset default -j"$jobs"

cmake --preset asan
cmake --build --preset asan -j"$jobs"
ctest --preset asan -j"$jobs"

# The worker is what untrusted clients talk to: its attack, fault and network tests (idle
# connections, TLS, raw-socket garbage), and the CUDA
# programs that exercise mirrored memory and graphs, run once more against the ASan+UBSan
# build of the worker and of the soft GPU beneath it (the programs and the stub stay the
# default build's: nvcc-built programs cannot load sanitizer-built libraries). run_remote.sh
# stops the worker with SIGTERM and fails on any sanitizer report in its log.
for attacks in remoting_worker_test remoting_worker_network_test remoting_worker_tier_admin_test \
               remoting_migration_test; do
  TF_TEST_WORKER_BIN=build/asan/bin/tensor-fusion-worker \
  TF_TEST_SOFTGPU_LIB=build/asan/lib/libcuda.so.1 \
    "build/default/tests/remoting/$attacks"
done
for prog in zero_copy pinned_managed graphs graph_kernels graph_pageable graph_node_params graph_update graph_extras; do
  for transport in shm tcp tls; do
    for remap in "" --remap-handles; do  # and through a worker that remaps every handle
      TF_TEST_WORKER_ARGS=$remap bash tests/remoting/run_remote.sh "$transport" \
        build/asan/bin/tensor-fusion-worker build/asan/lib build/default/lib/remote \
        "build/asan/remote-state/$prog-$transport$remap" "" "build/default/tests/cuda/${prog}_static"
    done
  done
done
# Managed memory the worker shares with its client (shm) and mirrors (tcp).
for run in shm:shared tcp:mirrored; do
  TF_TEST_EXPECT_MANAGED="${run#*:}" bash tests/remoting/run_remote.sh "${run%%:*}" \
    build/asan/bin/tensor-fusion-worker build/asan/lib build/default/lib/remote \
    "build/asan/remote-state/managed_memory-${run%%:*}" "" build/default/tests/remoting/remoting_managed_memory
done
echo "test.sh: all tests passed"
