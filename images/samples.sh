#!/usr/bin/env bash
# A CUDA application image for trying TensorFusion on the local cluster: example programs built
# by nvcc with the static cudart (examples/, and the limiter's compute_load), unmodified. The
# CUDA driver is the node's, as on any GPU node: on the soft-GPU nodes of scripts/cluster.sh a
# pod mounts it from the host (see docs/kubernetes.md), so the image has no libcuda.
#
#   images/samples.sh OUT.tar [BUILD_DIR]      (BUILD_DIR default build/default)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
out=$1 build=${2:-$ROOT/build/default}
args=(--busybox --env PATH=/opt/samples/bin:/bin:/usr/bin)
for f in "$build"/examples/saxpy "$build"/examples/vgpu_probe "$build"/tests/limiter/compute_load; do
  [ -x "$f" ] || { echo "images: no $f; build first" >&2; exit 1; }
  args+=(--file "$f:/opt/samples/bin/$(basename "$f")")
done
exec "$ROOT/scripts/oci-image.sh" "$out" "${args[@]}"
