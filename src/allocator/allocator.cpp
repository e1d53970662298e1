#include "allocator/allocator.h"

#include <algorithm>

#include "allocator/scoring.h"
#include "k8s/api/quantity.h"

namespace tf::allocator {
namespace api = k8s::api;

namespace {

std::string joined(const std::vector<int>& v) {
  std::string s;
  for (int i : v) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

nlohmann::json resourceJson(const Amount& a) {
  return {{"tflops", api::Quantity::fromMilli(a.milliTflops).toString()},
          {"vram", api::Quantity::fromInt(a.vramBytes, api::Quantity::Format::BinarySI).toString()}};
}

nlohmann::json sliceJson(const Slice& s) {
  nlohmann::json j = resourceJson({s.milliTflops, s.vramBytes});
  if (s.computePercent >= 0) j["compute"] = std::to_string(s.computePercent);
  return j;
}

std::string quotaName(const Quota& q) { return "GPUResourceQuota " + q.ns + "/" + q.name; }

}  // namespace

// ------------------------------------------------------------------------------ inputs

Amount Allocator::bookingFor(const Request& r, const GpuState& gpu) {
  // A whole GPU takes its allowance too: nobody else books into it.
  return r.wholeGpu() ? gpu.capacity() : r.request.on(gpu.info.capacity);
}

Allocator::Usage Allocator::usageOf(const Request& r) {
  // Quota sums TFLOPS only: a compute-percent request counts 0 TFLOPS (TensorFusion's rule).
  Usage u;
  u.requests = {r.request.computePercent < 0 ? r.request.milliTflops * r.count : 0, r.request.vramBytes * r.count};
  u.limits = {r.limit.computePercent < 0 ? r.limit.milliTflops * r.count : 0, r.limit.vramBytes * r.count};
  u.workers = 1;
  return u;
}

void Allocator::indexGpuLocked(GpuState& g, bool add) {
  NodeState& node = nodes_[g.info.node];
  auto& list = node.states;
  if (add) {
    list.push_back(&g);
    std::sort(list.begin(), list.end(), [](auto* a, auto* b) { return a->info.name < b->info.name; });
  } else {
    std::erase(list, &g);
    g.home = nullptr;
    if (list.empty() && node.workers <= 0) {
      nodes_.erase(g.info.node);
      return;
    }
  }
  node.hot.resize(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    list[i]->home = &node;  // elements of an unordered_map stay where they are
    list[i]->slot = i;
    refreshHotLocked(*list[i]);
  }
}

void Allocator::refreshHotLocked(const GpuState& g) {
  if (!g.home) return;
  const Amount avail = g.available();
  const Amount cap = g.capacity();
  g.home->hot[g.slot] = {g.key, g.info.index, cap, g.used, g.vramAllowance, g.tieredQos,
                         gpuScore(Placement::CompactFirst, cap, avail, true),
                         gpuScore(Placement::LowLoadFirst, cap, avail, true)};
}

void Allocator::refreshAllowancesLocked(const std::string& node) {
  auto n = nodes_.find(node);
  if (n == nodes_.end()) return;
  int64_t nodeVram = 0;
  for (const GpuState* g : n->second.states) nodeVram += g->info.capacity.vramBytes;
  const auto host = hosts_.find(node);
  for (GpuState* g : n->second.states) {
    int64_t allowance = 0;
    uint8_t tiered = 0;
    if (auto p = pools_.find(g->info.pool); p != pools_.end() && p->second.expandsVram() && host != hosts_.end())
      if (auto lent = nodeVramLent(p->second.vramExpansion, host->second)) {
        allowance = gpuVramAllowance(*lent, g->info.capacity.vramBytes, nodeVram);
        for (size_t q = 0; q < p->second.vramTiers.size(); ++q)
          if (p->second.vramTiers[q]) tiered |= static_cast<uint8_t>(1u << q);
      }
    if (allowance == g->vramAllowance && tiered == g->tieredQos) continue;
    g->vramAllowance = allowance;
    g->tieredQos = tiered;
    refreshHotLocked(*g);
    dirty_.insert(g->info.name);
  }
}

uint32_t Allocator::internLocked(const std::string& s) {
  if (s.empty()) return 0;
  return interned_.try_emplace(s, static_cast<uint32_t>(interned_.size() + 1)).first->second;
}

void Allocator::keyGpuLocked(GpuState& g) {
  const Gpu& info = g.info;
  GpuKey& k = g.key;
  k.pool = internLocked(info.pool);
  k.model = internLocked(info.model);
  k.vendor = internLocked(info.vendor);
  k.runnable = info.phase == "Running" && (info.usedBy.empty() || info.usedBy == "tensor-fusion");
  k.cordoned = info.cordoned;
  // No mode: any. Shared fits any mode (TensorFusion's rule), so its bit is always set.
  k.modes = info.isolationMode.empty() ? 0xff : 1u << static_cast<int>(Isolation::Shared);
  const auto take = [&](const std::string& mode) {
    if (auto i = parseIsolation(mode)) k.modes |= 1u << static_cast<int>(*i);
  };
  take(info.isolationMode);
  for (const auto& m : info.isolationModes) take(m);
}

Allocator::Criteria Allocator::criteriaLocked(const Request& r) const {
  Criteria c;
  const auto lookup = [&](const std::string& s) {
    if (s.empty()) return Criteria::kAny;
    auto it = interned_.find(s);
    return it == interned_.end() ? Criteria::kNone : it->second;  // no GPU has it
  };
  c.pool = lookup(r.pool);
  c.model = lookup(r.model);
  c.vendor = lookup(r.vendor);
  c.mode = static_cast<uint8_t>(1u << static_cast<int>(r.isolation));
  c.placement = placementOf(r.pool);
  if (r.isolation == Isolation::Hard) c.tieredQos = static_cast<uint8_t>(1u << static_cast<int>(r.qos));
  return c;
}

void Allocator::upsertGpu(const Gpu& gpu) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = gpus_.try_emplace(gpu.name);
  GpuState& g = it->second;
  if (!inserted && g.info == gpu) return;
  ++generation_;
  const std::string oldNode = inserted ? std::string() : g.info.node;
  if (!inserted && g.info.node != gpu.node) indexGpuLocked(g, false);
  const bool reindex = inserted || g.info.node != gpu.node;
  g.info = gpu;
  keyGpuLocked(g);
  if (reindex) indexGpuLocked(g, true);
  refreshHotLocked(g);
  // The node's VRAM is split among its GPUs: a GPU coming or going changes every share.
  if (!oldNode.empty() && oldNode != gpu.node) refreshAllowancesLocked(oldNode);
  refreshAllowancesLocked(gpu.node);
  if (inserted) {
    // Allocations recorded before the GPU was known (pods listed first): charge them now.
    // Their amounts were unknown for whole-GPU and percentage requests: compute them now.
    if (auto p = pending_.find(gpu.name); p != pending_.end()) {
      for (const auto& uid : p->second) {
        Allocation& a = allocations_.at(uid);
        for (auto& b : a.bookings)
          if (b.gpu == gpu.name) {
            b.amount = bookingFor(a.request, g);
            g.used += b.amount;
            g.limitsMilliTflops += a.request.limit.on(gpu.capacity).milliTflops;
            g.pods.insert(uid);
          }
      }
      pending_.erase(p);
      refreshHotLocked(g);
    }
  }
  dirty_.insert(gpu.name);
}

void Allocator::removeGpu(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = gpus_.find(name);
  if (it == gpus_.end()) return;
  ++generation_;
  const std::string node = it->second.info.node;
  indexGpuLocked(it->second, false);
  refreshAllowancesLocked(node);
  // Its bookings stay (the pods' record); charged again if it comes back.
  for (const auto& uid : it->second.pods) {
    pending_[name].insert(uid);
    for (auto& b : allocations_.at(uid).bookings)
      if (b.gpu == name) b.amount = allocations_.at(uid).request.request.on({});
  }
  gpus_.erase(it);
  dirty_.erase(name);
}

void Allocator::setPool(const std::string& pool, const PoolConfig& config) {
  std::lock_guard lock(mu_);
  ++generation_;
  pools_[pool] = config;
  for (const auto& [node, state] : nodes_) refreshAllowancesLocked(node);
}
void Allocator::removePool(const std::string& pool) {
  std::lock_guard lock(mu_);
  ++generation_;
  pools_.erase(pool);
  for (const auto& [node, state] : nodes_) refreshAllowancesLocked(node);
}
void Allocator::setNodeHost(const std::string& node, const HostFacts& host) {
  std::lock_guard lock(mu_);
  if (auto it = hosts_.find(node); it != hosts_.end() && it->second == host) return;
  ++generation_;
  hosts_[node] = host;
  refreshAllowancesLocked(node);
}
void Allocator::removeNodeHost(const std::string& node) {
  std::lock_guard lock(mu_);
  if (!hosts_.erase(node)) return;
  ++generation_;
  refreshAllowancesLocked(node);
}
void Allocator::setQuota(const Quota& quota) {
  std::lock_guard lock(mu_);
  ++generation_;
  quotas_[{quota.ns, quota.name}] = quota;
}
void Allocator::removeQuota(const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  ++generation_;
  quotas_.erase({ns, name});
}

void Allocator::book(Allocation a) {
  ++generation_;
  const std::string uid = a.request.uid;
  for (const auto& b : a.bookings) {
    dirty_.insert(b.gpu);
    auto it = gpus_.find(b.gpu);
    if (it == gpus_.end()) {
      pending_[b.gpu].insert(uid);  // charged when the GPU appears (upsertGpu)
      continue;
    }
    it->second.used += b.amount;
    refreshHotLocked(it->second);
    it->second.limitsMilliTflops += a.request.limit.on(it->second.info.capacity).milliTflops;
    it->second.pods.insert(uid);
  }
  ++nodes_[a.node].workers;
  Usage u = usageOf(a.request);
  Usage& ns = nsUsage_[a.request.ns];
  ns.requests += u.requests;
  ns.limits += u.limits;
  ns.workers += u.workers;
  if (!a.request.gangKey.empty()) ++gangs_[a.request.gangKey].members;
  allocations_.emplace(uid, std::move(a));
}

void Allocator::unbook(const std::string& uid) {
  reservations_.erase(uid);
  auto it = allocations_.find(uid);
  if (it == allocations_.end()) return;
  ++generation_;
  const Allocation& a = it->second;
  for (const auto& b : a.bookings) {
    dirty_.insert(b.gpu);
    auto g = gpus_.find(b.gpu);
    if (g == gpus_.end()) {
      if (auto p = pending_.find(b.gpu); p != pending_.end() && p->second.erase(uid) && p->second.empty())
        pending_.erase(p);
      continue;
    }
    g->second.used -= b.amount;
    refreshHotLocked(g->second);
    g->second.limitsMilliTflops -= a.request.limit.on(g->second.info.capacity).milliTflops;
    g->second.pods.erase(uid);
  }
  if (auto n = nodes_.find(a.node); n != nodes_.end() && --n->second.workers <= 0 && n->second.states.empty())
    nodes_.erase(n);
  Usage u = usageOf(a.request);
  Usage& ns = nsUsage_[a.request.ns];
  ns.requests -= u.requests;
  ns.limits -= u.limits;
  ns.workers -= u.workers;
  if (!a.request.gangKey.empty()) --gangs_[a.request.gangKey].members;
  allocations_.erase(it);
}

void Allocator::rebuild(const std::vector<Gpu>& gpus, const std::vector<Request>& pods) {
  std::lock_guard lock(mu_);
  ++generation_;
  for (auto& [name, g] : gpus_) dirty_.insert(name);
  gpus_.clear();
  nodes_.clear();
  allocations_.clear();
  reservations_.clear();  // not in the cluster's record: a preemptor plans again if it must
  nsUsage_.clear();
  pending_.clear();
  for (auto& [key, gang] : gangs_) gang.members = 0;
  for (const Gpu& gpu : gpus) {
    GpuState& g = gpus_[gpu.name];
    g.info = gpu;
    keyGpuLocked(g);
    indexGpuLocked(g, true);
    dirty_.insert(gpu.name);
  }
  for (const auto& [node, state] : nodes_) refreshAllowancesLocked(node);
  for (const Request& r : pods) {
    if (r.gpuIds.empty() || r.uid.empty()) continue;
    Allocation a;
    a.request = r;
    a.committed = true;
    for (const auto& id : r.gpuIds) {
      auto g = gpus_.find(id);
      if (g != gpus_.end() && a.node.empty()) a.node = g->second.info.node;
      a.bookings.push_back({id, g == gpus_.end() ? r.request.on({}) : bookingFor(r, g->second)});
    }
    book(std::move(a));
  }
  // A group that has members placed was satisfied by the previous leader.
  for (auto& [key, gang] : gangs_) gang.satisfied = gang.satisfied || gang.members > 0;
}

void Allocator::observe(const Request& pod, const std::string& node) {
  if (pod.gpuIds.empty() || pod.uid.empty()) return;
  std::lock_guard lock(mu_);
  if (auto it = allocations_.find(pod.uid); it != allocations_.end()) {
    std::vector<std::string> booked;
    for (const auto& b : it->second.bookings) booked.push_back(b.gpu);
    if (!it->second.committed || booked == pod.gpuIds) {
      it->second.committed = true;  // recorded in the cluster: nothing to roll back any more
      it->second.reservedUntil.reset();
      reservations_.erase(pod.uid);
      return;
    }
    // Its record names other GPUs now (its node's hypervisor moved its vGPU): booked there.
    unbook(pod.uid);
  }
  Allocation a;
  a.request = pod;
  a.committed = true;
  a.node = node;
  for (const auto& id : pod.gpuIds) {
    auto g = gpus_.find(id);
    if (g != gpus_.end()) a.node = g->second.info.node;
    a.bookings.push_back({id, g == gpus_.end() ? pod.request.on({}) : bookingFor(pod, g->second)});
  }
  book(std::move(a));
}

// --------------------------------------------------------------------------- decisions

Placement Allocator::placementOf(const std::string& pool) const {
  auto it = pools_.find(pool);
  return it == pools_.end() ? Placement::NodeCompactGpuLowLoad : it->second.placement;
}

Status Allocator::checkQuota(const Request& request) const {
  std::lock_guard lock(mu_);
  return checkQuotaLocked(request);
}

Status Allocator::checkQuotaLocked(const Request& r) const {
  const Usage need = usageOf(r);
  const Slice& req = r.request;
  const Slice& lim = r.limit;
  const auto used = nsUsage_.find(r.ns);
  const Usage have = used == nsUsage_.end() ? Usage{} : used->second;
  for (auto it = quotas_.lower_bound({r.ns, ""}); it != quotas_.end() && it->first.first == r.ns; ++it) {
    const Quota& q = it->second;
    const auto refuse = [&](const std::string& why) { return resourceExhausted(quotaName(q) + ": " + why); };
    // single: per GPU request and limit, zero fields do not limit (TensorFusion's rule).
    const auto over = [](int64_t v, int64_t max) { return max > 0 && v > max; };
    if (const auto& m = q.singleMaxRequests) {
      if (req.computePercent < 0 && over(req.milliTflops, m->milliTflops))
        return refuse("single.maxRequests.tflops exceeded by the pod's tflops-request");
      if (over(req.vramBytes, m->vramBytes)) return refuse("single.maxRequests.vram exceeded by the pod's vram-request");
    }
    if (const auto& m = q.singleMaxLimits) {
      if (lim.computePercent < 0 && over(lim.milliTflops, m->milliTflops))
        return refuse("single.maxLimits.tflops exceeded by the pod's tflops-limit");
      if (over(lim.vramBytes, m->vramBytes)) return refuse("single.maxLimits.vram exceeded by the pod's vram-limit");
    }
    if (q.singleMaxGpuCount && r.count > *q.singleMaxGpuCount)
      return refuse("single.maxGPUCount is " + std::to_string(*q.singleMaxGpuCount) + ", the pod asks for " +
                    std::to_string(r.count));
    // total: used (committed + assumed) + this pod; a zero field is a zero quota.
    if (q.totalRequests && !q.totalRequests->covers(have.requests + need.requests))
      return refuse("total.requests (" + describe(*q.totalRequests) + ") would be exceeded: " +
                    describe(have.requests) + " used, the pod adds " + describe(need.requests));
    if (q.totalLimits && !q.totalLimits->covers(have.limits + need.limits))
      return refuse("total.limits (" + describe(*q.totalLimits) + ") would be exceeded: " + describe(have.limits) +
                    " used, the pod adds " + describe(need.limits));
    if (q.maxWorkers && have.workers + 1 > *q.maxWorkers)
      return refuse("total.maxWorkers is " + std::to_string(*q.maxWorkers) + " and " + std::to_string(have.workers) +
                    " workers are placed");
  }
  return Status::ok();
}

namespace {
// The filters in order; a GPU's stage is the first it fails (kPassed: none).
enum Stage : int { kPool, kPhase, kCordoned, kIsolation, kIndex, kModel, kVendor, kCapacity, kPassed, kStages };
}  // namespace

Allocator::NodeEval Allocator::evalNode(const Request& r, const Criteria& c, const std::string& node,
                                        const std::unordered_set<std::string>* released, bool wantSurvivors) const {
  auto it = nodes_.find(node);
  return evalNode(r, c, it == nodes_.end() ? nullptr : &it->second, node, released, wantSurvivors);
}

Allocator::NodeEval Allocator::evalNode(const Request& r, const Criteria& c, const NodeState* node,
                                        const std::string& nodeName, const std::unordered_set<std::string>* released,
                                        bool wantSurvivors) const {
  NodeEval e;
  if (!node || node->states.empty()) {
    e.reason = "node has no TensorFusion GPU";
    return e;
  }
  const auto freed = [&](const GpuState& g) {
    Amount a;
    if (!released) return a;
    for (const auto& uid : *released) {
      if (!g.pods.count(uid)) continue;
      for (const auto& b : allocations_.at(uid).bookings)
        if (b.gpu == g.info.name) a += b.amount;
    }
    return a;
  };
  const auto idle = [&](const GpuState& g) {
    for (const auto& uid : g.pods)
      if (!released || !released->count(uid)) return false;
    return true;
  };
  const std::string_view isolation = isolationName(r.isolation);
  const Placement mode = c.placement;
  // One pass: each GPU's stage, and the node score over the GPUs the pod could use by kind
  // (TensorFusion's matching and isolation-compatible GPUs), before their load is looked at.
  int counts[kStages] = {};
  int64_t scoreSum = 0;
  int scored = 0;
  const NodeState& here = *node;
  for (size_t i = 0; i < here.hot.size(); ++i) {
    const HotGpu& h = here.hot[i];
    const GpuKey& k = h.key;
    Stage st = kPassed;
    if (c.pool != Criteria::kAny && k.pool != 0 && k.pool != c.pool) st = kPool;
    else if (!k.runnable) st = kPhase;
    else if (k.cordoned) st = kCordoned;
    else if (!(k.modes & c.mode)) st = kIsolation;
    if (st == kPassed) {
      const Amount avail = released ? h.available() + freed(*here.states[i]) : h.available();
      scoreSum += released                         ? gpuScore(mode, h.capacity, avail, true)
                  : mode == Placement::LowLoadFirst ? h.nodeScoreSpread
                                                    : h.nodeScoreCompact;
      ++scored;
      if (!r.indices.empty() && std::find(r.indices.begin(), r.indices.end(), h.index) == r.indices.end())
        st = kIndex;
      else if (c.model != Criteria::kAny && k.model != c.model) st = kModel;
      else if (c.vendor != Criteria::kAny && k.vendor != c.vendor) st = kVendor;
      else if (r.wholeGpu() ? !idle(*here.states[i])
                            : !(avail - Amount{0, (h.tieredQos & c.tieredQos) ? 0 : h.vramAllowance}).covers(r.request.on(h.capacity)))
        st = kCapacity;
    }
    ++counts[st];
    if (st == kPassed && wantSurvivors) e.survivors.push_back(here.states[i]);
  }
  e.score = scored == 0 ? 0 : static_cast<int>(scoreSum / scored);
  // The first stage after which fewer than gpu-count GPUs remain names the reason.
  int left = static_cast<int>(here.hot.size());
  const auto each = [&] { return r.count > 1 ? " (" + std::to_string(r.count) + " GPUs on one node)" : std::string(); };
  for (int st = kPool; st < kPassed; ++st) {
    left -= counts[st];
    if (left >= r.count) continue;
    switch (st) {
      case kPool:
        e.reason = left == 0 ? "no GPU of pool \"" + r.pool + "\""
                             : "fewer than " + std::to_string(r.count) + " GPUs of pool \"" + r.pool + "\"";
        break;
      case kPhase: e.reason = "GPU not Running" + each(); break;
      case kCordoned: e.reason = "GPU cordoned" + each(); break;
      case kIsolation: e.reason = "no GPU in isolation mode " + std::string(isolation) + each(); break;
      case kIndex: e.reason = "no GPU with index in [" + joined(r.indices) + "]" + each(); break;
      case kModel: e.reason = "no GPU of model \"" + r.model + "\"" + each(); break;
      case kVendor: e.reason = "no GPU of vendor \"" + r.vendor + "\"" + each(); break;
      default:
        if (r.wholeGpu())
          e.reason = std::string("no idle GPU (") + (r.dedicated ? "dedicated-gpu" : "shared isolation") +
                     " takes a whole GPU)" + each();
        else
          e.reason = "insufficient GPU capacity: the pod requests " +
                     (r.request.computePercent >= 0
                          ? std::to_string(r.request.computePercent) + " percent compute, " +  // no %: kube-scheduler formats the text
                                api::Quantity::fromInt(r.request.vramBytes, api::Quantity::Format::BinarySI).toString() +
                                " VRAM"
                          : describe({r.request.milliTflops, r.request.vramBytes})) +
                     " per GPU" + each();
    }
    e.survivors.clear();
    return e;
  }
  int workers = here.workers;
  if (released)
    for (const auto& uid : *released)
      if (allocations_.at(uid).node == nodeName) --workers;
  if (workers >= kMaxWorkersPerNode) {
    e.reason = "node has " + std::to_string(kMaxWorkersPerNode) + " TensorFusion workers, the most per node";
    e.survivors.clear();
    return e;
  }
  e.fits = true;
  return e;
}

uint64_t Allocator::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

Result<std::vector<NodeFit>> Allocator::filter(const Request& r, const std::vector<std::string>& nodes,
                                               uint64_t* generation) const {
  std::lock_guard lock(mu_);
  if (generation) *generation = generation_;
  std::vector<NodeFit> out;
  out.reserve(nodes.size());
  if (auto a = allocations_.find(r.uid); !r.uid.empty() && a != allocations_.end()) {
    for (const auto& n : nodes)
      out.push_back({n, n == a->second.node, n == a->second.node ? "" : "pod is allocated on node " + a->second.node, 0});
    return out;
  }
  if (Status s = checkQuotaLocked(r); !s) return s;
  const Criteria c = criteriaLocked(r);
  // A decision over thousands of nodes waits on memory, not arithmetic: look every node up
  // first (independent lookups overlap), then evaluate each with the GPUs of the nodes a few
  // places ahead already on their way into the cache.
  std::vector<const NodeState*> states(nodes.size(), nullptr);
  for (size_t i = 0; i < nodes.size(); ++i)
    if (auto it = nodes_.find(nodes[i]); it != nodes_.end()) states[i] = &it->second;
  constexpr size_t kAhead = 4;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (i + kAhead < nodes.size() && states[i + kAhead]) {
      const auto& hot = states[i + kAhead]->hot;
      for (size_t b = 0; b < hot.size() * sizeof(HotGpu); b += 64)
        __builtin_prefetch(reinterpret_cast<const char*>(hot.data()) + b);
    }
    NodeEval e = evalNode(r, c, states[i], nodes[i], nullptr, false);
    out.push_back({nodes[i], e.fits, std::move(e.reason), e.fits ? e.score : 0});
  }
  return out;
}

