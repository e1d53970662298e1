#define TF_LOG_COMPONENT "webhook"
#include "webhook/admission_cache.h"

#include <algorithm>

#include "common/log.h"
#include "k8s/api/well_known.h"

namespace tf::webhook {
namespace {

using nlohmann::json;
namespace wk = k8s::api;

std::string label(const json& o, const char* key) {
  const json* labels = o.contains("metadata") ? &o["metadata"] : nullptr;
  if (!labels || !labels->contains("labels") || !(*labels)["labels"].is_object()) return {};
  return (*labels)["labels"].value(key, std::string());
}

// What a summary holds of one GPU: a change of anything else (its available capacity, its
// running apps) leaves every summary as it is.
json summarized(const json& gpu) {
  json status = gpu.value("status", json::object());
  if (!status.is_object()) status = json::object();
  return {label(gpu, wk::kLabelGpuPool), label(gpu, wk::kLabelManagedBy), status.value("gpuModel", json()),
          status.value("model", json()), status.value("capacity", json()), gpu.contains("status")};
}

// The objects of a store as T, skipping (and logging) any that do not decode.
template <typename T> std::vector<T> decodeAll(const std::vector<k8s::ObjectPtr>& objects, const char* what) {
  std::vector<T> out;
  out.reserve(objects.size());
  for (const auto& o : objects) {
    try {
      out.push_back(o->get<T>());
    } catch (const std::exception& e) {
      TF_LOG(Warn, "admission cache: skipping %s %s: %s", what, k8s::objectKey(*o).c_str(), e.what());
    }
  }
  return out;
}

k8s::ResourceEventHandlers handlersOf(PoolGpuSummaries& s) {
  return {.onAdd = [&s](const k8s::ObjectPtr& o) { s.onAdd(*o); },
          .onUpdate = [&s](const k8s::ObjectPtr& a, const k8s::ObjectPtr& b) { s.onUpdate(*a, *b); },
          .onDelete = [&s](const k8s::ObjectPtr& o) { s.onDelete(*o); }};
}

}  // namespace

PoolGpuSummaries::PoolGpuSummaries() = default;

void PoolGpuSummaries::markDirty(const json& gpu) {
  std::lock_guard lock(mu_);
  summaries_.erase(label(gpu, wk::kLabelGpuPool));
}

void PoolGpuSummaries::onAdd(const json& gpu) { markDirty(gpu); }
void PoolGpuSummaries::onDelete(const json& gpu) { markDirty(gpu); }
void PoolGpuSummaries::onUpdate(const json& before, const json& after) {
  if (summarized(before) == summarized(after)) return;
  markDirty(before);  // it may have left that pool
  markDirty(after);
}

PoolGpus PoolGpuSummaries::of(const std::string& pool, const k8s::Store& gpus) {
  // Under the lock: the informer puts a change in the store before its handler marks the pool,
  // and the handler waits for this computation, so a summary computed from the store as it was
  // before a change is erased right after it is kept.
  std::lock_guard lock(mu_);
  auto it = summaries_.find(pool);
  if (it != summaries_.end()) return it->second;
  PoolGpus summary = summarizePoolGpus(decodeAll<v1::Gpu>(gpus.byIndex(kPoolIndex, pool), "GPU"), pool);
  ++recomputations_;
  summaries_[pool] = summary;
  return summary;
}

int PoolGpuSummaries::recomputations() const {
  std::lock_guard lock(mu_);
  return recomputations_;
}

AdmissionCache::AdmissionCache(k8s::Client& client)
    : pools_(k8s::makeListerWatcher(client, v1::GpuPool::kResource)),
      profiles_(k8s::makeListerWatcher(client, v1::WorkloadProfile::kResource)),
      quotas_(k8s::makeListerWatcher(client, v1::GpuResourceQuota::kResource)),
      gpus_(k8s::makeListerWatcher(client, v1::Gpu::kResource)) {
  quotas_.addIndexer(k8s::kNamespaceIndex, k8s::namespaceIndexFunc());
  gpus_.addIndexer(PoolGpuSummaries::kPoolIndex, k8s::labelIndexFunc(wk::kLabelGpuPool));
  gpus_.addHandlers(handlersOf(summaries_));
}

AdmissionCache::~AdmissionCache() { stop(); }

void AdmissionCache::start() {
  for (k8s::Informer* i : {&pools_, &profiles_, &quotas_, &gpus_}) i->start();
}

void AdmissionCache::stop() {
  for (k8s::Informer* i : {&pools_, &profiles_, &quotas_, &gpus_}) i->stop();
}

bool AdmissionCache::synced() const {
  return pools_.hasSynced() && profiles_.hasSynced() && quotas_.hasSynced() && gpus_.hasSynced();
}

bool AdmissionCache::waitForSync(k8s::Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (k8s::Informer* i : {&pools_, &profiles_, &quotas_, &gpus_}) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= k8s::Duration::zero() || !i->waitForSync(left)) return false;
  }
  return true;
}

std::vector<v1::GpuPool> AdmissionCache::pools() const {
  return decodeAll<v1::GpuPool>(pools_.store().list(), "GPUPool");
}

std::optional<v1::WorkloadProfile> AdmissionCache::profile(const std::string& ns, const std::string& name) const {
  k8s::ObjectPtr o = profiles_.store().get(k8s::objectKey(ns, name));
  if (!o) return std::nullopt;
  auto decoded = decodeAll<v1::WorkloadProfile>({o}, "WorkloadProfile");
  if (decoded.empty()) return std::nullopt;
  return std::move(decoded.front());
}

std::vector<v1::GpuResourceQuota> AdmissionCache::quotas(const std::string& ns) const {
  auto objects = quotas_.store().byIndex(k8s::kNamespaceIndex, ns);
  // As a list from the apiserver comes: by name (policy takes the first).
  std::sort(objects.begin(), objects.end(), [](const k8s::ObjectPtr& a, const k8s::ObjectPtr& b) {
    return k8s::objectKey(*a) < k8s::objectKey(*b);
  });
  return decodeAll<v1::GpuResourceQuota>(objects, "GPUResourceQuota");
}

PoolGpus AdmissionCache::poolGpus(const std::string& pool) { return summaries_.of(pool, gpus_.store()); }

}  // namespace tf::webhook
