#!/usr/bin/env bash
# Fixture cleanup: everything the cluster started and every host change it made, pass or fail.
source "$(dirname "$0")/lib.sh"
if [ -n "${TF_TEST_KEEP_CLUSTER:-}" ]; then note "TF_TEST_KEEP_CLUSTER set: leaving the cluster up"; exit 0; fi
"$ROOT/scripts/cluster.sh" down
