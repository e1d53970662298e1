#include "hypervisor/tier_policy.h"

#include <algorithm>

#include "allocator/expansion.h"

namespace tf::hypervisor {

// The template's reading is the allocator's, which the scheduler shares (a pool's expansion is
// used only for the QoS levels it tiers). Its QoS levels are in the same order as ours.
Status applySchedulingConfig(const nlohmann::json& config, TierPolicy* policy) {
  auto a = allocator::autoFreezeOf(config);
  if (!a) return a.status();
  for (size_t q = 0; q < a->named.size(); ++q) {
    if (!a->named[q]) continue;
    policy->freezeToMemMs[q] = a->toMemMs[q];
    policy->freezeToDiskMs[q] = a->toDiskMs[q];
  }
  if (a->enabled) policy->enabled = true;
  return Status::ok();
}

Result<VgpuTiers> vgpuTiersFor(const nlohmann::json& templateSpec, Qos qos) {
  TierPolicy p;
  TF_RETURN_IF_ERROR(applySchedulingConfig(templateSpec, &p));
  VgpuTiers t;
  t.freezeToMemMs = p.freezeToMemMs[static_cast<int>(qos)];
  t.freezeToDiskMs = p.freezeToDiskMs[static_cast<int>(qos)];
  t.enabled = t.freezeToMemMs || t.freezeToDiskMs;
  return t;
}

TierView summarize(const std::vector<remoting::TierRecord>& records) {
  TierView v;
  bool anyBusy = false;
  for (const auto& r : records) {
    v.state = std::max(v.state, r.state);
    v.hotBytes += r.hotBytes;
    v.warmBytes += r.warmBytes;
    v.coldBytes += r.coldBytes;
    v.freezes += r.freezes;
    v.thaws += r.thaws;
    v.freezeNs += r.freezeNs;
    v.thawNs += r.thawNs;
    v.waitingBytes += r.waitingBytes;
    v.warmStoredBytes += r.warmStoredBytes;
    v.coldStoredBytes += r.coldStoredBytes;
    if (r.idleMs == 0) anyBusy = true;
    v.idleMs = v.clients == 0 ? r.idleMs : std::min(v.idleMs, r.idleMs);
    ++v.clients;
  }
  if (anyBusy) v.idleMs = 0;
  return v;
}

nlohmann::json toJson(const TierView& v) {
  return {{"state", remoting::tierStateName(v.state)},
          {"hotBytes", v.hotBytes},
          {"warmBytes", v.warmBytes},
          {"coldBytes", v.coldBytes},
          {"warmStoredBytes", v.warmStoredBytes},
          {"coldStoredBytes", v.coldStoredBytes},
          {"freezes", v.freezes},
          {"thaws", v.thaws},
          {"freezeSeconds", static_cast<double>(v.freezeNs) / 1e9},
          {"thawSeconds", static_cast<double>(v.thawNs) / 1e9},
          {"waitingBytes", v.waitingBytes},
          {"idleMs", v.idleMs},
          {"clients", v.clients}};
}

std::vector<std::string> chooseFreezes(std::vector<FreezeCandidate> candidates, uint64_t needed,
                                       uint64_t minIdleMs) {
  std::erase_if(candidates, [&](const FreezeCandidate& c) { return c.hotBytes == 0 || c.idleMs < minIdleMs; });
  std::sort(candidates.begin(), candidates.end(), [](const FreezeCandidate& a, const FreezeCandidate& b) {
    if (a.qos != b.qos) return a.qos < b.qos;
    if (a.idleMs != b.idleMs) return a.idleMs > b.idleMs;
    return a.hotBytes > b.hotBytes;
  });
  std::vector<std::string> out;
  uint64_t freed = 0;
  for (const auto& c : candidates) {
    if (freed >= needed) break;
    out.push_back(c.id);
    freed += c.hotBytes;
  }
  return out;
}

}  // namespace tf::hypervisor
