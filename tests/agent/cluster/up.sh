#!/usr/bin/env bash
# Fixture agent_cluster: a control-plane-only cluster of its own (TF_CLUSTER_DIR and
# TF_CLUSTER_PORT_BASE set by CTest, distinct from the shared cluster's) with the
# tensor-fusion.ai CRDs, for the agent's end-to-end test. No nodes: several such clusters
# may run beside the shared one.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
export KUBECONFIG=${TF_CLUSTER_DIR:?}/admin.kubeconfig
"$ROOT/scripts/cluster.sh" down
"$ROOT/scripts/cluster.sh" up --control-plane-only
kubectl --request-timeout=20s apply -f "$ROOT/deploy/crds" >/dev/null
kubectl --request-timeout=60s wait --for=condition=established --timeout=60s \
  crd/gpus.tensor-fusion.ai crd/gpupools.tensor-fusion.ai crd/gpunodes.tensor-fusion.ai \
  crd/tensorfusionclusters.tensor-fusion.ai crd/tensorfusionworkloads.tensor-fusion.ai \
  crd/tensorfusionconnections.tensor-fusion.ai
echo "agent cluster up"