Result<std::vector<std::string>> Allocator::assume(const Request& r, const std::string& node) {
  if (r.uid.empty()) return invalidArgument("pod " + r.ns + "/" + r.name + " has no UID");
  std::lock_guard lock(mu_);
  if (auto a = allocations_.find(r.uid); a != allocations_.end()) {
    if (a->second.node != node)
      return failedPrecondition("pod " + r.ns + "/" + r.name + " is allocated on node " + a->second.node + ", not " + node);
    std::vector<std::string> ids;
    for (const auto& b : a->second.bookings) ids.push_back(b.gpu);
    return ids;
  }
  if (Status s = checkQuotaLocked(r); !s) return s;
  return bookOnNodeLocked(r, node, nullptr, std::nullopt);
}

Result<std::vector<std::string>> Allocator::bookOnNodeLocked(const Request& r, const std::string& node,
                                                             const std::unordered_set<std::string>* released,
                                                             std::optional<Clock::time_point> reservedUntil) {
  NodeEval e = evalNode(r, criteriaLocked(r), node, released, true);
  if (!e.fits) return resourceExhausted("node " + node + ": " + e.reason);
  const Placement mode = placementOf(r.pool);
  std::vector<std::pair<int, GpuState*>> ranked;
  for (GpuState* g : e.survivors) ranked.push_back({gpuScore(mode, g->capacity(), g->available(), false), g});
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second->info.name < b.second->info.name;
  });
  Allocation a;
  a.request = r;
  a.node = node;
  a.reservedUntil = reservedUntil;
  std::vector<std::string> ids;
  for (int i = 0; i < r.count; ++i) {
    const Gpu& gpu = ranked[i].second->info;
    a.bookings.push_back({gpu.name, bookingFor(r, *ranked[i].second)});
    ids.push_back(gpu.name);
  }
  a.request.gpuIds = ids;
  if (reservedUntil) reservations_[r.uid] = *reservedUntil;
  book(std::move(a));
  return ids;
}

