// The kinds the agent mirrors to the portal, named once: the informers, the snapshot, the RBAC
// in deploy/ and the tests all follow this table. tensor-fusion.ai pools, nodes, GPUs,
// workloads and connections, the cluster object, and the pods that hold vGPUs (worker and
// client pods: tensor-fusion.ai/component in (worker, client)).
//
//   for (const SyncedKind& k : syncedKinds()) informer(k.resource, k.labelSelector);
//   auto o = toSyncedObject(k.resource, json);  // kind, namespace, name, resourceVersion, body
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "control_protocol/messages.h"
#include "k8s/api/resource_ref.h"

namespace tf::agent {

struct SyncedKind {
  k8s::ResourceRef resource;
  std::string labelSelector;  // empty: every object of the kind
};

const std::vector<SyncedKind>& syncedKinds();

// The protocol's object for a Kubernetes object of `resource`: kind from the resource, the
// metadata's namespace, name and resourceVersion, and the object itself as the body without
// metadata.managedFields (server-side apply bookkeeping, large and of no use to the portal),
// with apiVersion and kind always set.
// InvalidArgument naming the field when name or resourceVersion is missing.
Result<protocol::SyncedObject> toSyncedObject(const k8s::ResourceRef& resource, const nlohmann::json& object);

}  // namespace tf::agent
