// VRAM tiers on a node: when the workers of hard- and remote-isolated vGPUs freeze their
// clients' memory (to host memory, then disk) and whom the hypervisor freezes to make room for
// a vGPU that waits for device memory. The policy is TensorFusion's SchedulingConfigTemplate
// `hypervisor.autoFreezeAndResume.autoFreeze[]{qos, freezeToMemTTL, freezeToDiskTTL, enable}`
// (env TF_HYPERVISOR_SCHEDULING_CONFIG), or the command line.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "hypervisor/vgpu.h"
#include "remoting/tier_control.h"

namespace tf::hypervisor {

struct TierPolicy {
  bool enabled = false;                  // workers tier their clients' memory
  // Per QoS (low, medium, high, critical): idle this long, its memory goes to host memory;
  // this long, to disk. 0: never by idling (the hypervisor may still freeze it for room).
  std::array<uint64_t, 4> freezeToMemMs{}, freezeToDiskMs{};
  std::string coldDir;                   // default: <state dir>/cold
  int waitMs = 30000;                    // a thaw or allocation waits this long for room
  uint64_t minIdleMs = 1000;             // only vGPUs idle this long are frozen for room
};

// Reads a SchedulingConfigTemplate's spec, its `hypervisor` part, or `autoFreezeAndResume`
// itself. An entry names a QoS (missing: all) and TTLs as Go durations; `enable: false` clears
// its QoS. Any autoFreeze entry enabled turns tiers on. Errors name the field.
Status applySchedulingConfig(const nlohmann::json& config, TierPolicy* policy);

// The tiers a vGPU of QoS `qos` gets from a SchedulingConfigTemplate's spec (its pool's): on
// when an enabled autoFreeze entry gives its QoS a TTL.
Result<VgpuTiers> vgpuTiersFor(const nlohmann::json& templateSpec, Qos qos);

// A vGPU's tiers, summed over its worker's clients.
struct TierView {
  remoting::TierState state = remoting::TierState::Hot;  // the coldest of its clients'
  uint64_t hotBytes = 0, warmBytes = 0, coldBytes = 0;
  uint64_t freezes = 0, thaws = 0, freezeNs = 0, thawNs = 0;
  uint64_t waitingBytes = 0;
  uint64_t warmStoredBytes = 0, coldStoredBytes = 0;  // what warm and cold take (sparse freezes)
  uint64_t idleMs = 0;  // the least idle client's; 0 when one is in a call or there is none
  int clients = 0;
};
TierView summarize(const std::vector<remoting::TierRecord>& records);
nlohmann::json toJson(const TierView& v);

// Whom to freeze so that `needed` bytes of device memory come free: vGPUs idle at least
// `minIdleMs` with memory on the device, the lowest QoS first, then the longest idle, then the
// largest; as few as cover the need (all that qualify when they cannot).
struct FreezeCandidate {
  std::string id;
  Qos qos = Qos::Medium;
  uint64_t hotBytes = 0, idleMs = 0;
};
std::vector<std::string> chooseFreezes(std::vector<FreezeCandidate> candidates, uint64_t needed,
                                       uint64_t minIdleMs);

}  // namespace tf::hypervisor