Status Allocator::reserve(const Request& r, const PreemptionPlan& plan, Clock::time_point until) {
  if (r.uid.empty()) return invalidArgument("pod " + r.ns + "/" + r.name + " has no UID");
  std::lock_guard lock(mu_);
  if (allocations_.count(r.uid)) return failedPrecondition("pod " + r.ns + "/" + r.name + " is already booked");
  std::unordered_set<std::string> released;
  for (const Victim& v : plan.victims) released.insert(v.uid);
  auto ids = bookOnNodeLocked(r, plan.node, &released, until);
  return ids ? Status::ok() : ids.status();
}

size_t Allocator::expireReservations(Clock::time_point now) {
  size_t dropped = 0;
  {
    std::lock_guard lock(mu_);
    for (auto it = reservations_.begin(); it != reservations_.end();) {
      if (it->second > now) {
        ++it;
        continue;
      }
      const std::string uid = it->first;
      it = reservations_.erase(it);  // first: unbook erases it too
      if (auto a = allocations_.find(uid); a != allocations_.end() && !a->second.committed) {
        unbook(uid);
        ++dropped;
      }
    }
  }
  if (dropped) gangCv_.notify_all();
  return dropped;
}

Status Allocator::commit(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = allocations_.find(uid);
  if (it == allocations_.end()) return notFound("no allocation for pod UID " + uid);
  it->second.committed = true;
  it->second.reservedUntil.reset();
  reservations_.erase(uid);
  return Status::ok();
}

