#include "agent/synced_kinds.h"

#include "k8s/api/v1/types.h"
#include "k8s/api/well_known.h"
#include "k8s/builtin.h"

namespace tf::agent {

const std::vector<SyncedKind>& syncedKinds() {
  namespace v1 = k8s::api::v1;
  static const std::vector<SyncedKind> kinds{
      {v1::TensorFusionCluster::kResource, ""},
      {v1::GpuPool::kResource, ""},
      {v1::GpuNode::kResource, ""},
      {v1::Gpu::kResource, ""},
      {v1::TensorFusionWorkload::kResource, ""},
      {v1::TensorFusionConnection::kResource, ""},
      // vGPU holders: local-GPU worker pods and remote-vGPU client pods.
      {k8s::builtin::kPods, std::string(k8s::api::kLabelComponent) + " in (" + k8s::api::kComponentWorker + "," +
                                 k8s::api::kComponentClient + ")"},
  };
  return kinds;
}

Result<protocol::SyncedObject> toSyncedObject(const k8s::ResourceRef& resource, const nlohmann::json& object) {
  if (!object.is_object()) return invalidArgument(resource.kind + ": not an object");
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return invalidArgument(resource.kind + ": metadata missing");
  auto text = [&](const char* field) -> std::string {
    auto f = meta->find(field);
    return f != meta->end() && f->is_string() ? f->get<std::string>() : std::string();
  };
  protocol::SyncedObject o{resource.kind, text("namespace"), text("name"), text("resourceVersion")};
  if (o.name.empty()) return invalidArgument(resource.kind + ": metadata.name missing");
  if (o.resourceVersion.empty())
    return invalidArgument(resource.kind + " " + o.name + ": metadata.resourceVersion missing");
  o.body = object;
  o.body["metadata"].erase("managedFields");
  // A list's items may lack these (built-in kinds), a watch's objects carry them: always set,
  // so an object reads the same however the informer got it.
  o.body["apiVersion"] = resource.apiVersion();
  o.body["kind"] = resource.kind;
  return o;
}

}  // namespace tf::agent
