#include "controller/reconcilers.h"

#include "controller/capacity.h"
#include "controller/conditions.h"
#include "controller/selectors.h"

namespace tf::controller {
namespace v1 = k8s::api::v1;
using nlohmann::json;

tf::Result<Outcome> PoolReconciler::reconcile(const std::string& name) {
  k8s::ObjectPtr obj = ctx_.pools.store().get(name);
  if (!obj) return Outcome::done();
  auto pool = decodeObject<v1::GpuPool>(*obj);
  if (!pool) {
    (void)ctx_.events.event(*obj, k8s::EventType::Warning, "InvalidSpec", pool.status().message());
    return Outcome::done();
  }
  const auto managed = managedBy(ctx_.gpuNodes, name);

  // Deletion: the pool's GPUNodes go first (and their GPUs with them), then the finalizer.
  if (isDeleting(*obj)) return finalizeAfterChildren(ctx_, v1::GpuPool::kResource, *obj, v1::GpuNode::kResource, managed);
  if (!hasFinalizer(*obj, k8s::api::kFinalizer)) {
    json patch = json::array({{{"op", "add"}, {"path", (*obj)["metadata"].contains("finalizers") ? "/metadata/finalizers/-" : "/metadata/finalizers"},
                               {"value", (*obj)["metadata"].contains("finalizers") ? json(k8s::api::kFinalizer) : json::array({k8s::api::kFinalizer})}}});
    auto r = ctx_.client.patch(v1::GpuPool::kResource, "", name, k8s::PatchType::Json, patch);
    if (!r) return toStatus(r.error(), "adding the finalizer to GPUPool " + name);
  }

  // How many Kubernetes nodes the selector matches, whether or not they have a GPUNode yet.
  int matched = 0;
  if (pool->spec)
    for (const auto& node : ctx_.nodes.store().list())
      if (poolSelectsNode(*pool->spec, *node)) ++matched;

  const Oversubscription ratios = ratiosOf(pool->spec ? &*pool->spec : nullptr);
  v1::GpuPoolStatus status = pool->status.value_or(v1::GpuPoolStatus{});
  Totals t;
  int ready = 0, notReady = 0, gpus = 0;
  for (const auto& gnObj : managed) {
    auto gn = decodeObject<v1::GpuNode>(*gnObj);
    if (!gn || !gn->status) {
      ++notReady;
      continue;
    }
    const auto& s = *gn->status;
    (s.phase == "Running" ? ready : notReady)++;
    gpus += s.totalGPUs;
    t.addStatus(s);
  }
  const int nodes = static_cast<int>(managed.size());
  status.cluster = labelOf(*obj, k8s::api::kLabelManagedBy).empty()
                       ? std::nullopt
                       : std::optional<std::string>(labelOf(*obj, k8s::api::kLabelManagedBy));
  status.totalNodes = nodes;
  status.totalGPUs = gpus;
  status.readyNodes = ready;
  status.notReadyNodes = notReady;
  t.writeTo(status);
  status.virtualTFlops = virtualTflops(t.tflops, ratios);  // the pool's own oversell ratio
  status.phase = nodes == 0 ? "Pending" : (notReady == 0 ? "Running" : "Updating");
  const int64_t generation = (*obj)["metadata"].value("generation", int64_t{0});
  const auto* before = findCondition(status.conditions, "NodesMatched");
  const bool wasMatched = !before || before->status == "True";
  setCondition(status.conditions, "NodesMatched", matched > 0, matched > 0 ? "NodesMatched" : "NoMatchingNodes",
               matched > 0 ? std::to_string(matched) + " node(s) match the pool's node selector"
                           : "the pool's node selector matches no Kubernetes node",
               generation);
  setCondition(status.conditions, "Ready", nodes > 0 && notReady == 0, status.phase,
               nodes == 0 ? "no GPU nodes in the pool" : std::to_string(ready) + "/" + std::to_string(nodes) + " GPU nodes running",
               generation);
  if (matched == 0 && (wasMatched || !pool->status))
    (void)ctx_.events.event(*obj, k8s::EventType::Warning, "NoMatchingNodes",
                            "the node selector of GPUPool " + name + " matches no Kubernetes node");
  if (pool->status && *pool->status == status) return Outcome::done();
  TF_RETURN_IF_ERROR(patchStatus(ctx_, v1::GpuPool::kResource, "", name, json(status)));
  return Outcome::done();
}

}  // namespace tf::controller
