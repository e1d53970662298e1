#define TF_LOG_COMPONENT "hypervisor"
#include "hypervisor/cluster/pod_vgpus.h"

#include <filesystem>
#include <set>

#include "allocator/expansion.h"
#include "common/log.h"
#include "common/units.h"
#include "hypervisor/cluster/node_registrar.h"
#include "hypervisor/hypervisor.h"
#include "hypervisor/tier_policy.h"
#include "k8s/api/v1/types.h"
#include "k8s/api/quantity.h"
#include "k8s/api/well_known.h"
#include "k8s/builtin.h"
#include "k8s/events.h"
#include "k8s/informer.h"

namespace tf::hypervisor {

namespace v1 = k8s::api::v1;

namespace fs = std::filesystem;
namespace api = k8s::api;

namespace {

const nlohmann::json* annotation(const nlohmann::json& pod, const char* key) {
  auto m = pod.find("metadata");
  if (m == pod.end()) return nullptr;
  auto a = m->find("annotations");
  if (a == m->end() || !a->is_object()) return nullptr;
  auto v = a->find(key);
  return v == a->end() || !v->is_string() ? nullptr : &*v;
}

std::string annotationText(const nlohmann::json& pod, const char* key) {
  const nlohmann::json* v = annotation(pod, key);
  return v ? v->get<std::string>() : std::string();
}

// A quantity annotation as a double of its unit (TFLOPS) or bytes; 0 when absent.
Result<double> quantityAnnotation(const nlohmann::json& pod, const char* key, bool bytes) {
  std::string text = annotationText(pod, key);
  if (text.empty()) return 0.0;
  auto q = api::Quantity::parse(text);
  if (!q) return invalidArgument(std::string(key) + ": '" + text + "' is not a quantity");
  if (q->milliValue() < 0) return invalidArgument(std::string(key) + ": '" + text + "' is negative");
  return bytes ? static_cast<double>(q->value()) : q->milliValue() / 1000.0;
}

Result<double> percentAnnotation(const nlohmann::json& pod, const char* key) {
  std::string text = annotationText(pod, key);
  if (text.empty()) return 0.0;
  char* end = nullptr;
  double v = strtod(text.c_str(), &end);
  if (end == text.c_str() || *end || v < 0 || v > 100)
    return invalidArgument(std::string(key) + ": '" + text + "' is not a percent from 0 to 100");
  return v;
}

std::vector<std::string> splitCsv(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    while (!item.empty() && isspace(static_cast<unsigned char>(item.front()))) item.erase(item.begin());
    while (!item.empty() && isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

bool finished(const nlohmann::json& pod) {
  std::string phase = pod.value("/status/phase"_json_pointer, std::string());
  return phase == "Succeeded" || phase == "Failed";
}

std::string podKey(const nlohmann::json& pod) {
  return pod.value("/metadata/namespace"_json_pointer, std::string()) + "/" +
         pod.value("/metadata/name"_json_pointer, std::string());
}

// The directory holding a pod vGPU's region: <podRoot>/<ns>/<pod>.
bool isPodDirectory(const std::string& podRoot, const std::string& regionPath) {
  fs::path dir = fs::path(regionPath).parent_path();
  return dir.parent_path().parent_path() == fs::path(podRoot);
}

}  // namespace

std::string podVgpuName(const nlohmann::json& pod) {
  return api::podVgpuName(pod.value("/metadata/uid"_json_pointer, std::string()));
}

Result<std::optional<VgpuRequest>> vgpuRequestForPod(const nlohmann::json& pod,
                                                     const std::vector<GpuDevice>& devices,
                                                     const std::string& podRoot) {
  using None = std::optional<VgpuRequest>;
  if (pod.value("/metadata/labels"_json_pointer, nlohmann::json::object())
          .value(api::kLabelComponent, "") != api::kComponentWorker)
    return None();
  if (finished(pod)) return None();
  const std::string ids = annotationText(pod, api::kAnnotationGpuIds);
  if (ids.empty()) return None();  // not allocated yet
  std::vector<const GpuDevice*> here;
  for (const std::string& id : splitCsv(ids))
    for (const GpuDevice& d : devices)
      if (gpuObjectName(d.uuid) == id) here.push_back(&d);
  if (here.empty()) return None();
  if (here.size() > static_cast<size_t>(kMaxVgpuDevices))
    return invalidArgument(std::string(api::kAnnotationGpuIds) + ": '" + ids + "' names " +
                           std::to_string(here.size()) + " GPUs; a vGPU spans at most " +
                           std::to_string(kMaxVgpuDevices));
  std::string isolation = annotationText(pod, api::kAnnotationIsolation);
  if (!isolation.empty() && isolation != "soft" && isolation != "hard")
    return unimplemented(std::string(api::kAnnotationIsolation) + ": '" + isolation +
                         "' for a local pod is not made by the hypervisor (soft or hard)");

  VgpuRequest r;
  r.name = podVgpuName(pod);
  // Several GPUs of this node (gpu-count): one vGPU over all of them, the limits on each.
  for (const GpuDevice* d : here) r.devices.push_back(d->uuid);
  r.count = static_cast<int>(r.devices.size());
  r.isolation = isolation == "hard" ? Isolation::Hard : Isolation::Soft;
  r.scheduled = true;
  auto tr = quantityAnnotation(pod, api::kAnnotationTflopsRequest, false);
  auto tl = quantityAnnotation(pod, api::kAnnotationTflopsLimit, false);
  auto vr = quantityAnnotation(pod, api::kAnnotationVramRequest, true);
  auto vl = quantityAnnotation(pod, api::kAnnotationVramLimit, true);
  auto pr = percentAnnotation(pod, api::kAnnotationComputeRequest);
  auto pl = percentAnnotation(pod, api::kAnnotationComputeLimit);
  for (auto* x : {&tr, &tl, &vr, &vl, &pr, &pl})
    if (!*x) return x->status();
  r.tflopsLimit = *tl > 0 ? *tl : *tr;
  r.tflopsRequest = *tr > 0 ? *tr : r.tflopsLimit;
  r.vramLimit = static_cast<uint64_t>(*vl > 0 ? *vl : *vr);
  r.vramRequest = static_cast<uint64_t>(*vr > 0 ? *vr : *vl);
  if (r.tflopsLimit <= 0) {
    r.percentLimit = *pl > 0 ? *pl : *pr;
    r.percentRequest = *pr > 0 ? *pr : r.percentLimit;
  }
  // No compute asked for: nothing promised, the whole device as the ceiling.
  if (r.tflopsLimit <= 0 && r.percentLimit <= 0) r.percentLimit = 100;
  if (r.vramLimit == 0)
    return invalidArgument(std::string(api::kAnnotationVramLimit) + ": the pod has no VRAM limit or request");
  if (std::string qos = annotationText(pod, api::kAnnotationQos); !qos.empty()) {
    auto q = parseQos(qos);
    if (!q) return invalidArgument(std::string(api::kAnnotationQos) + ": " + q.status().message());
    r.qos = *q;
  }
  // By UID, not name: a pod re-created under the same name while the old one's vGPU is still
  // being released must not share (or lose) its directory.
  const fs::path dir = fs::path(podRoot) / pod.value("/metadata/namespace"_json_pointer, std::string()) /
                       pod.value("/metadata/uid"_json_pointer, std::string());
  r.regionPath = (dir / "region").string();
  if (r.isolation == Isolation::Hard) {
    // Its own worker, limited by the region, on a socket file the pod sees in its directory.
    r.workerListen = "shm://" + (dir / api::kPodWorkerSocket).string();
    r.workerTokenFile = (dir / api::kPodWorkerTokenFile).string();
  }
  return None(std::move(r));
}

nlohmann::json podMovedPatch(const Vgpu& moved) {
  std::string ids;
  for (const DeviceGrant& g : moved.devices) ids += (ids.empty() ? "" : ",") + gpuObjectName(g.deviceUuid);
  return {{"metadata", {{"annotations", {{api::kAnnotationGpuIds, ids}}}}}};
}

std::string podMovedMessage(const Vgpu& moved, const std::string& from, int clients, int movedClients,
                            uint64_t bytes, uint64_t maxPauseNs) {
  char pause[32];
  snprintf(pause, sizeof pause, "%.1f ms", maxPauseNs / 1e6);
  return "vGPU " + moved.id + " moved from " + from + " to " + deviceUuids(moved.devices) + ": " +
         std::to_string(movedClients) + " of " + std::to_string(clients) + " process(es), " +
         units::formatBytes(bytes) + ", paused at most " + pause +
         (movedClients < clients ? " (the others stay on the old worker until they end)" : "");
}

PodVgpuSync::PodVgpuSync(k8s::Client& client, Hypervisor& hypervisor, PodVgpuOptions options)
    : client_(client), hypervisor_(hypervisor), options_(std::move(options)) {
  k8s::ListWatchOptions lw;
  lw.fieldSelector = "spec.nodeName=" + options_.nodeName;
  lw.labelSelector = std::string(api::kLabelComponent) + "=" + api::kComponentWorker;
  pods_ = std::make_unique<k8s::Informer>(k8s::makeListerWatcher(client_, k8s::builtin::kPods, "", lw));
  auto changed = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = true;
    cv_.notify_all();
  };
  pods_->addHandlers({.onAdd = [changed](const k8s::ObjectPtr&) { changed(); },
                      .onUpdate = [changed](const k8s::ObjectPtr&, const k8s::ObjectPtr&) { changed(); },
                      .onDelete = [changed](const k8s::ObjectPtr&) { changed(); }});
  events_ = std::make_unique<k8s::EventRecorder>(client_, "tensor-fusion-hypervisor", options_.nodeName);
}

PodVgpuSync::~PodVgpuSync() { stop(); }

void PodVgpuSync::start() {
  hypervisor_.onMoved([this](const Vgpu& v, const Hypervisor::Migration& m) {
    if (api::isPodVgpuName(v.request.name))
      podMoved(v, m.from, podMovedMessage(v, m.from, m.clients, m.moved, m.bytes, m.maxPauseNs));
  });
  pods_->start();
  thread_ = std::thread([this] { loop(); });
}

void PodVgpuSync::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.exchange(true)) return;
    cv_.notify_all();
  }
  hypervisor_.onMoved(nullptr);
  if (thread_.joinable()) thread_.join();
  pods_->stop();
}

