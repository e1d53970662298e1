#include "allocator/expansion.h"

#include <vector>

#include "common/units.h"
#include "k8s/api/quantity.h"

namespace tf::allocator {

namespace {

constexpr const char* kOversubscription = "spec.capacityConfig.oversubscription.";
constexpr const char* kFields[] = {"vramExpandToHostMem", "vramExpandToHostDisk"};

const nlohmann::json* oversubscriptionOf(const nlohmann::json& pool) {
  static const nlohmann::json::json_pointer kPath("/spec/capacityConfig/oversubscription");
  if (!pool.is_object() || !pool.contains(kPath)) return nullptr;
  const nlohmann::json& o = pool.at(kPath);
  return o.is_object() ? &o : nullptr;
}

}  // namespace

Result<VramExpansion> vramExpansionOf(const nlohmann::json& pool) {
  VramExpansion e;
  const nlohmann::json* o = oversubscriptionOf(pool);
  if (!o) return e;
  for (auto [field, out] : {std::pair{kFields[0], &e.toHostMemPercent}, std::pair{kFields[1], &e.toHostDiskPercent}}) {
    auto it = o->find(field);
    if (it == o->end() || it->is_null()) continue;
    const std::string where = std::string(kOversubscription) + field;
    if (!it->is_number_integer()) return invalidArgument(where + ": " + it->dump() + " is not an integer");
    const int64_t v = it->get<int64_t>();
    if (v < 0 || v > 100) return invalidArgument(where + ": " + std::to_string(v) + " is out of range [0, 100]");
    *out = static_cast<int>(v);
  }
  return e;
}

bool vramExpansionSet(const nlohmann::json& pool) {
  const nlohmann::json* o = oversubscriptionOf(pool);
  if (!o) return false;
  for (const char* f : kFields)
    if (o->contains(f) && !(*o)[f].is_null()) return true;
  return false;
}

Result<HostFacts> hostFactsOf(const nlohmann::json& gpuNode) {
  HostFacts h;
  static const nlohmann::json::json_pointer kInfo("/status/nodeInfo");
  if (!gpuNode.is_object() || !gpuNode.contains(kInfo) || !gpuNode.at(kInfo).is_object()) return h;
  const nlohmann::json& info = gpuNode.at(kInfo);
  for (auto [field, out] : {std::pair{"ramSize", &h.ramBytes}, std::pair{"dataDiskSize", &h.diskBytes}}) {
    auto it = info.find(field);
    if (it == info.end() || it->is_null()) continue;
    const std::string where = std::string("status.nodeInfo.") + field;
    if (!it->is_string()) return invalidArgument(where + ": " + it->dump() + " is not a quantity");
    auto q = k8s::api::Quantity::parse(it->get<std::string>());
    if (!q) return q.status().withContext(where);
    if (q->value() < 0) return invalidArgument(where + ": " + it->get<std::string>() + " is negative");
    *out = q->value();
  }
  return h;
}

Result<int64_t> nodeVramLent(const VramExpansion& e, const HostFacts& host) {
  constexpr int64_t kMiB = 1 << 20;
  int64_t lent = 0;
  std::string missing;
  for (auto [percent, bytes, name] : {std::tuple{e.toHostMemPercent, host.ramBytes, "host memory (ramSize)"},
                                      std::tuple{e.toHostDiskPercent, host.diskBytes, "data disk (dataDiskSize)"}}) {
    if (percent == 0) continue;
    if (!bytes) {
      missing += std::string(missing.empty() ? "" : " and ") + name;
      continue;
    }
    // Whole MiB of each, as the controller's virtualVRAM; 128-bit so no size overflows.
    lent += static_cast<int64_t>(static_cast<__int128>(*bytes) * percent / 100 / kMiB) * kMiB;
  }
  if (!missing.empty())
    return failedPrecondition("the node has not published its " + missing +
                              " (GPUNode status.nodeInfo): its VRAM is not expanded");
  return lent;
}

int64_t gpuVramAllowance(int64_t nodeLent, int64_t gpuVram, int64_t nodeVram) {
  if (nodeVram <= 0 || nodeLent <= 0 || gpuVram <= 0) return 0;
  return static_cast<int64_t>(static_cast<__int128>(nodeLent) * gpuVram / nodeVram);
}

Result<AutoFreeze> autoFreezeOf(const nlohmann::json& config) {
  AutoFreeze a;
  const nlohmann::json* afr = &config;
  if (config.contains("hypervisor")) afr = &config["hypervisor"];
  if (afr->contains("autoFreezeAndResume")) afr = &(*afr)["autoFreezeAndResume"];
  if (!afr->is_object()) return invalidArgument("autoFreezeAndResume: not an object");
  if (!afr->contains("autoFreeze")) return a;
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
      a.toMemMs[static_cast<int>(q)] = enable ? mem : 0;
      a.toDiskMs[static_cast<int>(q)] = enable ? disk : 0;
      a.named[static_cast<int>(q)] = true;
    }
    if (enable) a.enabled = true;
  }
  return a;
}

PoolReading poolConfigOf(const nlohmann::json& pool, const nlohmann::json* templateObject) {
  PoolReading out;
  PoolConfig& c = out.config;
  static const nlohmann::json::json_pointer kRatio("/spec/capacityConfig/oversubscription/tflopsOversellRatio");
  if (pool.contains(kRatio) && pool.at(kRatio).is_number_integer()) c.tflopsOversellRatio = pool.at(kRatio).get<int>();
  else c.tflopsOversellRatio = 500;
  static const nlohmann::json::json_pointer kMode("/spec/placement/mode");
  std::string tiersProblem;
  if (templateObject) {
    if (templateObject->contains(kMode) && templateObject->at(kMode).is_string())
      if (auto m = parsePlacement(templateObject->at(kMode).get<std::string>())) c.placement = *m;
    if (templateObject->contains("spec")) {
      if (auto a = autoFreezeOf((*templateObject)["spec"]))
        for (size_t q = 0; q < c.vramTiers.size(); ++q) c.vramTiers[q] = a->tiers(static_cast<Qos>(q));
      else
        tiersProblem = "its SchedulingConfigTemplate's VRAM tiers cannot be read (" + a.status().message() + ")";
    }
  }
  auto e = vramExpansionOf(pool);
  if (!e) {
    c.vramExpansion = {0, 0};
    out.warning = "VRAM not expanded: " + e.status().message();
    return out;
  }
  c.vramExpansion = *e;
  const bool tiered = c.vramTiers[0] || c.vramTiers[1] || c.vramTiers[2] || c.vramTiers[3];
  if (!tiered && vramExpansionSet(pool) && (e->toHostMemPercent > 0 || e->toHostDiskPercent > 0))
    out.warning = "VRAM not expanded to host memory and disk: " +
                  (tiersProblem.empty() ? std::string("its SchedulingConfigTemplate tiers no QoS "
                                                      "(hypervisor.autoFreezeAndResume.autoFreeze)")
                                        : tiersProblem) +
                  ", so a vGPU could not leave the device and pods past a GPU's memory would run out of it";
  return out;
}

}  // namespace tf::allocator
