// What every reconciler shares: the client, the event recorder, the informers' caches (reads
// come from the caches, writes go to the apiserver) and small helpers for the writes they all
// make. Reconcilers write only what differs from the cache, so a settled cluster costs no
// writes and a new leader's first pass changes nothing.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "k8s/api/codec.h"
#include "k8s/api/v1/types.h"
#include "k8s/api/well_known.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "k8s/informer.h"
#include "controller/reconcile_loop.h"

namespace tf::controller {

inline constexpr const char* kIndexManagedBy = "managedBy";
inline constexpr const char* kIndexWorkload = "workload";  // pods by "<namespace>/<workload>"
inline constexpr const char* kIndexConnection = "connection";  // pods by "<namespace>/<connection>"

struct Settings {
  std::string fieldManager = "tensor-fusion-controller";
  // A hypervisor whose heartbeat has not changed for this long (by our clock) is gone.
  k8s::Duration heartbeatStaleAfter = std::chrono::seconds(15);
  // Where and with what image the one-time node discovery Jobs run; empty image: no Jobs.
  std::string namespace_ = "tensor-fusion-sys";
  std::string discoveryImage;
  // The image of remote vGPUs' worker pods when the pool names none.
  std::string workerImage;
};

struct Context {
  k8s::Client& client;
  k8s::EventRecorder& events;
  k8s::Informer& nodes;
  k8s::Informer& clusters;
  k8s::Informer& pools;
  k8s::Informer& gpuNodes;
  k8s::Informer& gpus;
  k8s::Informer& workloads;  // TensorFusionWorkloads, every namespace
  k8s::Informer& pods;       // pods labelled tensor-fusion.ai/workload, every namespace
  k8s::Informer& connections;  // TensorFusionConnections, every namespace
  Settings settings;
};

tf::Status toStatus(const k8s::ApiError& e, const std::string& what);

// Every member of `want` is in `have` with the same value (objects compared member by member,
// arrays and scalars exactly): what the apiserver added (defaults, metadata) is ignored.
bool jsonSubset(const nlohmann::json& want, const nlohmann::json& have);

nlohmann::json ownerReference(const nlohmann::json& owner, bool controller);
bool hasOwner(const nlohmann::json& object, const std::string& uid);
bool isDeleting(const nlohmann::json& object);
bool hasFinalizer(const nlohmann::json& object, const std::string& finalizer);
std::string nameOf(const nlohmann::json& object);
std::string labelOf(const nlohmann::json& object, const std::string& key);
// A pod's Ready condition is True.
bool podReady(const nlohmann::json& pod);

// Objects in `informer` labelled managed-by=<owner>.
std::vector<k8s::ObjectPtr> managedBy(const k8s::Informer& informer, const std::string& owner);

// Merge-patches `status` into the object's status subresource.
tf::Status patchStatus(Context& ctx, const k8s::ResourceRef& ref, const std::string& ns, const std::string& name,
                       const nlohmann::json& status);
// Drops `finalizer`, guarded by the object's resourceVersion (a conflict is retried by the loop).
tf::Status removeFinalizer(Context& ctx, const k8s::ResourceRef& ref, const nlohmann::json& object,
                           const std::string& finalizer);

// The deletion of an owner whose children must go first (the finalizer's work): deletes the
// children not yet being deleted, comes back while any remain, then drops the finalizer.
tf::Result<Outcome> finalizeAfterChildren(Context& ctx, const k8s::ResourceRef& ownerRef, const nlohmann::json& owner,
                                          const k8s::ResourceRef& childRef, const std::vector<k8s::ObjectPtr>& children);

template <typename T> tf::Result<T> decodeObject(const nlohmann::json& object) {
  return k8s::api::decode<T>(object);
}

}  // namespace tf::controller
