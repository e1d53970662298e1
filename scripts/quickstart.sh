#!/usr/bin/env bash
# The main job on a fresh machine: installs what the build needs, builds, lists the GPUs the
# machine has (the soft GPU where there is none), then runs the standalone demo: a hypervisor,
# three CUDA programs sharing one GPU with different limits, the `ps` table, the shares each got
# against its limit, and a hypervisor crash survived by a running workload.
#   TF_DEMO_SECONDS=N shortens or lengthens the workloads (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export PATH=/usr/local/cuda/bin:$PATH
cmake --preset default >/dev/null
cmake --build --preset default -j"$(nproc)" --target tensor-fusion tf_libcuda tf_nvml tf_limiter \
  tf_remote_libcuda tf_remote_nvml \
  examples limiter_cuda_programs
build=build/default

if ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 ' && [ -e /dev/nvidiactl ]; then
  echo "== NVIDIA driver found: the demo runs on the real GPU"
else
  echo "== no GPU driver here: the demo runs on the soft GPU (TF_SOFTGPU_DEVICES=${TF_SOFTGPU_DEVICES:-H100})"
fi
echo "== tensor-fusion version"
"$build/bin/tensor-fusion" version
echo "== tensor-fusion devices"
"$build/bin/tensor-fusion" devices
./scripts/demo.sh "$build"
