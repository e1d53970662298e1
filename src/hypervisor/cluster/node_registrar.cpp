#define TF_LOG_COMPONENT "hypervisor"
#include "hypervisor/cluster/node_registrar.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>

#include "common/log.h"
#include "k8s/api/quantity.h"
#include "k8s/api/v1/types.h"
#include "k8s/api/well_known.h"
#include "k8s/time_format.h"
#include "softgpu/device_model.h"

namespace tf::hypervisor {
namespace v1 = k8s::api::v1;
namespace api = k8s::api;
using nlohmann::json;

std::string gpuObjectName(const std::string& uuid) {
  std::string out = uuid;
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

namespace {

std::string now() { return k8s::formatTime(std::chrono::system_clock::now()); }

std::string shortModel(const GpuDevice& d) {
  const softgpu::DeviceModel* m = softgpu::findModel(d.name);
  return m ? m->key : d.name;
}

uint64_t hostMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024;
    in.ignore(1 << 10, '\n');
  }
  return 0;
}

uint64_t diskBytes(const std::string& path) {
  struct statvfs s {};
  if (statvfs(path.c_str(), &s) != 0) return 0;
  return static_cast<uint64_t>(s.f_blocks) * s.f_frsize;
}

api::Quantity tflopsQuantity(double tflops) {
  return api::Quantity::fromMilli(static_cast<int64_t>(tflops * 1000 + 0.5));
}
api::Quantity bytesQuantity(uint64_t bytes) {
  return api::Quantity::fromInt(static_cast<int64_t>(bytes), api::Quantity::Format::BinarySI);
}

json annotationsOf(const json& o) { return o["metadata"].value("annotations", json::object()); }

}  // namespace

NodeRegistrar::NodeRegistrar(k8s::Client& client, RegistrarOptions options, DeviceSource devices)
    : client_(client), options_(std::move(options)), devices_(std::move(devices)) {}

NodeRegistrar::~NodeRegistrar() { stop(false); }

void NodeRegistrar::start() {
  thread_ = std::thread([this] {
    do {
      if (Status s = syncOnce(); !s) TF_LOG(Warn, "registering node %s: %s", options_.nodeName.c_str(), s.toString().c_str());
      // Until its GPUNode exists the node is not in a pool yet: look again soon, not a
      // heartbeat later, so GPUs appear within a second or two of the pool taking the node.
    } while (!stop_.waitFor(registered_ ? options_.heartbeat : std::min(options_.heartbeat, std::chrono::milliseconds(1000))));
  });
}

void NodeRegistrar::stop(bool markStopped) {
  if (!thread_.joinable()) return;
  stop_.stop();
  thread_.join();
  if (!markStopped || !registered_) return;
  auto gn = client_.get(v1::GpuNode::kResource, "", options_.nodeName);
  if (gn) (void)writeNodeStatus(*gn, {}, api::kHypervisorStopped);
}

Status NodeRegistrar::syncOnce() {
  auto gn = client_.get(v1::GpuNode::kResource, "", options_.nodeName);
  if (!gn) {
    if (!gn.error().isNotFound()) return gn.error().toStatus().withContext("reading GPUNode " + options_.nodeName);
    if (!warnedWaiting_)
      TF_LOG(Warn, "no GPUNode %s yet (does a GPUPool select this node?); waiting", options_.nodeName.c_str());
    warnedWaiting_ = true;
    registered_ = false;
    return Status::ok();
  }
  registered_ = true;
  warnedWaiting_ = false;

  k8s::ListOptions lo;
  lo.labelSelector = std::string(api::kLabelManagedBy) + "=" + options_.nodeName;
  auto existing = client_.listAll(v1::Gpu::kResource, "", lo);
  if (!existing) return existing.error().toStatus().withContext("listing GPUs");
  std::map<std::string, const json*> byName;
  for (const auto& g : existing->items) byName[g["metadata"].value("name", "")] = &g;

  std::vector<GpuDevice> present;
  for (const GpuDevice& d : devices_()) {
    if (!d.present) continue;
    present.push_back(d);
    const std::string name = gpuObjectName(d.uuid);
    auto it = byName.find(name);
    TF_RETURN_IF_ERROR(syncGpu(d, *gn, it == byName.end() ? nullptr : it->second));
    if (it != byName.end()) byName.erase(it);
  }
  for (const auto& [name, gpu] : byName) TF_RETURN_IF_ERROR(markMissing(*gpu));
  return writeNodeStatus(*gn, present, api::kHypervisorRunning);
}

