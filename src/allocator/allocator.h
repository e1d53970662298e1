// The GPU ledger (reference §4.3): every GPU's capacity and the allocations booked on it, keyed
// by pod UID. One lock guards everything, so two decisions never book the same capacity:
//
//   Allocator a;
//   a.rebuild(gpus, pods);                       // from GPU objects and the pods' gpu-ids
//   auto fits = a.filter(req, {"n1", "n2"});     // per node: fits + score, or the reason
//   auto gpus = a.assume(req, "n1");             // booked, not yet recorded in the cluster
//   ... patch gpu-ids, POST the binding ...
//   ok ? a.commit(req.uid) : a.rollback(req.uid);
//   a.release(uid);                              // the pod is gone, Succeeded or Failed
//
// Available = capacity - Σ per-GPU requests (TensorFusion's admission rule; limits count only
// toward the pool's virtual capacity, capacity × tflopsOversellRatio / 100, shown in dump()).
// A GPU's VRAM capacity counts its share of its node's expansion (expansion.h) when its pool
// expands VRAM and tiers some QoS; only hard-isolated pods of a tiered QoS may book into it.
// Filters (§4.4): pool, phase Running (and used by TensorFusion), gpu-indices, isolation mode,
// gpu-model, vendor, a whole idle GPU for shared/dedicated, requests per GPU, gpu-count GPUs on
// one node, at most kMaxWorkersPerNode workers per node. Model and vendor come before capacity
// (TensorFusion checks them after) so a pod naming a model no node has is told that.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "allocator/expansion.h"
#include "allocator/types.h"
#include "common/status.h"

namespace tf::allocator {

inline constexpr int kMaxWorkersPerNode = 256;

struct Booking {
  std::string gpu;
  Amount amount;  // requests charged to this GPU
  bool operator==(const Booking&) const = default;
};

struct Allocation {
  Request request;
  std::string node;
  std::vector<Booking> bookings;
  bool committed = false;  // recorded in the pod's gpu-ids
  // A preemptor's hold on the node its victims are leaving, until it binds or this passes.
  std::optional<Clock::time_point> reservedUntil;
};

struct NodeFit {
  std::string node;
  bool fits = false;
  std::string reason;  // why not (node-independent wording, so the scheduler can count them)
  int score = 0;       // 0..100, when it fits
};

struct Victim {
  std::string uid, ns, name;
  Qos qos = Qos::Low;
};
struct PreemptionPlan {
  std::string node;
  std::vector<Victim> victims;
};

class Allocator {
public:
  Allocator() = default;
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // ---- inputs (informers)
  // A GPU's facts; its bookings stay (a changed capacity changes what is available).
  void upsertGpu(const Gpu& gpu);
  void removeGpu(const std::string& name);
  void setPool(const std::string& pool, const PoolConfig& config);
  void removePool(const std::string& pool);
  // A node's host memory and disk (its GPUNode's nodeInfo), the base of its pool's expansion.
  void setNodeHost(const std::string& node, const HostFacts& host);
  void removeNodeHost(const std::string& node);
  void setQuota(const Quota& quota);
  void removeQuota(const std::string& ns, const std::string& name);
  // Replaces GPUs and allocations: every pod with gpu-ids is booked as committed (the cluster's
  // record), whatever the capacity says. Pods without gpu-ids are skipped.
  void rebuild(const std::vector<Gpu>& gpus, const std::vector<Request>& pods);
  // A pod with gpu-ids seen by an informer: booked as committed if not known (idempotent);
  // a committed pod whose gpu-ids name other GPUs now (its vGPU moved on its node) is booked
  // on those instead.
  // `node`: the pod's spec.nodeName, used when its GPUs are not known yet.
  void observe(const Request& pod, const std::string& node);

