// The compute quota controller: every tick, for each device, reads how much of its time each
// vGPU used and sets each vGPU's share in its quota region. Requests are guaranteed; limits are
// ceilings; time that idle vGPUs leave (and that nobody requested) is lent to busy vGPUs, the
// higher QoS first, and taken back on the next tick when its owner is busy again. Desired
// shares are computed from observed use every tick: no event bookkeeping.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hypervisor/vgpu.h"

namespace tf::hypervisor {

struct VgpuObservation {
  const Vgpu* vgpu = nullptr;
  uint32_t usedBp = 0;    // share of the device it used in the last tick (basis points)
  uint32_t currentBp = 0; // share it was allowed
  bool active = false;    // it launched work in the last tick (it wants its guarantee)
  int device = 0;         // which of the vGPU's devices (its region's order)
};

// The shares (basis points) to set, in the order of `vgpus` (all on one physical device).
std::vector<uint32_t> computeShares(const std::vector<VgpuObservation>& vgpus);

} // namespace tf::hypervisor
