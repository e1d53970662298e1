#include "controller/reconcilers.h"

namespace tf::controller {
namespace v1 = k8s::api::v1;
using nlohmann::json;

namespace {

std::vector<std::string> gpuIds(const json& pod) {
  std::vector<std::string> out;
  std::string ids = pod.value("/metadata/annotations"_json_pointer, json::object())
                        .value(k8s::api::kAnnotationGpuIds, "");
  size_t start = 0;
  while (start < ids.size()) {
    size_t end = ids.find(',', start);
    if (end == std::string::npos) end = ids.size();
    if (end > start) out.push_back(ids.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

std::string workloadIndexKey(const json& pod) {
  std::string w = labelOf(pod, k8s::api::kLabelWorkload);
  return w.empty() ? std::string() : k8s::objectKey(pod.value("/metadata/namespace"_json_pointer, ""), w);
}

json workloadStatus(const std::vector<k8s::ObjectPtr>& pods) {
  std::vector<k8s::ObjectPtr> sorted = pods;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return nameOf(*a) < nameOf(*b); });
  json workers = json::array();
  int active = 0, ready = 0, failed = 0, pending = 0;
  for (const auto& p : sorted) {
    const std::string phase = p->value("/status/phase"_json_pointer, std::string("Pending"));
    const bool isReady = podReady(*p);
    json w = {{"name", nameOf(*p)}, {"phase", phase}, {"ready", isReady}};
    if (std::string node = p->value("/spec/nodeName"_json_pointer, std::string()); !node.empty()) w["node"] = node;
    if (auto ids = gpuIds(*p); !ids.empty()) w["gpuIds"] = ids;
    workers.push_back(std::move(w));
    if (phase == "Succeeded") continue;  // done: neither a worker nor a failure
    if (phase == "Failed") ++failed;
    else ++active;
    if (phase == "Pending") ++pending;
    if (isReady) ++ready;
  }
  // Failed when a pod failed; Running when every live pod is ready; Pending until then.
  std::string phase = failed ? "Failed" : (active > 0 && ready == active) ? "Running" : "Pending";
  return {{"phase", phase}, {"workerCount", active}, {"readyWorkers", ready}, {"workers", workers}};
}

tf::Result<Outcome> WorkloadReconciler::reconcile(const std::string& key) {
  k8s::ObjectPtr obj = ctx_.workloads.store().get(key);
  if (!obj || isDeleting(*obj)) return Outcome::done();
  json want = workloadStatus(ctx_.pods.store().byIndex(kIndexWorkload, key));
  if (jsonSubset(want, obj->value("status", json::object())) &&
      want["workers"].size() == obj->value("/status/workers"_json_pointer, json::array()).size())
    return Outcome::done();
  const std::string ns = obj->value("/metadata/namespace"_json_pointer, "");
  TF_RETURN_IF_ERROR(patchStatus(ctx_, v1::TensorFusionWorkload::kResource, ns, nameOf(*obj), want));
  return Outcome::done();
}

}  // namespace tf::controller