  // ---- decisions
  // GPUResourceQuota of the pod's namespace; the error names the quota and the rule.
  Status checkQuota(const Request& request) const;
  // Quota first (an error fails every node), then each node. A pod already booked (a retried
  // bind, a pod recorded by a previous leader) fits only its node.
  // `generation` (optional) receives the ledger's generation the answer was computed at.
  Result<std::vector<NodeFit>> filter(const Request& request, const std::vector<std::string>& nodes,
                                      uint64_t* generation = nullptr) const;
  // Changes with every booking, GPU, pool or quota change: equal generations, equal answers.
  uint64_t generation() const;
  // Books the best GPUs of `node` (by the pool's GPU-level score) as assumed; the GPU names.
  // Already booked on `node`: its GPUs again. ResourceExhausted when it no longer fits.
  Result<std::vector<std::string>> assume(const Request& request, const std::string& node);
  Status commit(const std::string& uid);
  bool rollback(const std::string& uid);  // an assumed booking only
  bool release(const std::string& uid);   // any booking
  // For a high or critical pod that fits none of `nodes`: the node whose release of the fewest
  // lower-QoS, committed, unprotected allocations makes it fit.
  std::optional<PreemptionPlan> planPreemption(const Request& request, const std::vector<std::string>& nodes,
                                               Clock::time_point now) const;
  // After planPreemption: books the preemptor on the plan's node as if its victims were gone
  // (the node is booked past its capacity until they release), so nothing else takes what they
  // free; its filter then passes that node alone and its bind commits the booking. Not
  // committed by `until`, the reservation is dropped (expireReservations).
  Status reserve(const Request& request, const PreemptionPlan& plan, Clock::time_point until);
  // Drops the reservations whose time has passed; how many.
  size_t expireReservations(Clock::time_point now);
  // Gang (§4.7): after assume(), waits until the group's required members are booked (then
  // the group is satisfied for good), or `deadline`: then every waiting member of the round
  // fails and must roll back (all or none). Non-gang requests return at once.
  Status waitForGang(const Request& request, std::chrono::steady_clock::time_point deadline);

  // ---- views
  std::optional<Allocation> allocation(const std::string& uid) const;
  std::optional<Amount> available(const std::string& gpu) const;
  // VRAM a GPU may book past its memory (its share of its node's expansion); 0 when none.
  int64_t vramAllowance(const std::string& gpu) const;
  std::optional<Gpu> gpu(const std::string& name) const;
  // GPUs whose bookings changed since the last call.
  std::vector<std::string> takeDirty();
  // {"available": {...}, "runningApps": [...]} for GPU.status, or nullopt if unknown.
  std::optional<nlohmann::json> gpuStatus(const std::string& gpu) const;
  // The whole ledger, for /debug/allocations.
  nlohmann::json dump() const;
  size_t gpuCount() const;

private:
  // What the filters compare, as small integers (interned strings and a mode mask), made when
  // the GPU is stored: a decision over 10,000 GPUs compares no strings.
  struct GpuKey {
    uint32_t pool = 0, model = 0, vendor = 0;  // 0: empty
    bool runnable = false;                     // phase Running, used by TensorFusion (or nobody)
    bool cordoned = false;                     // takes no new work
    uint8_t modes = 0;                         // bit per Isolation it takes
  };
  // A request's side of the same comparison.
  struct Criteria {
    static constexpr uint32_t kAny = 0xffffffff, kNone = 0xfffffffe;
    uint32_t pool = kAny, model = kAny, vendor = kAny;
    uint8_t mode = 0;  // the request's isolation bit
    uint8_t tieredQos = 0;  // hard isolation: the request's QoS bit (a GPU whose pool tiers it
                            // lets it book into its VRAM allowance); 0 otherwise
    Placement placement = Placement::NodeCompactGpuLowLoad;  // its pool's
  };
  struct NodeState;
  struct GpuState {
    Gpu info;
    GpuKey key;
    Amount used;            // Σ requests booked
    int64_t limitsMilliTflops = 0;  // Σ limits booked (virtual capacity)
    int64_t vramAllowance = 0;      // its share of its node's VRAM expansion (its pool's)
    uint8_t tieredQos = 0;          // bit per QoS its pool tiers: those may use the allowance
    std::set<std::string> pods;
    NodeState* home = nullptr;  // its node's entry, and its place there
    size_t slot = 0;
    Amount capacity() const { return info.capacity + Amount{0, vramAllowance}; }
    Amount available() const { return capacity() - used; }
  };
  // What a decision reads of each GPU, kept beside its node's other GPUs: a decision walks
  // contiguous memory instead of one scattered GpuState per GPU.
  struct HotGpu {
    GpuKey key;
    int index = -1;
    Amount capacity, used;  // capacity with the VRAM allowance
    int64_t vramAllowance = 0;
    uint8_t tieredQos = 0;
    // Its share of a node's score as it stands (nothing released), per kind of placement:
    // compacting (CompactFirst, NodeCompactGPULowLoad's node level) and spreading (LowLoadFirst).
    int nodeScoreCompact = 0, nodeScoreSpread = 0;
    Amount available() const { return capacity - used; }
  };
  // One node: its GPUs and its workers, found with one lookup per decision. It exists while
  // it has a GPU or a worker.
  struct NodeState {
    std::vector<GpuState*> states;  // by GPU name
    std::vector<HotGpu> hot;        // the same order
    int workers = 0;                // allocations placed on the node
  };
  struct Usage {
    Amount requests, limits;
    int64_t workers = 0;
  };
  struct Gang {
    bool satisfied = false;
    uint64_t round = 0;
    int members = 0;
  };
  struct NodeEval {
    bool fits = false;
    std::string reason;
    std::vector<GpuState*> survivors;
    int score = 0;
  };