bool PodVgpuSync::synced() const { return pods_->hasSynced(); }

void PodVgpuSync::loop() {
  while (!stopping_) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, options_.resync, [this] { return dirty_ || stopping_; });
      if (stopping_) break;
      dirty_ = false;
    }
    if (pods_->hasSynced()) syncOnce();
  }
}

void PodVgpuSync::warnOnce(const nlohmann::json& pod, const std::string& reason, const std::string& message) {
  std::string& last = warned_[podVgpuName(pod)];
  if (last == message) return;
  last = message;
  TF_LOG(Warn, "pod %s: %s", podKey(pod).c_str(), message.c_str());
  auto e = events_->event(pod, k8s::EventType::Warning, reason, message);
  if (!e) TF_LOG(Warn, "cannot post an Event for %s: %s", podKey(pod).c_str(), e.error().message.c_str());
}

PodVgpuSync::PoolVram PodVgpuSync::poolVram(const nlohmann::json& pod, Qos qos,
                                            const std::vector<GpuDevice>& devices) {
  const std::string pool = annotationText(pod, api::kAnnotationGpuPool);
  if (pool.empty()) return {};
  // Read when a vGPU is made, not watched: a template's change applies to the next pods.
  Result<VgpuTiers> tiers = VgpuTiers{};
  auto p = client_.get(v1::GpuPool::kResource, "", pool);
  if (!p) {
    tiers = p.error().toStatus().withContext("GPUPool " + pool);
  } else if (std::string tpl = p->value("/spec/schedulingConfigTemplate"_json_pointer, std::string()); !tpl.empty()) {
    auto t = client_.get(v1::SchedulingConfigTemplate::kResource, "", tpl);
    if (!t) tiers = t.error().toStatus().withContext("SchedulingConfigTemplate " + tpl);
    else if (t->contains("spec")) tiers = vgpuTiersFor((*t)["spec"], qos);
  }
  if (!tiers) {
    warnOnce(pod, "VramTiersIgnored", "the pool's VRAM tier policy cannot be read: " + tiers.status().message());
    return {};
  }
  // The pool decides how far past its memory a device may go for this vGPU: its share of the
  // node's expansion when the vGPU is tiered (the scheduler's rule, expansion.h), else none.
  PoolVram out{*tiers, std::map<std::string, uint64_t>{}};
  if (!tiers->enabled) return out;
  auto expansion = allocator::vramExpansionOf(*p);
  Result<int64_t> lent = expansion.status();
  if (expansion) {
    auto node = client_.get(v1::GpuNode::kResource, "", options_.nodeName);
    auto host = node ? allocator::hostFactsOf(*node)
                     : Result<allocator::HostFacts>(node.error().toStatus().withContext("GPUNode " + options_.nodeName));
    lent = host ? allocator::nodeVramLent(*expansion, *host) : Result<int64_t>(host.status());
  }
  if (!lent) {
    warnOnce(pod, "VramExpansionIgnored", "the vGPU gets no more VRAM than its GPU has: " + lent.status().message());
    return out;
  }
  int64_t nodeVram = 0;
  for (const GpuDevice& d : devices)
    if (d.present) nodeVram += static_cast<int64_t>(d.memoryTotal);
  for (const GpuDevice& d : devices)
    if (d.present)
      (*out.vramAllowance)[d.uuid] =
          static_cast<uint64_t>(allocator::gpuVramAllowance(*lent, static_cast<int64_t>(d.memoryTotal), nodeVram));
  return out;
}