bool Allocator::rollback(const std::string& uid) {
  {
    std::lock_guard lock(mu_);
    auto it = allocations_.find(uid);
    if (it == allocations_.end() || it->second.committed) return false;
    unbook(uid);
  }
  gangCv_.notify_all();
  return true;
}

bool Allocator::release(const std::string& uid) {
  std::lock_guard lock(mu_);
  if (!allocations_.count(uid)) return false;
  unbook(uid);
  return true;
}

std::optional<PreemptionPlan> Allocator::planPreemption(const Request& r, const std::vector<std::string>& nodes,
                                                        Clock::time_point now) const {
  if (r.qos < Qos::High) return std::nullopt;
  std::lock_guard lock(mu_);
  if (!checkQuotaLocked(r)) return std::nullopt;
  std::optional<PreemptionPlan> best;
  Qos bestWorst = Qos::Critical;
  const Criteria c = criteriaLocked(r);
  for (const auto& node : nodes) {
    auto gi = nodes_.find(node);
    if (gi == nodes_.end()) continue;
    // Candidates: lowest QoS first, the youngest first among equals (least work lost).
    std::vector<const Allocation*> candidates;
    std::set<std::string> seen;
    for (const GpuState* g : gi->second.states)
      for (const auto& uid : g->pods) {
        const Allocation& a = allocations_.at(uid);
        if (!seen.insert(uid).second || !a.committed || a.request.qos >= r.qos || a.request.protectedAt(now)) continue;
        candidates.push_back(&a);
      }
    std::sort(candidates.begin(), candidates.end(), [](const Allocation* a, const Allocation* b) {
      if (a->request.qos != b->request.qos) return a->request.qos < b->request.qos;
      if (a->request.created != b->request.created) return a->request.created > b->request.created;
      return a->request.uid < b->request.uid;
    });
    std::unordered_set<std::string> released;
    std::vector<const Allocation*> chosen;
    bool fits = evalNode(r, c, node, &released, false).fits;
    if (fits) continue;  // fits without preemption: not a preemption node
    for (const Allocation* a : candidates) {
      released.insert(a->request.uid);
      chosen.push_back(a);
      if ((fits = evalNode(r, c, node, &released, false).fits)) break;
    }
    if (!fits) continue;
    // Spare those not needed, the most valuable first.
    for (auto it = chosen.rbegin(); it != chosen.rend();) {
      released.erase((*it)->request.uid);
      if (evalNode(r, c, node, &released, false).fits) {
        it = decltype(it)(chosen.erase(std::next(it).base()));
      } else {
        released.insert((*it)->request.uid);
        ++it;
      }
    }
    Qos worst = Qos::Low;
    for (const Allocation* a : chosen) worst = std::max(worst, a->request.qos);
    if (!best || chosen.size() < best->victims.size() || (chosen.size() == best->victims.size() && worst < bestWorst)) {
      best = PreemptionPlan{node, {}};
      bestWorst = worst;
      for (const Allocation* a : chosen) best->victims.push_back({a->request.uid, a->request.ns, a->request.name, a->request.qos});
    }
  }
  return best;
}

