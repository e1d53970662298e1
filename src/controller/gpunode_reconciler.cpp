#include "controller/reconcilers.h"

#include "controller/capacity.h"
#include "controller/conditions.h"

namespace tf::controller {
namespace v1 = k8s::api::v1;
using nlohmann::json;

k8s::TimePoint GpuNodeReconciler::heartbeatSeen(const std::string& node, const std::string& heartbeat) {
  std::lock_guard lock(mu_);
  auto& [last, seen] = heartbeats_[node];
  if (seen == k8s::TimePoint{} || last != heartbeat) {
    last = heartbeat;
    seen = clock_.now();
  }
  return seen;
}

tf::Result<Outcome> GpuNodeReconciler::reconcile(const std::string& name) {
  k8s::ObjectPtr obj = ctx_.gpuNodes.store().get(name);
  if (!obj) {
    std::lock_guard lock(mu_);
    heartbeats_.erase(name);
    return Outcome::done();
  }
  const auto gpuObjs = managedBy(ctx_.gpus, name);

  // Deletion: the node's GPUs first, then our finalizer.
  if (isDeleting(*obj)) return finalizeAfterChildren(ctx_, v1::GpuNode::kResource, *obj, v1::Gpu::kResource, gpuObjs);
  auto gn = decodeObject<v1::GpuNode>(*obj);
  if (!gn) return gn.status();
  if (!gn->status) return Outcome::done();  // the node reconciler gives it one

  // The hypervisor's heartbeat, judged by how long it has not changed on our clock.
  std::optional<k8s::Duration> requeue;
  std::string hvState = "Missing";
  if (gn->status->hypervisorStatus && gn->status->hypervisorStatus->lastHeartbeatTime) {
    const auto& hs = *gn->status->hypervisorStatus;
    const auto age = clock_.now() - heartbeatSeen(name, *hs.lastHeartbeatTime);
    const bool fresh = age < ctx_.settings.heartbeatStaleAfter;
    hvState = !fresh ? "Lost" : hs.hypervisorState.value_or("Running");
    if (fresh) requeue = ctx_.settings.heartbeatStaleAfter - age + std::chrono::milliseconds(200);
  }
  const bool alive = hvState == k8s::api::kHypervisorRunning;

  // GPUs of a node whose hypervisor is gone are Unknown until it is back.
  const std::string now = nowRfc3339();
  Totals t;
  for (const auto& gObj : gpuObjs) {
    auto gpu = decodeObject<v1::Gpu>(*gObj);
    if (!gpu || !gpu->status) continue;
    const bool missing = gObj->value("/metadata/annotations"_json_pointer, json::object())
                             .contains(k8s::api::kAnnotationGpuMissingSince);
    if (!missing) t.addGpu(*gpu->status);
    if (!alive && hvState != "Missing" && gpu->status->phase != "Unknown") {
      TF_RETURN_IF_ERROR(patchStatus(ctx_, v1::Gpu::kResource, "", nameOf(*gObj),
                                     {{"phase", "Unknown"},
                                      {"message", "the hypervisor on " + name + " is " +
                                                      (hvState == "Lost" ? "not heard from" : hvState) + " since " + now}}));
    }
  }

  k8s::ObjectPtr poolObj = ctx_.pools.store().get(labelOf(*obj, k8s::api::kLabelManagedBy));
  std::optional<v1::GpuPool> pool;
  if (poolObj)
    if (auto p = decodeObject<v1::GpuPool>(*poolObj)) pool = std::move(*p);
  const Oversubscription ratios = ratiosOf(pool && pool->spec ? &*pool->spec : nullptr);

  v1::GpuNodeStatus status = *gn->status;
  t.writeTo(status);
  status.virtualTFlops = virtualTflops(t.tflops, ratios);
  const auto& info = status.nodeInfo;
  status.virtualVRAM = virtualVram(t.vram, info ? info->ramSize : std::nullopt, info ? info->dataDiskSize : std::nullopt, ratios);
  status.virtualAvailableTFlops = virtualTflops(t.availableTflops, ratios);
  status.virtualAvailableVRAM =
      virtualVram(t.availableVram, info ? info->ramSize : std::nullopt, info ? info->dataDiskSize : std::nullopt, ratios);
  status.observedGeneration = (*obj)["metadata"].value("generation", int64_t{0});
  if (hvState == "Missing") status.phase = "Pending";
  else if (alive) status.phase = "Running";
  else status.phase = "Unknown";
  setCondition(status.conditions, "HypervisorReady", alive, alive ? "HeartbeatFresh" : "Hypervisor" + hvState,
               alive ? "the hypervisor reports in" : "the hypervisor is " + hvState, status.observedGeneration);

  if (status.phase != gn->status->phase) {
    if (status.phase == "Unknown")
      (void)ctx_.events.event(*obj, k8s::EventType::Warning, "HypervisorLost",
                              "no heartbeat from the hypervisor on " + name + "; its GPUs are Unknown");
    else if (status.phase == "Running")
      (void)ctx_.events.event(*obj, k8s::EventType::Normal, "HypervisorReady", "the hypervisor on " + name + " reports in");
  }
  // Only the fields this reconciler owns: the hypervisor writes the others (heartbeat, device
  // list, node info) concurrently, and a stale copy from the cache must not overwrite them.
  static const char* const kOwned[] = {"phase", "totalTFlops", "totalVRAM", "availableTFlops", "availableVRAM",
                                       "virtualTFlops", "virtualVRAM", "virtualAvailableTFlops",
                                       "virtualAvailableVRAM", "observedGeneration", "conditions"};
  const json full = status;
  json mine = json::object();
  for (const char* key : kOwned)
    if (full.contains(key)) mine[key] = full[key];
  if (!(status == *gn->status))
    TF_RETURN_IF_ERROR(patchStatus(ctx_, v1::GpuNode::kResource, "", name, mine));
  return requeue ? Outcome::after(*requeue) : Outcome::done();
}

}  // namespace tf::controller
