#include "webhook/patch.h"

#include <algorithm>
#include <random>

#include "k8s/api/well_known.h"

namespace tf::webhook {
namespace {

using nlohmann::json;
namespace wk = k8s::api;

enum class Library { None, Limiter, Stub };

Library libraryFor(const Decision& d) {
  if (d.isolation == "shared") return d.isLocal ? Library::None : Library::Stub;
  if (d.isLocal && d.isolation == "soft") return Library::Limiter;
  return Library::Stub;
}

// Sets `name` in a container's env; a value the user already had for a search path is kept
// after ours.
void setEnv(json& container, const std::string& name, json entry, bool prependToUser = false) {
  json& env = container["env"];
  if (!env.is_array()) env = json::array();
  entry["name"] = name;
  for (auto& e : env)
    if (e.value("name", "") == name) {
      if (prependToUser && e.contains("value") && entry.contains("value") && !e["value"].get<std::string>().empty())
        entry["value"] = entry["value"].get<std::string>() + ":" + e["value"].get<std::string>();
      e = std::move(entry);
      return;
    }
  env.push_back(std::move(entry));
}

// Appends `item` to the array `parent[field]` unless an element has the same `key`.
void addUnique(json& parent, const char* field, const char* key, json item) {
  json& array = parent[field];
  if (!array.is_array()) array = json::array();
  for (const auto& e : array)
    if (e.value(key, "") == item[key]) return;
  array.push_back(std::move(item));
}

void addMount(json& container, json mount) { addUnique(container, "volumeMounts", "mountPath", std::move(mount)); }
void addVolume(json& spec, json volume) { addUnique(spec, "volumes", "name", std::move(volume)); }

json fieldRef(const char* path) { return {{"valueFrom", {{"fieldRef", {{"fieldPath", path}}}}}}; }
json value(const std::string& v) { return {{"value", v}}; }

}  // namespace

bool alreadyInjected(const json& pod) {
  for (const auto& c : pod.value("/spec/initContainers"_json_pointer, json::array()))
    if (c.value("name", "") == kInitContainerName) return true;
  return false;
}

std::string newConnectionName(const json& pod) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::random_device rd;
  std::string id;
  for (int i = 0; i < 10; ++i) id += kAlphabet[rd() % (sizeof kAlphabet - 1)];
  const std::string name = pod.value("/metadata/name"_json_pointer, std::string());
  if (!name.empty()) return name + "-tf-vgpu-" + id;
  return pod.value("/metadata/generateName"_json_pointer, std::string()) + "tf-vgpu-" + id;
}

std::string connectionQueryUrl(const std::string& endpoint, const std::string& name, const std::string& ns) {
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  // Kubernetes names are DNS labels and subdomains: nothing in them needs escaping in a query.
  return base + wk::kConnectionApiPath + "?name=" + name + "&namespace=" + ns;
}