Status Allocator::waitForGang(const Request& r, std::chrono::steady_clock::time_point deadline) {
  if (r.gangKey.empty() || r.gangRequired <= 1) return Status::ok();
  std::unique_lock lock(mu_);
  Gang& gang = gangs_[r.gangKey];
  const uint64_t round = gang.round;
  while (true) {
    if (gang.satisfied) return Status::ok();
    if (gang.round != round)
      return unavailable("gang " + r.gangKey + ": a member timed out waiting for its peers; all waiting members give up");
    if (gang.members >= r.gangRequired) {
      gang.satisfied = true;
      gangCv_.notify_all();
      return Status::ok();
    }
    if (gangCv_.wait_until(lock, deadline) == std::cv_status::timeout && !gang.satisfied &&
        gang.members < r.gangRequired && gang.round == round) {
      ++gang.round;
      gangCv_.notify_all();
      return unavailable("gang " + r.gangKey + ": " + std::to_string(gang.members) + " of " +
                         std::to_string(r.gangRequired) + " members placed before the timeout");
    }
  }
}

// ------------------------------------------------------------------------------- views

std::optional<Allocation> Allocator::allocation(const std::string& uid) const {
  std::lock_guard lock(mu_);
  auto it = allocations_.find(uid);
  if (it == allocations_.end()) return std::nullopt;
  return it->second;
}