void PodVgpuSync::podMoved(const Vgpu& moved, const std::string& from, const std::string& message) {
  k8s::ObjectPtr pod;
  for (const k8s::ObjectPtr& p : pods_->store().list())
    if (podVgpuName(*p) == moved.request.name) pod = p;
  if (!pod) {
    TF_LOG(Warn, "vGPU %s moved but its pod is not known here: its gpu-ids still name %s", moved.id.c_str(),
           from.c_str());
    return;
  }
  TF_LOG(Info, "pod %s: %s", podKey(*pod).c_str(), message.c_str());
  auto patched = client_.patch(k8s::builtin::kPods, pod->value("/metadata/namespace"_json_pointer, std::string()),
                               pod->value("/metadata/name"_json_pointer, std::string()), k8s::PatchType::Merge,
                               podMovedPatch(moved));
  if (!patched) {
    const std::string why = "the pod's " + std::string(api::kAnnotationGpuIds) +
                            " cannot be updated after its vGPU moved: " + patched.error().message;
    TF_LOG(Warn, "pod %s: %s", podKey(*pod).c_str(), why.c_str());
    (void)events_->event(*pod, k8s::EventType::Warning, "VgpuMoveNotRecorded", why);
  }
  auto e = events_->event(*pod, k8s::EventType::Normal, "VgpuMoved", message);
  if (!e) TF_LOG(Warn, "cannot post an Event: %s", e.error().message.c_str());
}

