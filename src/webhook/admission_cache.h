// What the webhook reads at every admission (the GPUPools, the namespace's WorkloadProfiles and
// GPUResourceQuotas, the chosen pool's GPUs), kept by informers so that admitting a pod reads
// nothing from the apiserver: a pool of 10,000 GPUs would otherwise be listed whole for every
// pod created. Every replica of the controller runs one (the webhook is not leader-elected).
//
//   AdmissionCache cache(client);
//   cache.start();                       // lists and watches; admissions read live until synced
//   Admitter admitter(client, options, &cache);
//
// The informers lag the apiserver by the watch's latency (milliseconds). The Admitter reads
// live what the cache cannot know yet: a pool or profile that is not in it. A quota created a
// moment before a pod may not yet give that pod its defaults, as with Kubernetes' own
// admission plugins.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "k8s/client.h"
#include "k8s/informer.h"
#include "webhook/policy.h"

namespace tf::webhook {

// The per-pool GPU summaries, kept from GPU objects as they come and go. A GPU's status
// changes with every allocation on it; only a change of what a summary holds (its pool, node,
// model or capacity) marks its pool for recomputing. Thread-safe.
class PoolGpuSummaries {
public:
  PoolGpuSummaries();
  void onAdd(const nlohmann::json& gpu);
  void onUpdate(const nlohmann::json& before, const nlohmann::json& after);
  void onDelete(const nlohmann::json& gpu);
  // Recomputed from the store's GPUs of `pool` when something it holds changed.
  PoolGpus of(const std::string& pool, const k8s::Store& gpus);
  // The store index the summaries are computed from (by the pool label).
  static constexpr const char* kPoolIndex = "gpupool";
  // How many times a summary was computed (tests).
  int recomputations() const;

private:
  void markDirty(const nlohmann::json& gpu);

  mutable std::mutex mu_;
  std::map<std::string, PoolGpus> summaries_;  // computed and still true
  int recomputations_ = 0;
};

class AdmissionCache {
public:
  explicit AdmissionCache(k8s::Client& client);
  ~AdmissionCache();
  void start();
  void stop();
  bool synced() const;
  bool waitForSync(k8s::Duration timeout);

  std::vector<v1::GpuPool> pools() const;
  std::optional<v1::WorkloadProfile> profile(const std::string& ns, const std::string& name) const;
  std::vector<v1::GpuResourceQuota> quotas(const std::string& ns) const;  // by name
  PoolGpus poolGpus(const std::string& pool);

private:
  k8s::Informer pools_, profiles_, quotas_, gpus_;
  PoolGpuSummaries summaries_;
};

}  // namespace tf::webhook