std::optional<Amount> Allocator::available(const std::string& gpu) const {
  std::lock_guard lock(mu_);
  auto it = gpus_.find(gpu);
  if (it == gpus_.end()) return std::nullopt;
  return it->second.available();
}

int64_t Allocator::vramAllowance(const std::string& gpu) const {
  std::lock_guard lock(mu_);
  auto it = gpus_.find(gpu);
  return it == gpus_.end() ? 0 : it->second.vramAllowance;
}

std::optional<Gpu> Allocator::gpu(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = gpus_.find(name);
  if (it == gpus_.end()) return std::nullopt;
  return it->second.info;
}

std::vector<std::string> Allocator::takeDirty() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out(dirty_.begin(), dirty_.end());
  dirty_.clear();
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<nlohmann::json> Allocator::gpuStatus(const std::string& gpu) const {
  std::lock_guard lock(mu_);
  auto it = gpus_.find(gpu);
  if (it == gpus_.end()) return std::nullopt;
  const GpuState& g = it->second;
  // The device's own memory, as TensorFusion shows it: the expansion is the GPUNode's and
  // GPUPool's virtualVRAM (a tiered pod booked into the allowance leaves 0 here).
  Amount avail = g.info.capacity - g.used;
  avail.milliTflops = std::max<int64_t>(avail.milliTflops, 0);
  avail.vramBytes = std::max<int64_t>(avail.vramBytes, 0);
  // runningApps: one entry per workload (a pod without one stands for itself).
  std::map<std::pair<std::string, std::string>, nlohmann::json> apps;
  for (const auto& uid : g.pods) {
    const Request& r = allocations_.at(uid).request;
    auto& app = apps[{r.ns, r.workload.empty() ? r.name : r.workload}];
    if (app.is_null())
      app = {{"name", r.workload.empty() ? r.name : r.workload}, {"namespace", r.ns}, {"count", 0},
             {"pods", nlohmann::json::array()}};
    app["count"] = app["count"].get<int>() + 1;
    app["pods"].push_back({{"name", r.name}, {"namespace", r.ns}, {"uid", r.uid}, {"requests", sliceJson(r.request)},
                           {"limits", sliceJson(r.limit)}, {"qos", qosName(r.qos)}});
  }
  nlohmann::json running = nlohmann::json::array();
  for (auto& [key, app] : apps) running.push_back(std::move(app));
  return nlohmann::json{{"available", resourceJson(avail)}, {"runningApps", std::move(running)}};
}

