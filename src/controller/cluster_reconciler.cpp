#include "controller/reconcilers.h"

#include <set>

#include "controller/capacity.h"
#include "controller/conditions.h"

namespace tf::controller {
namespace v1 = k8s::api::v1;
using nlohmann::json;

tf::Result<Outcome> ClusterReconciler::reconcile(const std::string& name) {
  k8s::ObjectPtr obj = ctx_.clusters.store().get(name);
  if (!obj || isDeleting(*obj)) return Outcome::done();  // its pools go with it (owner references)
  auto cluster = decodeObject<v1::TensorFusionCluster>(*obj);
  if (!cluster) {
    (void)ctx_.events.event(*obj, k8s::EventType::Warning, "InvalidSpec", cluster.status().message());
    return Outcome::done();  // nothing to retry until the object changes
  }

  // Desired pools: <cluster>-<pool.name>, owned by the cluster, spec = the template.
  std::set<std::string> desired;
  const auto& defs = cluster->spec && cluster->spec->gpuPools ? *cluster->spec->gpuPools : std::vector<v1::GpuPoolDefinition>{};
  for (const auto& def : defs) {
    const std::string poolName = name + "-" + def.name.value_or("default");
    desired.insert(poolName);
    json labels = (*obj)["metadata"].value("labels", json::object());
    labels[k8s::api::kLabelManagedBy] = name;
    json want = {{"apiVersion", v1::GpuPool::kResource.apiVersion()},
                 {"kind", v1::GpuPool::kResource.kind},
                 {"metadata",
                  {{"name", poolName},
                   {"labels", labels},
                   {"annotations", {{k8s::api::kAnnotationIsDefaultPool, def.isDefault.value_or(false) ? "true" : "false"}}},
                   {"ownerReferences", json::array({ownerReference(*obj, true)})}}},
                 {"spec", def.specTemplate}};
    k8s::ObjectPtr have = ctx_.pools.store().get(poolName);
    if (have && jsonSubset(want, *have)) continue;
    auto r = ctx_.client.apply(v1::GpuPool::kResource, want, ctx_.settings.fieldManager, /*force=*/true);
    if (!r) return toStatus(r.error(), "applying GPUPool " + poolName);
  }
  // Pools the cluster no longer lists.
  for (const auto& pool : managedBy(ctx_.pools, name)) {
    const std::string poolName = nameOf(*pool);
    if (desired.count(poolName) || isDeleting(*pool)) continue;
    auto r = ctx_.client.remove(v1::GpuPool::kResource, "", poolName);
    if (!r && !r.error().isNotFound()) return toStatus(r.error(), "deleting GPUPool " + poolName);
    (void)ctx_.events.event(*obj, k8s::EventType::Normal, "PoolRemoved", "GPUPool " + poolName + " is no longer listed");
  }

  // Status: sums over the pools as the cache has them.
  v1::TensorFusionClusterStatus status = cluster->status.value_or(v1::TensorFusionClusterStatus{});
  Totals t;
  int nodes = 0, gpus = 0;
  std::vector<std::string> ready, notReady;
  std::optional<Quantity> virtAvailTflops, virtAvailVram;
  for (const auto& poolName : desired) {
    k8s::ObjectPtr p = ctx_.pools.store().get(poolName);
    auto pool = p ? decodeObject<v1::GpuPool>(*p) : tf::Result<v1::GpuPool>(tf::notFound(poolName));
    if (!pool || !pool->status) {
      notReady.push_back(poolName);
      continue;
    }
    const auto& s = *pool->status;
    (s.phase == "Running" ? ready : notReady).push_back(poolName);
    nodes += s.totalNodes.value_or(0);
    gpus += s.totalGPUs.value_or(0);
    t.addStatus(s);
  }
  status.totalPools = static_cast<int32_t>(desired.size());
  status.totalNodes = nodes;
  status.totalGPUs = gpus;
  t.writeTo(status);
  status.readyGPUPools = ready;
  status.notReadyGPUPools = notReady;
  const bool allReady = !desired.empty() && notReady.empty();
  status.phase = desired.empty() ? "Pending" : (allReady ? "Running" : "Updating");
  setCondition(status.conditions, "GPUPoolReady", allReady, allReady ? "AllPoolsReady" : "PoolsNotReady",
               allReady ? "all GPU pools are running" : std::to_string(notReady.size()) + " GPU pool(s) not running",
               (*obj)["metadata"].value("generation", int64_t{0}));
  setCondition(status.conditions, "Ready", allReady, allReady ? "ClusterReady" : "PoolsNotReady",
               allReady ? "cluster is ready" : "waiting for GPU pools",
               (*obj)["metadata"].value("generation", int64_t{0}));
  if (cluster->status && *cluster->status == status) return Outcome::done();
  TF_RETURN_IF_ERROR(patchStatus(ctx_, v1::TensorFusionCluster::kResource, "", name, json(status)));
  return Outcome::done();
}

}  // namespace tf::controller
