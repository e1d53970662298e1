# Helpers for the end-to-end tests on the local cluster (scripts/cluster.sh). Sourced.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export TF_CLUSTER_DIR=${TF_CLUSTER_DIR:?the cluster tests run under the k8s_cluster fixture}
export KUBECONFIG=$TF_CLUSTER_DIR/admin.kubeconfig
K() { kubectl --request-timeout=20s "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }

# wait_until SECONDS DESCRIPTION CMD...: polls CMD until it succeeds; fails naming DESCRIPTION.
# Prints how long it took, so the log shows the figure the test's bound is about.
wait_until() {
  local secs=$1 what=$2; shift 2
  local t0=$SECONDS deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what: not within ${secs}s"
    sleep 0.5
  done
  note "$what: after $((SECONDS - t0))s"
}
# jp GET-ARGS... JSONPATH: one field of one object.
jp() { K get "${@:1:$#-1}" -o "jsonpath=${*: -1}" 2>/dev/null; }
equals() { [ "$("${@:2}")" = "$1" ]; }
