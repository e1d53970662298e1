#include "controller/worker_pod.h"

#include "controller/context.h"
#include "k8s/api/well_known.h"
#include "webhook/annotations.h"

namespace tf::controller {
namespace wk = k8s::api;
using nlohmann::json;

namespace {

constexpr const char* kWorkerContainer = "worker";

}  // namespace

bool isClientPod(const json& pod) { return labelOf(pod, wk::kLabelComponent) == wk::kComponentClient; }

bool isDedicatedWorker(const json& pod) {
  return pod.value("/metadata/annotations"_json_pointer, json::object()).value(wk::kAnnotationDedicatedWorker, "") == "true";
}

std::vector<std::string> connectionNamesOf(const json& pod) {
  std::vector<std::string> names;
  if (!isClientPod(pod)) return names;
  for (const auto& c : pod.value("/spec/containers"_json_pointer, json::array()))
    for (const auto& e : c.value("env", json::array()))
      if (e.value("name", "") == wk::kEnvConnectionName && e.contains("value") && e["value"].is_string()) {
        std::string n = e["value"];
        if (!n.empty() && std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
      }
  return names;
}

json connectionFor(const json& clientPod, const std::string& name) {
  const std::string ns = clientPod.value("/metadata/namespace"_json_pointer, "");
  const std::string workload = labelOf(clientPod, wk::kLabelWorkload);
  json ref = ownerReference(clientPod, true);
  return {{"apiVersion", "tensor-fusion.ai/v1"},
          {"kind", "TensorFusionConnection"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{wk::kLabelWorkload, workload}}},
                        {"ownerReferences", json::array({ref})}}},
          {"spec", {{"workloadName", workload}, {"clientPod", nameOf(clientPod)}}}};
}

json workerPodFor(const json& connection, const json& clientPod, const json& pool, const WorkerPodOptions& o) {
  const std::string name = nameOf(connection);
  const std::string ns = connection.value("/metadata/namespace"_json_pointer, "");
  const json workerConfig = pool.is_object() ? pool.value("/spec/componentConfig/worker"_json_pointer, json::object())
                                             : json::object();
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
  json spec = workerConfig.value("/podTemplate/spec"_json_pointer, json::object());
  json meta = workerConfig.value("/podTemplate/metadata"_json_pointer, json::object());
  meta.erase("name");
  meta.erase("generateName");
  meta["name"] = name;
  meta["namespace"] = ns;
  meta["ownerReferences"] = json::array({ownerReference(connection, true)});
  json& labels = meta["labels"];
  if (!labels.is_object()) labels = json::object();
  labels[wk::kLabelEnabled] = "true";  // the webhook makes it a local soft pod
  labels[wk::kLabelWorkload] = labelOf(clientPod, wk::kLabelWorkload);
  labels[wk::kLabelWorkerName] = name;
  json& ann = meta["annotations"];
  if (!ann.is_object()) ann = json::object();
  // What the client asked for, as the webhook normalised it; the worker is that vGPU, local.
  const json clientAnn = clientPod.value("/metadata/annotations"_json_pointer, json::object());
  for (const auto& s : webhook::annotationTable()) {
    if (s.who != webhook::Who::User) continue;
    switch (s.field) {
      case webhook::Field::IsLocalGpu: case webhook::Field::InjectContainer: case webhook::Field::SidecarWorker:
      case webhook::Field::GangEnabled: case webhook::Field::GangMinMembers: case webhook::Field::GangTimeout:
        continue;
      default:
        if (clientAnn.contains(s.key)) ann[s.key] = clientAnn[s.key];
    }
  }
  ann[wk::kAnnotationIsLocalGpu] = "true";
  ann[wk::kAnnotationInjectContainer] = kWorkerContainer;
  ann[wk::kAnnotationDedicatedWorker] = "true";
  ann[wk::kAnnotationWorkload] = labelOf(clientPod, wk::kLabelWorkload);

  // The worker container: the template's first container (the node's driver environment) with
  // our image, arguments and port.
  json& containers = spec["containers"];
  if (!containers.is_array() || containers.empty()) containers = json::array({json::object()});
  json& c = containers[0];
  c["name"] = kWorkerContainer;
  const std::string image = workerConfig.value("image", std::string());
  if (!c.contains("image") || !c["image"].is_string() || c["image"].get<std::string>().empty())
    c["image"] = image.empty() ? o.defaultImage : image;
  else if (!image.empty()) c["image"] = image;
  c.erase("command");  // the image's entrypoint is `tensor-fusion`
  c["args"] = {"worker", "--listen", "tcp://0.0.0.0:" + std::to_string(o.port), "--driver", "libcuda.so.1"};
  c["ports"] = json::array({{{"name", "worker"}, {"containerPort", o.port}}});
  c["readinessProbe"] = {{"tcpSocket", {{"port", o.port}}}, {"periodSeconds", 1}};
  spec["restartPolicy"] = "Never";  // a worker that ends has lost its client's state: a new one is made
  spec["enableServiceLinks"] = false;
  if (!spec.contains("terminationGracePeriodSeconds")) spec["terminationGracePeriodSeconds"] = 5;
  pod["metadata"] = std::move(meta);
  pod["spec"] = std::move(spec);
  return pod;
}

json connectionStatus(const json* worker, int port) {
  // A merge patch: null removes the URL (and the worker's name) that no longer holds.
  if (!worker) return {{"phase", "Pending"}, {"connectionURL", nullptr}, {"workerName", nullptr}};
  const std::string phase = worker->value("/status/phase"_json_pointer, std::string("Pending"));
  const std::string workerName = nameOf(*worker);
  if (phase == "Failed" || phase == "Succeeded" || isDeleting(*worker))
    return {{"phase", "Failed"}, {"connectionURL", nullptr}, {"workerName", workerName}};
  const std::string ip = worker->value("/status/podIP"_json_pointer, std::string());
  if (phase == "Running" && podReady(*worker) && !ip.empty())
    return {{"phase", "Running"},
            {"connectionURL", wk::connectionUrl(ip, port, workerName,
                                                worker->value("/metadata/resourceVersion"_json_pointer, std::string()))},
            {"workerName", workerName}};
  return {{"phase", "Pending"}, {"connectionURL", nullptr}, {"workerName", workerName}};
}

}  // namespace tf::controller
