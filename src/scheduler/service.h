// The extender as the controller runs it while it leads: informers on GPUs, worker pods,
// GPUResourceQuotas, GPUPools and SchedulingConfigTemplates feed the ledger; once they are
// synced the ledger is rebuilt from the GPUs and the pods' gpu-ids, and only then does the
// HTTP server answer kube-scheduler (POST /filter, /prioritize, /bind; GET /debug/allocations
// is the ledger, read-only). GPU status.available and runningApps are written back every
// `statusInterval` for the GPUs whose bookings changed (one merge patch per GPU).
//
// The leader labels its own pod kLeaderLabel=true (POD_NAME/POD_NAMESPACE), so the Service
// deploy/scheduler-extender.yaml routes kube-scheduler to it alone; every replica clears the
// label from its pod when it starts (clearLeaderLabel), as a replica that lost the lease exits.
//
//   SchedulerService s(client, events, options);
//   if (!s.start(stop)) ...;   // blocks until synced and serving (false: stopped first)
//   s.stop();
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "allocator/allocator.h"
#include "allocator/expansion.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "k8s/informer.h"
#include "k8s/stop_signal.h"
#include "scheduler/extender.h"

namespace httplib {
class Server;
}

namespace tf::scheduler {

inline constexpr const char* kLeaderLabel = "tensor-fusion.ai/extender-leader";
// Written on our pending pods when a leader starts serving: kube-scheduler moves an updated pod
// out of its unschedulable queue at once, instead of after its 60 s flush, so pods refused
// while no leader answered are retried as soon as one does.
inline constexpr const char* kRetryAnnotation = "tensor-fusion.ai/scheduling-retry";

struct ServiceOptions {
  std::string listenHost = "0.0.0.0";
  int listenPort = 8090;  // 0: any free port (port() says which)
  std::chrono::milliseconds statusInterval{1000};
  std::string podName, podNamespace;  // this replica's pod; empty: no leader label
  ExtenderOptions extender;
};

// What kube-scheduler asked of the extender since it started, per verb: calls, refusals (a
// filter that passed no node, a bind that did not bind, a malformed request) and the time spent
// answering. The controller exports them on /metrics (tensor_fusion_extender_*).
struct VerbStats {
  uint64_t calls = 0, refusals = 0;
  double seconds = 0;
};
struct ExtenderStats {
  VerbStats filter, prioritize, bind;
};

class SchedulerService {
public:
  // `bindClient` makes the writes of kube-scheduler's calls (gpu-ids, bindings, preemptions) on
  // its own token bucket, so binds neither queue behind the informers and status writes nor
  // starve them: with one shared 50 QPS bucket binds took 100 ms each and pods bound at a
  // quarter of the default scheduler's rate (bench/scheduler/pods_bench.sh).
  SchedulerService(k8s::Client& client, k8s::Client& bindClient, k8s::EventRecorder& events, ServiceOptions options);
  ~SchedulerService();

  bool start(k8s::StopSignal& stop);
  void stop();
  bool ready() const { return ready_.load(); }
  int port() const { return port_; }
  allocator::Allocator& ledger() { return ledger_; }
  ExtenderStats stats() const;

private:
  class KubeOps;
  void wireInformers();
  void rebuild();
  void writeStatuses();
  void setLeaderLabel(bool on);
  void retryPendingPods();
  // A pool's PoolConfig from its object and its template (the informers' caches).
  allocator::PoolReading poolReading(const nlohmann::json& pool) const;
  // Warning Event VramExpansionIgnored on a pool or GPUNode, once per message ("" clears it).
  void expansionIgnored(const nlohmann::json& o, const std::string& apiVersion, const char* kind,
                        const std::string& why);

  k8s::Client& client_;
  ServiceOptions options_;
  allocator::Allocator ledger_;
  std::unique_ptr<KubeOps> ops_;
  Extender extender_;
  k8s::Informer pods_, gpus_, quotas_, pools_, templates_, gpuNodes_;
  k8s::EventRecorder& events_;
  std::map<std::string, std::string> expansionWarnings_;  // kind/name -> the warning last said (once each)
  std::mutex feedMu_;  // handlers vs. rebuild: a handler never runs half-way through a rebuild
  std::unique_ptr<httplib::Server> http_;
  std::thread httpThread_, statusThread_;
  k8s::StopSignal statusStop_;
  std::set<std::string> statusRetry_;
  struct VerbCounters {
    std::atomic<uint64_t> calls{0}, refusals{0}, nanos{0};
  };
  VerbCounters filterStats_, prioritizeStats_, bindStats_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> nudge_{false};  // an allocation was released since the last tick
  int port_ = -1;
};

// Removes kLeaderLabel from this replica's pod (a no-op without a pod name); false when the
// apiserver could not be told, to be tried again.
bool clearLeaderLabel(k8s::Client& client, const ServiceOptions& options);

}  // namespace tf::scheduler
