#!/usr/bin/env bash
# The tensor-fusion image, built locally from this checkout's build (no registry): the
# `tensor-fusion` binary (controller, hypervisor, worker, ... as subcommands) in
# /opt/tensor-fusion/bin and the libraries beside it in /opt/tensor-fusion/lib (soft GPU,
# limiter, remoting stub), laid out as in the build tree so the binary finds them.
#
#   images/tensor-fusion.sh OUT.tar [BUILD_DIR]      (BUILD_DIR default build/default)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
out=$1 build=${2:-$ROOT/build/default}
[ -x "$build/bin/tensor-fusion" ] || { echo "images: no $build/bin/tensor-fusion; build first" >&2; exit 1; }
args=(--entrypoint /opt/tensor-fusion/bin/tensor-fusion --busybox
      --env PATH=/opt/tensor-fusion/bin:/bin:/usr/bin)
for f in "$build"/bin/*; do [ -f "$f" ] && [ -x "$f" ] && args+=(--file "$f:/opt/tensor-fusion/bin/$(basename "$f")"); done
args+=(--dir "$build/lib:/opt/tensor-fusion/lib")
exec "$ROOT/scripts/oci-image.sh" "$out" "${args[@]}"