json mutatePod(const json& pod, const Decision& d, const PatchOptions& o) {
  json out = pod;
  json& meta = out["metadata"];
  json& labels = meta["labels"];
  if (!labels.is_object()) labels = json::object();
  labels[wk::kLabelComponent] = d.isLocal ? wk::kComponentWorker : wk::kComponentClient;
  labels[wk::kLabelWorkload] = d.workload;
  labels[wk::kLabelGpuPool] = d.pool;
  json& annotations = meta["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  // Webhook-only keys a user wrote are dropped unless we decided them.
  for (const auto& spec : annotationTable())
    if (spec.who == Who::Webhook) annotations.erase(spec.key);
  for (const auto& [k, v] : formatAnnotations(d.values)) annotations[k] = v;
  if (!d.isLocal) annotations[wk::kAnnotationSelectedWorkload] = d.workload;

  json& spec = out["spec"];
  if (d.isLocal) spec["schedulerName"] = wk::kSchedulerName;
  if ((d.qos == "high" || d.qos == "critical") && !spec.contains("priorityClassName")) {
    spec["priorityClassName"] = "tensor-fusion-" + d.qos;
    spec.erase("priority");  // the apiserver's Priority plugin refuses a value that disagrees with the class
  }

  const Library lib = libraryFor(d);
  if (lib == Library::None) return out;

  const std::string image = d.clientImage.empty() ? o.defaultClientImage : d.clientImage;
  const std::string dest = kLibMountPath;
  std::string copy = lib == Library::Limiter
                         ? "cp " + o.imageLibDir + "/" + kLimiterLibrary + " " + dest + "/"
                         : "mkdir -p " + dest + "/remote && cp " + o.imageLibDir + "/remote/libcuda.so.1 " +
                               o.imageLibDir + "/remote/libnvidia-ml.so.1 " + dest + "/remote/";
  json init = {{"name", kInitContainerName},
               {"image", image},
               {"command", {"/bin/sh", "-c", copy}},
               {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}, {"limits", {{"memory", "64Mi"}}}}},
               {"volumeMounts", {{{"name", kLibVolumeName}, {"mountPath", dest}}}}};
  json& inits = spec["initContainers"];
  if (!inits.is_array()) inits = json::array();
  inits.insert(inits.begin(), std::move(init));  // before the user's own init containers
  addVolume(spec, {{"name", kLibVolumeName}, {"emptyDir", json::object()}});
  // The pod's own directory of the node's vGPU directory: its region (soft), or its worker's
  // socket and token (hard), made by the hypervisor once the pod is bound.
  const bool localHard = d.isLocal && d.isolation == "hard";
  const bool podDirectory = lib == Library::Limiter || localHard;
  if (podDirectory)
    addVolume(spec, {{"name", kRunVolumeName}, {"hostPath", {{"path", wk::kPodVgpuHostDir}, {"type", "DirectoryOrCreate"}}}});
  const std::string podDir = wk::kPodVgpuMountPath;

  for (auto& c : spec["containers"]) {
    if (std::find(d.containers.begin(), d.containers.end(), c.value("name", "")) == d.containers.end()) continue;
    addMount(c, {{"name", kLibVolumeName}, {"mountPath", dest}, {"readOnly", true}});
    // POD_NAME, POD_NAMESPACE and POD_UID first: the later values expand them.
    setEnv(c, "POD_NAME", fieldRef("metadata.name"));
    setEnv(c, "POD_NAMESPACE", fieldRef("metadata.namespace"));
    setEnv(c, "POD_UID", fieldRef("metadata.uid"));
    if (podDirectory)
      addMount(c, {{"name", kRunVolumeName},
                   {"mountPath", podDir},
                   {"subPathExpr", "$(POD_NAMESPACE)/$(POD_UID)"},
                   {"mountPropagation", "HostToContainer"}});
    if (lib == Library::Limiter) {
      setEnv(c, "LD_PRELOAD", value(dest + "/" + kLimiterLibrary), true);
      setEnv(c, "TF_VGPU_REGION", value(podDir + "/region"));
      setEnv(c, "TF_VGPU_REGION_WAIT_MS", value(wk::kPodVgpuRegionWaitMs));
    } else {
      setEnv(c, "LD_LIBRARY_PATH", value(dest + "/remote"), true);
    }
    if (localHard) {
      setEnv(c, wk::kEnvRemoteWorker, value("shm://" + podDir + "/" + wk::kPodWorkerSocket));
      setEnv(c, wk::kEnvRemoteTokenFile, value(podDir + "/" + wk::kPodWorkerTokenFile));
      setEnv(c, wk::kEnvRemoteWaitMs, value(wk::kPodVgpuRegionWaitMs));
    }
    if (!d.isLocal && !d.connectionName.empty()) {
      const std::string endpoint = d.operatorEndpoint.empty() ? o.operatorEndpoint : d.operatorEndpoint;
      setEnv(c, wk::kEnvConnectionName, value(d.connectionName));
      setEnv(c, wk::kEnvConnectionNamespace, value(d.ns));
      setEnv(c, wk::kEnvGetConnectionUrl, value(connectionQueryUrl(endpoint, d.connectionName, d.ns)));
    }
  }
  return out;
}

json podPatch(const json& pod, const Decision& d, const PatchOptions& o) {
  return json::diff(pod, mutatePod(pod, d, o));
}

}  // namespace tf::webhook
