#!/usr/bin/env bash
# A CUDA application image for trying TensorFusion on the local cluster: example programs built
# by nvcc with the static cudart (examples/, the limiter's compute_load and the VRAM tiers'
# tier_program), unmodified. On a
# real GPU node the CUDA driver comes from the node (NVIDIA's container toolkit); the nodes of
# scripts/cluster.sh have soft GPUs, whose driver (libcuda.so.1, libnvidia-ml.so.1 and what
# they load) this image carries in /opt/softgpu/lib for that role: a pod sets
# LD_LIBRARY_PATH=/opt/softgpu/lib and mounts the node's /etc/tensor-fusion (docs/kubernetes.md).
#
# With "cpu-only" the image carries no GPU library at all: the application of a remote vGPU
# pod on a CPU-only node, which gets its libcuda.so.1 (our stub) from the webhook.
#
#   images/samples.sh OUT.tar [BUILD_DIR] [cpu-only]      (BUILD_DIR default build/default)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
out=$1 build=${2:-$ROOT/build/default} variant=${3:-}
args=(--busybox --env PATH=/opt/samples/bin:/bin:/usr/bin)
for f in "$build"/examples/saxpy "$build"/examples/vgpu_probe "$build"/tests/limiter/compute_load \
         "$build"/tests/hypervisor/tier_program; do
  [ -x "$f" ] || { echo "images: no $f; build first" >&2; exit 1; }
  args+=(--file "$f:/opt/samples/bin/$(basename "$f")")
done
[ "$variant" = cpu-only ] || for f in "$build"/lib/libcuda.so.1 "$build"/lib/libnvidia-ml.so.1; do
  [ -f "$f" ] || { echo "images: no $f; build first" >&2; exit 1; }
  args+=(--file "$f:/opt/softgpu/lib/$(basename "$f")")
done
exec "$ROOT/scripts/oci-image.sh" "$out" "${args[@]}"
