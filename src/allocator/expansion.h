// A pool's VRAM expansion (GPUPool `capacityConfig.oversubscription.vramExpandToHostMem` /
// `vramExpandToHostDisk`, percent of a node's host memory / data disk lent to its GPUs' VRAM)
// and the VRAM tiers of its SchedulingConfigTemplate (`hypervisor.autoFreezeAndResume`), which
// decide whether the expansion may be used. The scheduler, the controller's status and the
// hypervisor all take a GPU's allowance from here:
//
//   auto e = vramExpansionOf(poolJson);                  // TensorFusion's defaults: 50% / 70%
//   auto lent = nodeVramLent(*e, hostFactsOf(gpuNodeJson)); // bytes the node lends, or why not
//   int64_t mine = gpuVramAllowance(*lent, gpuVram, nodeVram); // this GPU's share
//
// The rule: a node lends `ramSize × vramExpandToHostMem% + dataDiskSize × vramExpandToHostDisk%`
// (each rounded down to whole MiB, as the controller's virtualVRAM), and each GPU of the node
// gets a share in proportion to its VRAM. Only vGPUs whose memory can leave the device (hard
// isolation, with tiers for their QoS) may use it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "allocator/types.h"
#include "common/status.h"

namespace tf::allocator {

// From a GPUPool object: its oversubscription's two fields, the defaults where unset. Errors
// name the field ("...vramExpandToHostMem: -5 is out of range [0, 100]").
Result<VramExpansion> vramExpansionOf(const nlohmann::json& pool);
// true when the pool's spec sets either field (its expansion was asked for, not defaulted).
bool vramExpansionSet(const nlohmann::json& pool);

// A node's host memory and data disk (GPUNode `status.nodeInfo`, the node registrar's facts).
struct HostFacts {
  std::optional<int64_t> ramBytes, diskBytes;
  bool operator==(const HostFacts&) const = default;
};
// Missing fields stay unset; a malformed one is an error naming it.
Result<HostFacts> hostFactsOf(const nlohmann::json& gpuNode);

// Bytes a node lends its GPUs' VRAM. A fact the expansion needs (a non-zero percent of it) but
// the node has not published is an error (FailedPrecondition) that says which: no expansion.
Result<int64_t> nodeVramLent(const VramExpansion& e, const HostFacts& host);
// One GPU's share of what its node lends: lent × gpuVram / nodeVram (0 when nodeVram is 0).
int64_t gpuVramAllowance(int64_t nodeLent, int64_t gpuVram, int64_t nodeVram);

// A SchedulingConfigTemplate's `autoFreezeAndResume.autoFreeze[]`, per QoS (low..critical):
// idle this long, a vGPU's memory goes to host memory / to disk (0: never by idling). Reads the
// template's spec, its `hypervisor` part or `autoFreezeAndResume` itself; an entry names a QoS
// (missing: all) and Go durations; `enable: false` clears its QoS. Errors name the field.
struct AutoFreeze {
  bool enabled = false;  // an entry is enabled
  std::array<bool, 4> named{};  // an entry set this QoS (the others keep what they had)
  std::array<uint64_t, 4> toMemMs{}, toDiskMs{};
  // Its vGPUs of this QoS are tiered: idle ones can be moved off the device.
  bool tiers(Qos q) const { return toMemMs[static_cast<int>(q)] || toDiskMs[static_cast<int>(q)]; }
};
Result<AutoFreeze> autoFreezeOf(const nlohmann::json& config);

// A GPUPool's PoolConfig for the ledger: placement and tiers from its SchedulingConfigTemplate
// (`templateObject`, null when it names none or it is not found), oversell ratio and expansion.
// `warning` says why an expansion the pool asks for is not applied (bad values, a template
// that cannot be read, or no QoS tiered: an untiered vGPU past its GPU's memory would fail to
// allocate); empty otherwise.
struct PoolReading {
  PoolConfig config;
  std::string warning;
};
PoolReading poolConfigOf(const nlohmann::json& pool, const nlohmann::json* templateObject);

}  // namespace tf::allocator