void PodVgpuSync::syncOnce() {
  const std::vector<GpuDevice> devices = hypervisor_.devices();
  std::map<std::string, Vgpu> existing;  // name -> vGPU, pod vGPUs only
  for (Vgpu& v : hypervisor_.vgpus())
    if (api::isPodVgpuName(v.request.name)) existing.emplace(v.request.name, std::move(v));

  std::set<std::string> wanted;
  for (const k8s::ObjectPtr& pod : pods_->store().list()) {
    // Released only when its pod is gone or finished: a restarted hypervisor whose device list
    // is not complete yet must not take a running pod's vGPU away (and make it again later).
    if (!finished(*pod)) wanted.insert(podVgpuName(*pod));
    auto want = vgpuRequestForPod(*pod, devices, options_.podRoot);
    if (!want) {
      wanted.insert(podVgpuName(*pod));  // keep what it has: an annotation edit is no release
      warnOnce(*pod, "VgpuNotCreated", want.status().message());
      continue;
    }
    if (!*want) continue;
    VgpuRequest& r = **want;
    wanted.insert(r.name);
    if (existing.count(r.name)) continue;
    if (r.isolation != Isolation::Soft) {
      PoolVram pv = poolVram(*pod, r.qos, devices);
      r.tiers = pv.tiers;
      r.vramAllowance = std::move(pv.vramAllowance);
    }
    auto made = hypervisor_.createVgpu(r);
    if (!made) {
      warnOnce(*pod, "VgpuNotCreated", "cannot make the pod's vGPU: " + made.status().message());
      continue;
    }
    warned_.erase(r.name);
    const std::string on = deviceUuids(made->devices);
    TF_LOG(Info, "vGPU %s for pod %s on %s (%s)", made->id.c_str(), podKey(*pod).c_str(), on.c_str(),
           made->regionPath.c_str());
    std::string tiers;
    if (const VgpuTiers& t = made->request.tiers; t.enabled)
      tiers = "; VRAM tiers from its pool: idle " +
              (t.freezeToMemMs ? std::to_string(t.freezeToMemMs / 1000) + "s to host memory" : std::string("-")) +
              ", " + (t.freezeToDiskMs ? std::to_string(t.freezeToDiskMs / 1000) + "s to disk" : std::string("-"));
    auto e = events_->event(*pod, k8s::EventType::Normal, "VgpuReady",
                            "vGPU " + made->id + " on " + on + " at " + made->regionPath + tiers);
    if (!e) TF_LOG(Warn, "cannot post an Event: %s", e.error().message.c_str());
  }
  for (const auto& [name, v] : existing) {
    if (wanted.count(name)) continue;
    TF_LOG(Info, "pod of vGPU %s is gone or finished; releasing it", v.id.c_str());
    if (Status s = hypervisor_.deleteVgpu(v.id); !s) {
      TF_LOG(Warn, "cannot release vGPU %s: %s", v.id.c_str(), s.toString().c_str());
      continue;
    }
    warned_.erase(name);
    if (isPodDirectory(options_.podRoot, v.regionPath)) {
      std::error_code ec;
      fs::remove_all(fs::path(v.regionPath).parent_path(), ec);
    }
  }
}

}  // namespace tf::hypervisor
