// The extender's three verbs over the ledger (src/allocator); what they do to the cluster goes
// through ClusterOps, so unit tests run them without an apiserver.
//
//   Extender ext(ledger, ops);
//   ext.setReady(true);                        // after the ledger was rebuilt
//   Reply r = ext.filter(requestBody);         // r.status (HTTP), r.body (JSON text)
//
// filter:     every node the pod's GPUs fit, the others with the reason users see in the
//             FailedScheduling Event. Pods without label component=worker pass untouched.
//             A high/critical pod that fits nowhere preempts: the allocator's plan names the
//             victims (lower QoS, eviction-protection elapsed), we delete them with an Event
//             each, reserve what they free for the preemptor (no other pod can take it in
//             between) and fail its filter until their GPUs are released; then it passes on
//             that node alone (1.20's preemptVerb only narrows the in-tree preemption, which
//             cannot see GPUs).
// prioritize: the node score (0..100) mapped to 0..10, rounded.
// bind:       assume → (gang: wait for the peers) → POST pods/binding carrying gpu-ids (and
//             effective-hard-sm-percent) as annotations, which the apiserver writes onto the
//             pod with the node in one write → commit. A failed binding is checked against
//             the apiserver's pod: bound as asked (the answer was lost) commits, anything else
//             rolls back. One write per pod, as the default scheduler's, where a patch and a
//             binding made two. A pod that already carries gpu-ids (a record an earlier
//             version wrote before binding) is bound on those GPUs.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "allocator/allocator.h"
#include "common/status.h"

namespace tf::scheduler {

// What the extender does to the cluster.
class ClusterOps {
public:
  virtual ~ClusterOps() = default;
  // The pod as the cache has it (the apiserver's if the cache does not), and as the apiserver
  // has it now.
  virtual Result<nlohmann::json> getPod(const std::string& ns, const std::string& name) = 0;
  virtual Result<nlohmann::json> readPod(const std::string& ns, const std::string& name) = 0;
  // POST pods/binding: the node, and `annotations` set on the pod in the same write.
  virtual Status bindPod(const std::string& ns, const std::string& name, const std::string& uid,
                         const std::string& node, const std::map<std::string, std::string>& annotations) = 0;
  virtual Status deletePod(const std::string& ns, const std::string& name, const std::string& uid) = 0;
  // An Event on the pod (best effort).
  virtual void podEvent(const nlohmann::json& pod, bool warning, const std::string& reason,
                        const std::string& message) = 0;
};

struct ExtenderOptions {
  // The longest a bind waits for its gang (kube-scheduler's extender httpTimeout must be
  // longer); a gang-timeout of 0 ("forever") waits this long.
  std::chrono::milliseconds maxGangWait{std::chrono::seconds(25)};
  // How long a preemptor's reservation of the node its victims leave outlives a preemptor that
  // does not come back to bind (deleted, rescheduled elsewhere by hand).
  std::chrono::seconds reservationTtl{120};
  std::function<allocator::Clock::time_point()> now = [] { return allocator::Clock::now(); };
};

struct Reply {
  int status = 200;
  std::string body;  // JSON, written by extender_api's encoders
  bool refused = false;  // filter passed no node, or bind did not bind (counted in the stats)
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

class Extender {
public:
  Extender(allocator::Allocator& ledger, ClusterOps& ops, ExtenderOptions options = {});

  void setReady(bool ready);
  Reply filter(const std::string& body);
  Reply prioritize(const std::string& body);
  Reply bind(const std::string& body);
  // The preemptions started and not finished (victims still booked), by preemptor UID.
  size_t pendingPreemptionsForTest() const;

private:
  std::string preempt(const allocator::Request& r, const nlohmann::json& pod, const std::vector<std::string>& nodes);

  allocator::Allocator& ledger_;
  ClusterOps& ops_;
  ExtenderOptions options_;
  std::atomic<bool> ready_{false};
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::string>> preemptions_;  // preemptor → victims
  std::string preemptionUnderWay(const std::string& uid);
  // kube-scheduler calls prioritize right after filter with the same pod and the nodes that
  // passed, in the order filter answered: the last filter's scores are reused while the ledger
  // has not changed.
  struct LastFilter {
    std::string uid;
    uint64_t generation = 0;
    std::vector<std::pair<std::string, int>> passed;  // node, score; in the answer's order
  };
  LastFilter last_;
};

// 0..100 → 0..kMaxExtenderPriority, rounded half up.
int64_t extenderScore(int score);

}  // namespace tf::scheduler
