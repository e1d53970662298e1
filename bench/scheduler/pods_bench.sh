#!/usr/bin/env bash
# Pods bound per second through the real kube-scheduler with our extender, beside the default
# scheduler, in one run (pods_bench.cpp says what is measured). Brings up a control-plane-only
# cluster of its own (its own state directory and ports, so a node-bearing cluster may run
# beside it), the GPU CRDs, `tensor-fusion controller` on the host serving the extender, and the
# tensor-fusion-scheduler kube-scheduler pointed at it; tears all of it down at the end.
# Needs root and the cached Kubernetes binaries (scripts/k8s-build.sh).
#
#   bench/scheduler/pods_bench.sh [build=build/default] [nodes=50] [pods=300]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build/default}" && pwd)
shift || true
export TF_CLUSTER_DIR=${TF_CLUSTER_DIR:-/tmp/tf-pods-bench} TF_CLUSTER_PORT_BASE=${TF_CLUSTER_PORT_BASE:-28000}
EXTENDER_PORT=$((TF_CLUSTER_PORT_BASE + 90)) METRICS_PORT=$((TF_CLUSTER_PORT_BASE + 91))
cluster() { "$ROOT/scripts/cluster.sh" "$@"; }
controller=
cleanup() {
  local rc=$?
  [ -n "$controller" ] && kill "$controller" 2>/dev/null && wait "$controller" 2>/dev/null
  if [ "$rc" != 0 ]; then  # what the next reader needs, before down removes it
    for log in controller tf-scheduler; do
      echo "--- $log (last lines)" >&2
      tail -15 "$TF_CLUSTER_DIR/logs/$log.log" >&2 2>/dev/null || true
    done
  fi
  cluster down >/dev/null 2>&1 || true
}
trap cleanup EXIT
cluster up --control-plane-only >/dev/null
eval "$(cluster env)"
kubectl apply -f "$ROOT/deploy/crds" >/dev/null
# The second kube-scheduler's leader-election Lease rights (and the extender's Service, which
# selects nothing here: the controller runs on the host).
kubectl create namespace tensor-fusion-sys >/dev/null
kubectl apply -f "$ROOT/deploy/scheduler-extender.yaml" >/dev/null
"$BUILD/bin/tensor-fusion" controller --extender-listen "127.0.0.1:$EXTENDER_PORT" --listen "127.0.0.1:$METRICS_PORT" \
  >"$TF_CLUSTER_DIR/logs/controller.log" 2>&1 &
controller=$!
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$METRICS_PORT/readyz" >/dev/null && break
  kill -0 "$controller" 2>/dev/null || { echo "pods_bench: the controller exited:" >&2; tail -20 "$TF_CLUSTER_DIR/logs/controller.log" >&2; exit 1; }
  sleep 0.2
done
TF_EXTENDER_URL="http://127.0.0.1:$EXTENDER_PORT" cluster scheduler-up >/dev/null
rc=0
"$BUILD/bench/scheduler/pods_bench" "$@" || rc=$?
# Where our pods' time went on the extender's side (the warm-up pods included): kube-scheduler
# calls filter and prioritize in its one scheduling cycle, bind in a binding goroutine per pod.
curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | awk '
  /^tensor_fusion_extender_/ { match($0, /verb="[a-z]+"/); v = substr($0, RSTART + 6, RLENGTH - 7)
    if ($0 ~ /requests_total/) n[v] = $2; else if ($0 ~ /refusals_total/) r[v] = $2; else s[v] = $2 }
  END { print "extender, per verb (warm-up included):"
        for (v in n) printf "  %-10s %6d calls  %4d refused  mean %7.2f ms  total %6.2f s\n", v, n[v], r[v], n[v] ? s[v] * 1000 / n[v] : 0, s[v] }'
exit $rc
