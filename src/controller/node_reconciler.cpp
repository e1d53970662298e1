#include "controller/reconcilers.h"

#include <algorithm>
#include <functional>

#include "controller/conditions.h"
#include "controller/selectors.h"

namespace tf::controller {
namespace v1 = k8s::api::v1;
using nlohmann::json;

namespace {

// The first pool (by name, so every replica agrees) whose selector takes the node.
k8s::ObjectPtr poolFor(Context& ctx, const json& node) {
  auto pools = ctx.pools.store().list();
  std::sort(pools.begin(), pools.end(), [](const k8s::ObjectPtr& a, const k8s::ObjectPtr& b) { return nameOf(*a) < nameOf(*b); });
  for (const auto& p : pools) {
    if (isDeleting(*p)) continue;
    auto pool = decodeObject<v1::GpuPool>(*p);
    if (pool && pool->spec && poolSelectsNode(*pool->spec, node)) return p;
  }
  return nullptr;
}

const k8s::ResourceRef kJobs{"batch", "v1", "jobs", "Job", true};

std::string discoveryJobName(const std::string& node) {
  std::string name = "tensor-fusion-discovery-" + node;
  if (name.size() > 63) name = name.substr(0, 54) + "-" + std::to_string(std::hash<std::string>{}(node) % 100000000);
  return name;
}

// The one-time discovery Job that labels the node with its GPUs' facts (src/hypervisor/cluster).
json discoveryJob(const Settings& s, const std::string& node) {
  const json labels = {{"app.kubernetes.io/name", "tensor-fusion-node-discovery"}, {"tensor-fusion.ai/node", node}};
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", {{"name", discoveryJobName(node)}, {"namespace", s.namespace_}, {"labels", labels}}},
          {"spec",
           {{"backoffLimit", 4},
            {"template",
             {{"metadata", {{"labels", labels}}},
              {"spec",
               {{"nodeName", node},
                {"restartPolicy", "OnFailure"},
                {"serviceAccountName", "tensor-fusion-node-discovery"},
                {"tolerations", json::array({{{"operator", "Exists"}}})},
                {"containers",
                 json::array({{{"name", "discover"},
                               {"image", s.discoveryImage},
                               {"imagePullPolicy", "IfNotPresent"},
                               {"args", json::array({"discover", "--node-name=" + node})},
                               {"env", json::array({{{"name", "TF_SOFTGPU_CONFIG"}, {"value", "/etc/tensor-fusion/softgpu.json"}}})},
                               {"volumeMounts", json::array({{{"name", "node-config"}, {"mountPath", "/etc/tensor-fusion"}, {"readOnly", true}}})}}})},
                {"volumes", json::array({{{"name", "node-config"},
                                          {"hostPath", {{"path", "/etc/tensor-fusion"}, {"type", "DirectoryOrCreate"}}}}})}}}}}}}};
}

v1::GpuNodeStatus initialStatus() {
  v1::GpuNodeStatus s{};
  s.phase = "Pending";
  s.totalGPUs = 0;
  s.managedGPUs = 0;
  return s;
}

}  // namespace

tf::Result<Outcome> NodeReconciler::reconcile(const std::string& name) {
  k8s::ObjectPtr node = ctx_.nodes.store().get(name);
  k8s::ObjectPtr gpuNode = ctx_.gpuNodes.store().get(name);
  auto dropGpuNode = [&]() -> tf::Result<Outcome> {
    if (!gpuNode || isDeleting(*gpuNode) || labelOf(*gpuNode, k8s::api::kLabelManagedBy).empty()) return Outcome::done();
    auto r = ctx_.client.remove(v1::GpuNode::kResource, "", name);
    if (!r && !r.error().isNotFound()) return toStatus(r.error(), "deleting GPUNode " + name);
    return Outcome::done();
  };
  if (!node || isDeleting(*node)) return dropGpuNode();
  // A cordoned node keeps what it has: draining is not leaving the pool.
  if ((*node).value("/spec/unschedulable"_json_pointer, false)) return Outcome::done();

  k8s::ObjectPtr pool = poolFor(ctx_, *node);
  if (!pool) return dropGpuNode();
  const std::string poolName = nameOf(*pool);

  json want = {{"apiVersion", v1::GpuNode::kResource.apiVersion()},
               {"kind", v1::GpuNode::kResource.kind},
               {"metadata",
                {{"name", name},
                 {"labels", {{k8s::api::kLabelManagedBy, poolName}, {k8s::api::poolMemberLabel(poolName), "true"}}},
                 {"finalizers", json::array({k8s::api::kFinalizer})},
                 {"ownerReferences", json::array({ownerReference(*pool, true), ownerReference(*node, false)})}}},
               {"spec", {{"manageMode", "AutoSelect"}}}};
  if (!gpuNode || !jsonSubset(want, *gpuNode)) {
    auto r = ctx_.client.apply(v1::GpuNode::kResource, want, ctx_.settings.fieldManager, /*force=*/true);
    if (!r) return toStatus(r.error(), "applying GPUNode " + name);
    if (!gpuNode)
      (void)ctx_.events.event(*r, k8s::EventType::Normal, "Created", "node " + name + " joined GPUPool " + poolName);
    if (!r->contains("status")) TF_RETURN_IF_ERROR(patchStatus(ctx_, v1::GpuNode::kResource, "", name, json(initialStatus())));
  } else if (!gpuNode->contains("status")) {
    TF_RETURN_IF_ERROR(patchStatus(ctx_, v1::GpuNode::kResource, "", name, json(initialStatus())));
  }
  // A GPU node not yet labelled with its GPUs' facts gets its one-time discovery Job.
  if (!ctx_.settings.discoveryImage.empty() && labelOf(*node, k8s::api::kNodeLabelGpuCount).empty()) {
    const std::string job = discoveryJobName(name);
    auto have = ctx_.client.get(kJobs, ctx_.settings.namespace_, job);
    if (!have && !have.error().isNotFound()) return toStatus(have.error(), "reading Job " + job);
    if (!have) {
      auto r = ctx_.client.create(kJobs, discoveryJob(ctx_.settings, name));
      if (!r && !r.error().isAlreadyExists()) return toStatus(r.error(), "creating Job " + job);
      if (r) (void)ctx_.events.event(*node, k8s::EventType::Normal, "NodeDiscovery", "started Job " + ctx_.settings.namespace_ + "/" + job);
    }
  }
  return Outcome::done();
}

}  // namespace tf::controller
