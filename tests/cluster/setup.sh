#!/usr/bin/env bash
# Fixture: a real cluster (scripts/cluster.sh), the tensor-fusion image built from this build
# and loaded into every node, and TensorFusion installed with `kubectl apply -k deploy/`.
source "$(dirname "$0")/lib.sh"
BUILD=${1:?build dir}
"$ROOT/scripts/cluster.sh" down
"$ROOT/scripts/cluster.sh" up
"$ROOT/images/tensor-fusion.sh" "$TF_CLUSTER_DIR/tensor-fusion.tar" "$BUILD"
"$ROOT/scripts/cluster.sh" load-image tensor-fusion "$TF_CLUSTER_DIR/tensor-fusion.tar"
"$ROOT/images/samples.sh" "$TF_CLUSTER_DIR/samples.tar" "$BUILD"
"$ROOT/scripts/cluster.sh" load-image tensor-fusion-samples "$TF_CLUSTER_DIR/samples.tar"
"$ROOT/images/samples.sh" "$TF_CLUSTER_DIR/samples-cpu.tar" "$BUILD" cpu-only
"$ROOT/scripts/cluster.sh" load-image tensor-fusion-samples-cpu "$TF_CLUSTER_DIR/samples-cpu.tar"
K apply -k "$ROOT/deploy" >/dev/null
wait_until 60 "CRDs established" K wait --for=condition=established --timeout=1s crd/gpus.tensor-fusion.ai crd/gpunodes.tensor-fusion.ai crd/gpupools.tensor-fusion.ai crd/tensorfusionclusters.tensor-fusion.ai
wait_until 120 "controller replicas ready" equals 2 jp -n tensor-fusion-sys deployment/tensor-fusion-controller '{.status.readyReplicas}'
"$ROOT/scripts/cluster.sh" scheduler-up
wait_until 120 "hypervisors ready on both GPU nodes" equals 2 jp -n tensor-fusion-sys daemonset/tensor-fusion-hypervisor '{.status.numberReady}'
