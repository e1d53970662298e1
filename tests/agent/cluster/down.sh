#!/usr/bin/env bash
# Fixture cleanup for agent_cluster: pass or fail, the control plane goes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
if [ -n "${TF_TEST_KEEP_CLUSTER:-}" ]; then echo "TF_TEST_KEEP_CLUSTER set: leaving the agent cluster up"; exit 0; fi
"$ROOT/scripts/cluster.sh" down
echo "agent cluster down"