nlohmann::json Allocator::dump() const {
  std::lock_guard lock(mu_);
  nlohmann::json gpus = nlohmann::json::object();
  std::vector<std::string> names;
  for (const auto& [name, g] : gpus_) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const GpuState& g = gpus_.at(name);
    int ratio = 100;
    if (auto p = pools_.find(g.info.pool); p != pools_.end()) ratio = p->second.tflopsOversellRatio;
    gpus[name] = {{"node", g.info.node},
                  {"pool", g.info.pool},
                  {"capacity", resourceJson(g.info.capacity)},
                  {"available", resourceJson(g.available())},
                  {"vramAllowance", api::Quantity::fromInt(g.vramAllowance, api::Quantity::Format::BinarySI).toString()},
                  {"virtualAvailableTflops",
                   api::Quantity::fromMilli(g.info.capacity.milliTflops * ratio / 100 - g.limitsMilliTflops).toString()},
                  {"pods", g.pods}};
  }
  std::vector<std::string> uids;
  for (const auto& [uid, a] : allocations_) uids.push_back(uid);
  std::sort(uids.begin(), uids.end());
  nlohmann::json allocs = nlohmann::json::array();
  for (const auto& uid : uids) {
    const Allocation& a = allocations_.at(uid);
    nlohmann::json gpuIds = nlohmann::json::array();
    for (const auto& b : a.bookings) gpuIds.push_back(b.gpu);
    allocs.push_back({{"uid", uid}, {"namespace", a.request.ns}, {"name", a.request.name}, {"node", a.node},
                      {"gpus", gpuIds}, {"committed", a.committed}, {"qos", qosName(a.request.qos)}});
  }
  return {{"gpus", gpus}, {"allocations", allocs}};
}

size_t Allocator::gpuCount() const {
  std::lock_guard lock(mu_);
  return gpus_.size();
}

}  // namespace tf::allocator
