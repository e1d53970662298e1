#!/usr/bin/env bash
# The main job on a fresh machine: installs what the build needs, builds, lists the GPUs the
# machine has (the soft GPU where there is none) and runs an unmodified CUDA program on them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export PATH=/usr/local/cuda/bin:$PATH
cmake --preset default >/dev/null
cmake --build --preset default -j"$(nproc)" --target tensor-fusion tf_libcuda tf_nvml
build=build/default

# A real GPU keeps its NVIDIA driver; without one, the soft GPU's libraries come first.
if ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 ' && [ -e /dev/nvidiactl ]; then
  echo "== NVIDIA driver found: running on the real GPU"
  libs=""
else
  echo "== no GPU driver here: running on the soft GPU (TF_SOFTGPU_DEVICES=${TF_SOFTGPU_DEVICES:-H100})"
  libs="$PWD/$build/lib"
fi

echo "== tensor-fusion version"
"$build/bin/tensor-fusion" version
echo "== tensor-fusion devices"
LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$build/bin/tensor-fusion" devices

echo "== an unmodified CUDA program (examples/saxpy.cu, built by nvcc with the real cudart)"
mkdir -p "$build/examples"
nvcc -O2 -arch=sm_90 -gencode arch=compute_80,code=compute_80 -o "$build/examples/saxpy" examples/saxpy.cu
LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$build/examples/saxpy"
