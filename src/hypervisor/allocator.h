// Which device a vGPU request goes on, counting requests against capacity with the pool's
// oversubscription ratios (TFLOPS oversell, VRAM expanded to host memory), and why a request
// that does not fit is refused.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "hypervisor/device_inventory.h"
#include "hypervisor/vgpu.h"

namespace tf::hypervisor {

struct Oversubscription {
  double tflopsOversell = 1.0;     // 5.0 = requests may add up to 5x the device's compute
  double vramExpandToHost = 0.0;   // 0.5 = requests may add up to 1.5x the device's memory
};

// Compute shares of a device for a request (TFLOPS are converted with the device's rating).
Result<std::pair<uint32_t, uint32_t>> computeShares(const VgpuRequest& r, const GpuDevice& d);

// Picks the request's pinned devices, or its `count` devices with the most room left (low load
// first) among those it fits; NotFound/ResourceExhausted with the reason per device otherwise.
Result<std::vector<DeviceGrant>> place(const VgpuRequest& r, const std::vector<GpuDevice>& devices,
                        const std::vector<Vgpu>& existing, const Oversubscription& o);

} // namespace tf::hypervisor