Status NodeRegistrar::syncGpu(const GpuDevice& d, const json& gpuNode, const json* existing) {
  const std::string name = gpuObjectName(d.uuid);
  const std::string pool = gpuNode["metadata"].value("labels", json::object()).value(api::kLabelManagedBy, "");
  json meta = {{"name", name},
               {"labels", {{api::kLabelManagedBy, options_.nodeName}, {api::kLabelGpuPool, pool}}},
               {"annotations", {{api::kAnnotationVirtualizationCapabilities, api::kHypervisorCapabilities}}},
               {"ownerReferences",
                json::array({{{"apiVersion", v1::GpuNode::kResource.apiVersion()},
                              {"kind", v1::GpuNode::kResource.kind},
                              {"name", options_.nodeName},
                              {"uid", gpuNode["metadata"].value("uid", "")},
                              {"controller", true},
                              {"blockOwnerDeletion", true}}})}};
  json current;
  if (!existing) {
    auto r = client_.create(v1::Gpu::kResource, {{"apiVersion", v1::Gpu::kResource.apiVersion()},
                                                 {"kind", v1::Gpu::kResource.kind},
                                                 {"metadata", meta}});
    if (!r && !r.error().isAlreadyExists()) return r.error().toStatus().withContext("creating GPU " + name);
    if (r) current = *r;
    TF_LOG(Info, "registered GPU %s (%s)", name.c_str(), d.name.c_str());
  } else {
    current = *existing;
    // Labels and owner as they should be; a device back from missing loses the mark.
    json patch = {{"metadata",
                   {{"labels", meta["labels"]}, {"ownerReferences", meta["ownerReferences"]}, {"annotations", meta["annotations"]}}}};
    const json annotations = annotationsOf(current);
    const bool wasMissing = annotations.contains(api::kAnnotationGpuMissingSince);
    if (wasMissing) patch["metadata"]["annotations"][api::kAnnotationGpuMissingSince] = nullptr;
    const bool capabilities =
        annotations.value(api::kAnnotationVirtualizationCapabilities, "") == api::kHypervisorCapabilities;
    if (wasMissing || !capabilities || current["metadata"].value("labels", json::object()) != meta["labels"] ||
        current["metadata"].value("ownerReferences", json::array()) != meta["ownerReferences"]) {
      auto r = client_.patch(v1::Gpu::kResource, "", name, k8s::PatchType::Merge, patch);
      if (!r) return r.error().toStatus().withContext("updating GPU " + name);
    }
  }

  // Status: what the device is. `available` belongs to the allocator once it exists; we only
  // seed it on the first write.
  v1::Resource capacity{};
  capacity.tflops = tflopsQuantity(d.fp16Tflops);
  capacity.vram = bytesQuantity(d.memoryTotal);
  json want = {{"phase", "Running"},
               {"vendor", "NVIDIA"},
               {"model", d.name},
               {"gpuModel", shortModel(d)},
               {"capacity", capacity},
               {"uuid", d.uuid},
               {"index", d.index},
               {"numaNode", d.numaNode},
               {"nodeSelector", {{"kubernetes.io/hostname", options_.nodeName}}},
               {"isolationMode", "soft"},
               {"usedBy", "tensor-fusion"},
               {"message", "managed by the hypervisor on " + options_.nodeName}};
  const json status = current.value("status", json::object());
  if (!status.contains("available")) want["available"] = capacity;
  bool same = true;
  for (const auto& [k, v] : want.items())
    if (!status.contains(k) || status[k] != v) same = false;
  if (same) return Status::ok();
  k8s::PatchOptions po;
  po.subresource = "status";
  auto r = client_.patch(v1::Gpu::kResource, "", name, k8s::PatchType::Merge, {{"status", want}}, po);
  if (!r) return r.error().toStatus().withContext("status of GPU " + name);
  return Status::ok();
}

