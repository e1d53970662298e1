#include "hypervisor/tier_policy.h"

#include <algorithm>

#include "common/units.h"

namespace tf::hypervisor {

Status applySchedulingConfig(const nlohmann::json& config, TierPolicy* policy) {
  const nlohmann::json* afr = &config;
  if (config.contains("hypervisor")) afr = &config["hypervisor"];
  if (afr->contains("autoFreezeAndResume")) afr = &(*afr)["autoFreezeAndResume"];
  if (!afr->is_object()) return invalidArgument("autoFreezeAndResume: not an object");
  if (!afr->contains("autoFreeze")) return Status::ok();
  const auto& list = (*afr)["autoFreeze"];
  if (!list.is_array()) return invalidArgument("autoFreezeAndResume.autoFreeze: not a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& e = list[i];
    const std::string where = "autoFreeze[" + std::to_string(i) + "]";
    if (!e.is_object()) return invalidArgument(where + ": not an object");
    std::vector<Qos> levels = {Qos::Low, Qos::Medium, Qos::High, Qos::Critical};
    if (e.contains("qos")) {
      if (!e["qos"].is_string()) return invalidArgument(where + ".qos: not a string");
      auto q = parseQos(e["qos"].get<std::string>());
      if (!q) return q.status().withContext(where + ".qos");
      levels = {*q};
    }
    if (e.contains("enable") && !e["enable"].is_boolean()) return invalidArgument(where + ".enable: not a boolean");
    const bool enable = e.value("enable", true);
    uint64_t mem = 0, disk = 0;
    for (auto [field, out] : {std::pair{"freezeToMemTTL", &mem}, std::pair{"freezeToDiskTTL", &disk}}) {
      if (!e.contains(field)) continue;
      if (!e[field].is_string()) return invalidArgument(where + "." + field + ": not a string");
      auto ms = units::parseDurationMs(e[field].get<std::string>());
      if (!ms) return ms.status().withContext(where + "." + field);
      *out = *ms;
    }
    if (disk && mem && disk < mem) return invalidArgument(where + ": freezeToDiskTTL is shorter than freezeToMemTTL");
    for (Qos q : levels) {
      policy->freezeToMemMs[static_cast<int>(q)] = enable ? mem : 0;
      policy->freezeToDiskMs[static_cast<int>(q)] = enable ? disk : 0;
    }
    if (enable) policy->enabled = true;
  }
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