  NodeEval evalNode(const Request& r, const Criteria& c, const std::string& node,
                    const std::unordered_set<std::string>* released, bool wantSurvivors) const;
  // The same for a node already looked up (`here`: its entry, null if it has none).
  NodeEval evalNode(const Request& r, const Criteria& c, const NodeState* here, const std::string& node,
                    const std::unordered_set<std::string>* released, bool wantSurvivors) const;
  Criteria criteriaLocked(const Request& r) const;
  uint32_t internLocked(const std::string& s);
  void keyGpuLocked(GpuState& g);
  void refreshHotLocked(const GpuState& g);
  // Each GPU's VRAM allowance on `node` from its pool and the node's host facts.
  void refreshAllowancesLocked(const std::string& node);
  Status checkQuotaLocked(const Request& r) const;
  Placement placementOf(const std::string& pool) const;
  void book(Allocation a);
  // Books `r` on the best GPUs of `node`, counting `released` pods' bookings as free.
  Result<std::vector<std::string>> bookOnNodeLocked(const Request& r, const std::string& node,
                                                    const std::unordered_set<std::string>* released,
                                                    std::optional<Clock::time_point> reservedUntil);
  void unbook(const std::string& uid);
  void indexGpuLocked(GpuState& g, bool add);
  static Usage usageOf(const Request& r);
  static Amount bookingFor(const Request& r, const GpuState& gpu);

  mutable std::mutex mu_;
  std::condition_variable gangCv_;
  std::unordered_map<std::string, GpuState> gpus_;
  std::unordered_map<std::string, NodeState> nodes_;
  std::unordered_map<std::string, Allocation> allocations_;
  std::unordered_map<std::string, Clock::time_point> reservations_;  // uncommitted reservations by uid
  std::unordered_map<std::string, Usage> nsUsage_;
  std::map<std::pair<std::string, std::string>, Quota> quotas_;  // (ns, name)
  std::unordered_map<std::string, PoolConfig> pools_;
  std::unordered_map<std::string, HostFacts> hosts_;  // by node
  std::unordered_map<std::string, Gang> gangs_;
  std::unordered_set<std::string> dirty_;
  uint64_t generation_ = 0;
  std::unordered_map<std::string, std::set<std::string>> pending_;  // unknown GPU → pods booked on it
  std::unordered_map<std::string, uint32_t> interned_;  // GpuKey's strings; "" is 0
};

}  // namespace tf::allocator