Status NodeRegistrar::markMissing(const json& gpu) {
  const std::string name = gpu["metadata"].value("name", "");
  const json ann = annotationsOf(gpu);
  const json status = gpu.value("status", json::object());
  if (!ann.contains(api::kAnnotationGpuMissingSince)) {
    TF_LOG(Warn, "GPU %s is gone from this node; marking it Unknown", name.c_str());
    auto r = client_.patch(v1::Gpu::kResource, "", name, k8s::PatchType::Merge,
                           {{"metadata", {{"annotations", {{api::kAnnotationGpuMissingSince, now()}}}}}});
    if (!r) return r.error().toStatus().withContext("marking GPU " + name + " missing");
    k8s::PatchOptions po;
    po.subresource = "status";
    auto s = client_.patch(v1::Gpu::kResource, "", name, k8s::PatchType::Merge,
                           {{"status", {{"phase", "Unknown"}, {"message", "the device is no longer on " + options_.nodeName}}}},
                           po);
    if (!s) return s.error().toStatus().withContext("status of GPU " + name);
    return Status::ok();
  }
  // Gone for the grace period and idle: remove it. A GPU apps still hold stays Unknown.
  const bool busy = status.contains("runningApps") && !status["runningApps"].empty();
  std::tm tm{};
  const std::string since = ann[api::kAnnotationGpuMissingSince].get<std::string>();
  if (busy || !strptime(since.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return Status::ok();
  const auto sinceTp = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (std::chrono::system_clock::now() - sinceTp < options_.missingGrace) return Status::ok();
  TF_LOG(Warn, "GPU %s has been gone since %s; removing it", name.c_str(), since.c_str());
  k8s::DeleteOptions del;
  del.preconditionUid = gpu["metadata"].value("uid", "");
  auto r = client_.remove(v1::Gpu::kResource, "", name, del);
  if (!r && !r.error().isNotFound()) return r.error().toStatus().withContext("removing GPU " + name);
  return Status::ok();
}

Status NodeRegistrar::writeNodeStatus(const json& gpuNode, const std::vector<GpuDevice>& present, const char* state) {
  json ids = json::array();
  for (const auto& d : present) ids.push_back(d.uuid);
  json mine = {{"hypervisorStatus",
                {{"hypervisorState", state}, {"hypervisorVersion", options_.version}, {"lastHeartbeatTime", now()}}}};
  if (std::string(state) == api::kHypervisorRunning) {
    mine["totalGPUs"] = present.size();
    mine["managedGPUs"] = present.size();
    mine["managedGPUDeviceIDs"] = ids;
    mine["nodeInfo"] = {{"ramSize", bytesQuantity(hostMemoryBytes())}, {"dataDiskSize", bytesQuantity(diskBytes(options_.diskPath))}};
  }
  // A GPUNode without status yet needs the fields its schema requires.
  if (!gpuNode.contains("status")) {
    v1::GpuNodeStatus init{};
    init.phase = "Pending";
    json full = init;
    full.update(mine);
    mine = full;
  }
  k8s::PatchOptions po;
  po.subresource = "status";
  auto r = client_.patch(v1::GpuNode::kResource, "", options_.nodeName, k8s::PatchType::Merge, {{"status", mine}}, po);
  if (!r) return r.error().toStatus().withContext("status of GPUNode " + options_.nodeName);
  return Status::ok();
}

}  // namespace tf::hypervisor
